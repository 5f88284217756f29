"""Executors: where recordings are processed, behind one interface.

- :class:`SerialExecutor`: one after the other in this process.
- :class:`ProcessExecutor`: local worker processes (``concurrent.futures``
  ``ProcessPoolExecutor`` with the *spawn* start method, safe with CUDA and threads);
  each worker processes whole recordings.
- :class:`DaskExecutor`: a Dask distributed cluster, joined with a scheduler address
  (``tcp://host:8786``) or started locally (``LocalCluster``). Needs the optional extra
  ``pip install neuroml[distributed]``. Workers must see the recording files and the
  output folder at the same paths (a shared filesystem) when they run elsewhere.

Every executor yields ``(task, result)`` pairs as recordings finish, in any order;
``result`` is what the task function returned, or the exception that kept it from
returning (a worker process that died, a lost Dask worker).
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import NeuroMLError, ParameterError

__all__ = [
    "Executor",
    "SerialExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "make_executor",
    "EXECUTORS",
]

#: Executor names the CLI accepts.
EXECUTORS = ("serial", "processes", "dask")

_log = logging.getLogger("neuroml.pipeline")


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Executor(abc.ABC):
    """The interface every executor implements.

    Use as a context manager: ``with make_executor("processes", workers=4) as ex:``
    then ``for task, result in ex.map_unordered(fn, tasks): ...``.

    Parameters
    ----------
    workers : int, default=None
        Number of workers (ignored by :class:`SerialExecutor`); all CPU cores when None.
    """

    name = "base"

    def __init__(self, workers: int | None = None):
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                    or workers < 1):
            raise ParameterError(
                f"The 'workers' parameter of {type(self).__name__} must be an int in the range "
                f"[1, inf) or None. Got {workers!r} instead."
            )
        self.workers = workers

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def start(self) -> None:
        """Acquire resources (pools, clusters); nothing to acquire by default."""
        return None

    def shutdown(self) -> None:
        """Release them; nothing to release by default."""
        return None

    @property
    def live_events(self) -> bool:
        """Whether per-step progress events reach the caller while tasks run."""
        return False

    def task_threads(self, n_tasks: int) -> int | None:
        """How many threads a task should give torch (None: leave as it is)."""
        return None

    @abc.abstractmethod
    def map_unordered(self, fn: Callable, tasks: Iterable, on_event: Callable | None = None,
                      init: Callable | None = None) -> Iterator[tuple[Any, Any]]:
        """Run ``fn(task, events)`` for every task; yield ``(task, result)`` as each finishes.

        ``events`` is a callable the task may call with progress events (a tuple), or
        None; events reach ``on_event`` when :attr:`live_events` is true. ``init``
        (picklable, no arguments) runs once in every worker before its first task,
        e.g. to import what the tasks need so their timings do not include it.
        """

    def describe(self) -> dict:
        """What the executor is, for ``run.json``."""
        return {"kind": self.name, "workers": self.workers}


class SerialExecutor(Executor):
    """Process recordings one after the other in this process."""

    name = "serial"

    @property
    def live_events(self) -> bool:
        return True

    def map_unordered(self, fn, tasks, on_event=None, init=None):
        tasks = list(tasks)
        if tasks and init is not None:
            init()
        for task in tasks:
            yield task, fn(task, on_event)

    def describe(self) -> dict:
        return {"kind": self.name, "workers": 1}


# ====================================================================== processes
_EVENTS = None


def limit_threads(threads: int | None) -> None:
    """Give this process's numerical libraries ``threads`` threads each.

    Sets ``OMP_NUM_THREADS`` & co. (read by torch and BLAS when first imported) and,
    when torch is already imported, ``torch.set_num_threads``.
    """
    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _init_worker(events_queue, threads: int | None, init: Callable | None) -> None:
    global _EVENTS
    _EVENTS = events_queue
    limit_threads(threads)
    if init is not None:
        init()


def _emit(event) -> None:
    if _EVENTS is not None:
        try:
            _EVENTS.put_nowait(event)
        except Exception:  # pragma: no cover - progress is best effort
            pass


def _call_in_worker(fn, task):
    return fn(task, _emit if _EVENTS is not None else None)


class ProcessExecutor(Executor):
    """Local worker processes (spawned), each processing whole recordings.

    Parameters
    ----------
    workers : int, default=None
        Number of processes; ``min(CPU cores, recordings)`` when None. Each gets
        ``max(1, cores // workers)`` torch threads so they do not oversubscribe the CPU.
    """

    name = "processes"

    def __init__(self, workers: int | None = None):
        super().__init__(workers)
        self._n = None

    @property
    def live_events(self) -> bool:
        return True

    def _count(self, n_tasks: int) -> int:
        return self.workers or max(1, min(_cpu_count(), n_tasks))

    def task_threads(self, n_tasks: int) -> int | None:
        return max(1, _cpu_count() // self._count(n_tasks))

    def map_unordered(self, fn, tasks, on_event=None, init=None):
        tasks = list(tasks)
        if not tasks:
            return
        n = self._n = self._count(len(tasks))
        ctx = mp.get_context("spawn")
        events = ctx.Queue() if on_event is not None else None
        pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                      initargs=(events, self.task_threads(len(tasks)), init))
        try:
            futures = {pool.submit(_call_in_worker, fn, task): task for task in tasks}
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
                self._drain(events, on_event)
                for fut in done:
                    task = futures[fut]
                    try:
                        yield task, fut.result()
                    except Exception as err:  # a worker died (BrokenProcessPool) ...
                        yield task, err
            self._drain(events, on_event)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if events is not None:
                events.close()
                events.join_thread()

    @staticmethod
    def _drain(events, on_event) -> None:
        if events is None:
            return
        while True:
            try:
                event = events.get_nowait()
            except (queue_mod.Empty, OSError, ValueError):
                return
            on_event(event)

    def describe(self) -> dict:
        return {"kind": self.name, "workers": self._n or self.workers, "start_method": "spawn"}


# ====================================================================== dask
def _import_distributed():
    try:
        import distributed
    except ImportError as err:
        raise NeuroMLError(
            "The dask executor needs Dask distributed, which is not installed: "
            "pip install neuroml[distributed]"
        ) from err
    return distributed


class DaskExecutor(Executor):
    """A Dask distributed cluster: joined by address, or a LocalCluster started here.

    Parameters
    ----------
    workers : int, default=None
        Workers of the LocalCluster started when no ``scheduler`` is given
        (``min(CPU cores, recordings)`` when None); ignored when joining a cluster.
    scheduler : str, default=None
        Address of a running scheduler (``"tcp://host:8786"``); a LocalCluster on
        127.0.0.1 is started when None.
    processes : bool, default=True
        Whether the LocalCluster's workers are processes (True) or threads of this
        process (False, quick to start; used by the tests).
    """

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, *,
                 processes: bool = True):
        super().__init__(workers)
        if scheduler is not None and not (isinstance(scheduler, str) and scheduler.strip()):
            raise ParameterError(
                "The 'scheduler' parameter of DaskExecutor must be an address like "
                f"'tcp://host:8786' or None. Got {scheduler!r} instead."
            )
        self.scheduler = scheduler
        self.processes = processes
        self._client = None
        self._cluster = None
        self._n = None
        self._connect_timeout = "20s"

    def _count(self, n_tasks: int) -> int:
        return self.workers or max(1, min(_cpu_count(), n_tasks))

    def task_threads(self, n_tasks: int) -> int | None:
        if self.scheduler is not None or not self.processes:
            return None
        return max(1, _cpu_count() // self._count(n_tasks))

    def start(self) -> None:
        _import_distributed()

    def _connect(self, n_tasks: int) -> None:
        distributed = _import_distributed()
        for name in ("distributed", "distributed.worker", "distributed.scheduler",
                     "distributed.nanny", "distributed.core", "distributed.http.proxy"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if self.scheduler is not None:
            try:
                self._client = distributed.Client(self.scheduler, timeout=self._connect_timeout)
            except (OSError, TimeoutError) as err:
                raise NeuroMLError(
                    f"Could not connect to the Dask scheduler at {self.scheduler!r}: {err}"
                ) from err
            return
        self._n = self._count(n_tasks)
        # worker processes talk over TCP on loopback; thread workers in-process
        where = {"host": "127.0.0.1"} if self.processes else {}
        self._cluster = distributed.LocalCluster(
            n_workers=self._n, threads_per_worker=1, processes=self.processes,
            dashboard_address=None, **where,
        )
        self._client = distributed.Client(self._cluster)

    def shutdown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def map_unordered(self, fn, tasks, on_event=None, init=None):
        tasks = list(tasks)
        if not tasks:
            return
        distributed = _import_distributed()
        if self._client is None:
            self._connect(len(tasks))
        if init is not None:
            self._client.run(init)  # on every worker now connected
        token = uuid.uuid4().hex[:8]
        futures = {}
        for i, task in enumerate(tasks):
            key = f"neuroml-{i}-{token}"
            fut = self._client.submit(fn, task, None, key=key, pure=False)
            futures[fut] = task
        for fut in distributed.as_completed(list(futures)):
            task = futures[fut]
            try:
                yield task, fut.result()
            except Exception as err:  # a lost worker (KilledWorker), a cancelled task
                yield task, err

    def describe(self) -> dict:
        info = {"kind": self.name, "scheduler": self.scheduler}
        if self._client is not None:
            try:
                info["scheduler_address"] = self._client.scheduler.address
                info["workers"] = len(self._client.scheduler_info(n_workers=-1).get("workers", {}))
            except Exception:  # pragma: no cover - informational only
                pass
        if self.scheduler is None:
            info["local_cluster"] = {"processes": self.processes, "workers": self._n}
        return info


def make_executor(kind: str = "serial", *, workers: int | None = None,
                  scheduler: str | None = None) -> Executor:
    """The executor called ``kind``.

    Parameters
    ----------
    kind : {"serial", "processes", "dask"}, default="serial"
    workers : int, default=None
        Worker processes (``processes``) or LocalCluster workers (``dask``).
    scheduler : str, default=None
        Dask scheduler address; only with ``kind="dask"``.

    Returns
    -------
    executor : Executor
    """
    if kind not in EXECUTORS:
        raise ParameterError(
            f"The 'executor' parameter must be a str among {{{', '.join(map(repr, EXECUTORS))}}}. "
            f"Got {kind!r} instead."
        )
    if scheduler is not None and kind != "dask":
        raise ParameterError(
            f"A scheduler address ({scheduler!r}) only works with the dask executor; "
            f"got executor {kind!r}. Use --executor dask."
        )
    if kind == "serial":
        return SerialExecutor(workers)
    if kind == "processes":
        return ProcessExecutor(workers)
    return DaskExecutor(workers, scheduler)
