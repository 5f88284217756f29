"""Running a pipeline over recordings: planning, per-recording processing, summary, provenance.

``run_pipeline(pipeline, recordings, out)`` validates everything first (the pipeline
file, the recording paths, the device), then for each recording either skips it — its
done-marker says it was finished under the same pipeline hash and input file, and its
outputs are all there — or hands it to the executor. A worker loads the recording,
runs the steps in order, passing values between them by name in a per-recording
context, writes each step's outputs atomically to ``OUT/<recording-id>/`` and, last,
the done-marker. A recording that fails is reported (``summary.csv``, ``run.log``) and
never stops the others.

Files in ``OUT/``:

- ``<recording-id>/``: arrays (``.nc``), metrics (``.json``), tables (``.csv``),
  figures (``.png``/``.pdf``/``.svg``), ``_done.json``;
- ``summary.csv``: one row per recording — status, error, seconds, headline metrics;
- ``run.json``: provenance — the pipeline file, its text and hash, versions, device,
  executor, start and end, per recording the time of each step;
- ``run.log``: the log of every run into this folder, with tracebacks of failures.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import importlib
import logging
import os
import platform
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from .. import __version__
from ..errors import NeuroMLError, RecordingError
from . import outputs as io_out
from .config import PipelineConfig, load_pipeline
from .executors import Executor, limit_threads, make_executor
from .progress import BarAwareHandler, Progress
from .registry import CONTEXT_ROOT, StepContext, get_step

__all__ = [
    "DEFAULT_LOADER",
    "RecordingTask",
    "RecordingResult",
    "RunReport",
    "expand_recordings",
    "recording_ids",
    "process_recording",
    "run_pipeline",
]

#: The function that opens a recording file, as ``"module:function"``.
DEFAULT_LOADER = "neuroml.io.nwb:load_recording"

_log = logging.getLogger("neuroml.pipeline")

_EXT = {"array": ".nc", "metrics": ".json", "table": ".csv"}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


# ====================================================================== tasks and results
@dataclass(frozen=True)
class RecordingTask:
    """Everything a worker needs to process one recording (picklable)."""

    path: str
    recording_id: str
    out_dir: str
    pipeline: PipelineConfig
    pipeline_hash: str
    device: str = "auto"
    loader: str = DEFAULT_LOADER
    torch_threads: int | None = None


@dataclass
class RecordingResult:
    """What happened to one recording.

    Attributes
    ----------
    recording_id, path : str
    status : {"ok", "failed", "skipped"}
        ``skipped``: done by an earlier run under the same pipeline hash (outputs kept).
    error : str or None
        ``"ExceptionType: message"`` when failed.
    failed_step : str or None
        ``"load"`` or ``"steps[i] name"`` where it failed.
    metrics : dict
        Flat headline metrics (``"<output>.<key>"`` -> number or str).
    outputs : list of str
        Files written, relative to the recording's folder.
    timings : list of dict
        ``{"step", "compute_s", "write_s"}`` for loading and each step.
    seconds : float
        Wall time in the worker.
    """

    recording_id: str
    path: str
    status: str
    error: str | None = None
    failed_step: str | None = None
    traceback: str | None = None
    metrics: dict = field(default_factory=dict)
    outputs: list = field(default_factory=list)
    timings: list = field(default_factory=list)
    seconds: float = 0.0
    started: str | None = None
    ended: str | None = None
    worker: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the recording's outputs are complete (done now or before)."""
        return self.status in ("ok", "skipped")


@dataclass
class RunReport:
    """The outcome of :func:`run_pipeline`.

    Attributes
    ----------
    out : Path
    results : list of RecordingResult
        In the order of the recordings.
    summary_path, run_path, log_path : Path
    seconds : float
    """

    out: Path
    results: list
    summary_path: Path
    run_path: Path
    log_path: Path
    seconds: float

    @property
    def n_ok(self) -> int:
        return sum(r.status == "ok" for r in self.results)

    @property
    def n_skipped(self) -> int:
        return sum(r.status == "skipped" for r in self.results)

    @property
    def n_failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    @property
    def ok(self) -> bool:
        """True when every recording succeeded (now or in an earlier run)."""
        return all(r.ok for r in self.results)


# ====================================================================== recordings
def expand_recordings(items: Iterable) -> list[Path]:
    """Files and folders -> the recordings, folders searched with ``find_recordings``.

    Parameters
    ----------
    items : iterable of str or Path
        NWB files, Zarr NWB folders, or folders holding recordings.

    Returns
    -------
    paths : list of Path
        Absolute, in the order given (each folder's recordings sorted), without
        duplicates.

    Raises
    ------
    RecordingError
        A path does not exist, or nothing at all was found.
    """
    from ..io.nwb import _is_recording, find_recordings

    items = [items] if isinstance(items, str | os.PathLike) else list(items)
    found, seen = [], set()
    for item in items:
        p = Path(item).expanduser()
        if not p.exists():
            raise RecordingError(f"Recording path '{item}' does not exist.")
        paths = [p] if (p.is_file() or _is_recording(p)) else find_recordings(p)
        if not paths:
            _log.warning("No NWB recordings found in folder '%s'.", item)
        for q in paths:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                found.append(key)
    if not found:
        raise RecordingError(
            f"No NWB recordings found in {', '.join(repr(str(i)) for i in items)} "
            "(looked for *.nwb files and Zarr NWB folders)."
        )
    return found


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".zarr.nwb", ".nwb.zarr", ".nwb", ".zarr"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return path.stem or name


def recording_ids(paths: list[Path]) -> list[str]:
    """A unique, filesystem-safe id per recording: its file name without the NWB suffix.

    Where two files share a name (``a/s1.nwb``, ``b/s1.nwb``) their parent folders are
    prefixed (``a_s1``, ``b_s1``) until the ids differ.
    """
    taken = {"summary.csv", "run.json", "run.log", ".neuroml.lock"}

    def clean(s: str) -> str:
        s = "".join(c if c.isalnum() or c in "-_." else "_" for c in s).lstrip(".") or "recording"
        return f"rec_{s}" if s in taken else s

    ids = [clean(_stem(p)) for p in paths]
    depth = 0
    while len(set(ids)) < len(ids) and depth < 8:
        depth += 1
        counts = pd.Series(ids).value_counts()
        for i, p in enumerate(paths):
            if counts[ids[i]] > 1:
                parents = [q.name for q in list(p.parents)[:depth]][::-1]
                ids[i] = clean("_".join([*parents, _stem(p)]))
    seen: dict[str, int] = {}
    for i, rid in enumerate(ids):  # last resort: numbered
        if rid in seen:
            seen[rid] += 1
            ids[i] = f"{rid}_{seen[rid]}"
        else:
            seen[rid] = 0
    return ids


# ====================================================================== one recording
def _resolve_loader(spec: str) -> Callable:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


#: Modules the built-in steps use, imported by each worker before its first recording
#: (so import time counts as start-up, not as the first recording's step time).
WARM_MODULES = ("numpy", "xarray", "netCDF4", "torch", "matplotlib.figure",
                "matplotlib.backends.backend_agg", "sklearn.model_selection")


def preload(modules: tuple) -> None:
    """Import ``modules`` (those missing are skipped): a worker's warm-up."""
    for name in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _flatten(prefix: str, value: Any, out: dict) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
        return
    v = io_out.to_jsonable(value)
    if v is None or isinstance(v, bool | int | float | str):
        out[prefix] = v


def _check_value(step: str, output: str, kind: str, value: Any) -> None:
    ok = {
        "array": lambda v: isinstance(v, xr.DataArray),
        "metrics": lambda v: isinstance(v, Mapping),
        "table": lambda v: isinstance(v, pd.DataFrame),
        "figure": lambda v: hasattr(v, "savefig"),
        "data": lambda v: True,
    }[kind](value)
    if not ok:
        raise NeuroMLError(
            f"Step {step!r} returned {type(value).__name__} for its {kind} output {output!r}."
        )


def _close_figure(fig) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def process_recording(task: RecordingTask, events: Callable | None = None) -> RecordingResult:
    """Load one recording, run every step, write the outputs and, last, the done-marker.

    Never raises for a problem with the recording: the returned result says
    ``status="failed"`` with the error and where it happened.

    Parameters
    ----------
    task : RecordingTask
    events : callable, default=None
        Called with ``("step", recording_id, index, name)`` as each step starts.
    """
    t_start = time.perf_counter()
    result = RecordingResult(recording_id=task.recording_id, path=task.path, status="failed",
                             started=_now(), worker=f"{socket.gethostname()}:{os.getpid()}")
    pipeline = task.pipeline
    rec_dir = Path(task.out_dir)
    where = "setup"
    rec = None
    try:
        for module in pipeline.step_modules:
            importlib.import_module(module)
        limit_threads(task.torch_threads)
        rec_dir.mkdir(parents=True, exist_ok=True)
        old = io_out.read_marker(rec_dir)
        (rec_dir / io_out.MARKER).unlink(missing_ok=True)
        io_out.remove_stale_temporaries(rec_dir)
        source_fp = io_out.fingerprint(task.path)

        where = "load"
        if events:
            events(("step", task.recording_id, 0, "load"))
        t0 = time.perf_counter()
        rec = _resolve_loader(task.loader)(task.path)
        result.timings.append({"step": "load", "compute_s": time.perf_counter() - t0, "write_s": 0.0})
        context: dict[str, Any] = {CONTEXT_ROOT: rec}

        for sc in pipeline.steps:
            where = sc.label
            if events:
                events(("step", task.recording_id, sc.index + 1, sc.step))
            spec = get_step(sc.step)
            kwargs = {slot: context[name] for slot, name in sc.inputs.items()}
            kwargs.update(sc.params)
            ctx = StepContext(recording_id=task.recording_id, device=task.device,
                              step_index=sc.index, step_name=sc.step)
            t0 = time.perf_counter()
            values = spec.func(ctx, **kwargs)
            t1 = time.perf_counter()
            if not isinstance(values, Mapping) or set(values) != set(spec.outputs):
                got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
                raise NeuroMLError(
                    f"Step {sc.step!r} must return a dict with the outputs "
                    f"{sorted(spec.outputs)}; it returned {got}."
                )
            for o, value in values.items():
                kind = spec.outputs[o].kind
                name = sc.outputs[o]
                _check_value(sc.step, o, kind, value)
                if kind == "figure":
                    try:
                        paths = io_out.write_figure(rec_dir / name, value, pipeline.figure_formats,
                                                    pipeline.dpi)
                    finally:
                        _close_figure(value)
                    result.outputs += [p.name for p in paths]
                    continue
                context[name] = value
                if kind == "metrics":
                    _flatten(name, value, result.metrics)
                if not sc.save.get(o, False) or kind == "data":
                    continue
                path = rec_dir / (name + _EXT[kind])
                if kind == "array":
                    io_out.write_array(path, value, name)
                elif kind == "metrics":
                    io_out.write_json(path, value)
                else:
                    io_out.write_table(path, value)
                result.outputs.append(path.name)
            result.timings.append({"step": sc.label, "compute_s": t1 - t0,
                                   "write_s": time.perf_counter() - t1})

        where = "finish"
        for stale in set((old or {}).get("outputs", {})) - set(result.outputs):
            with contextlib.suppress(OSError):
                (rec_dir / stale).unlink()
        result.status = "ok"
        result.seconds = time.perf_counter() - t_start
        result.ended = _now()
        io_out.write_marker(
            rec_dir, pipeline_hash=task.pipeline_hash, source_fingerprint=source_fp,
            outputs=result.outputs,
            extra={"recording_id": task.recording_id, "path": task.path,
                   "finished": result.ended, "metrics": result.metrics,
                   "timings": result.timings},
        )
    except Exception as err:
        result.status = "failed"
        result.error = f"{type(err).__name__}: {err}"
        result.failed_step = where
        result.traceback = traceback.format_exc()
    finally:
        if rec is not None:
            with contextlib.suppress(Exception):
                rec.close()
        result.seconds = time.perf_counter() - t_start
        result.ended = result.ended or _now()
    return result


# ====================================================================== provenance
_PACKAGES = ("numpy", "scipy", "scikit-learn", "torch", "pandas", "xarray", "pynwb", "hdmf",
             "h5py", "netCDF4", "matplotlib", "PyYAML", "hdmf-zarr", "dask", "distributed")


def versions() -> dict:
    """Versions of Python, neuroml and the packages it depends on (those installed)."""
    out = {"python": platform.python_version(), "neuroml": __version__}
    for pkg in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _device_info(device: str) -> dict:
    from ..device import resolve_device

    dev = resolve_device(device)
    info = {"requested": device, "resolved": str(dev)}
    if dev.type == "cuda":
        import torch

        info["name"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
    return info


class _RunLock:
    """An advisory lock on ``OUT/.neuroml.lock``: one run writes to a folder at a time.

    The kernel releases it when the process dies, so a killed run never leaves it held.
    """

    def __init__(self, out: Path):
        self.path = out / ".neuroml.lock"
        self.fh = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return self
        self.fh = open(self.path, "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            self.fh = None
            raise NeuroMLError(
                f"Another neuroml run is writing to '{self.path.parent}'; wait for it to "
                "finish or choose another --out folder."
            ) from None
        return self

    def __exit__(self, *exc):
        if self.fh is not None:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()


def _summary_frame(results: list[RecordingResult]) -> pd.DataFrame:
    rows, metric_cols = [], []
    for r in results:
        for k in r.metrics:
            if k not in metric_cols:
                metric_cols.append(k)
    for r in results:
        row = {"recording": r.recording_id, "status": r.status,
               "error": r.error or "", "failed_step": r.failed_step or "",
               "seconds": round(r.seconds, 3), "path": r.path}
        row.update({k: r.metrics.get(k) for k in metric_cols})
        rows.append(row)
    df = pd.DataFrame(rows, columns=["recording", "status", "error", "failed_step", "seconds",
                                     "path", *metric_cols])
    for col in metric_cols:  # integer metrics stay integers next to failed (empty) rows
        values = [r.metrics[col] for r in results if r.metrics.get(col) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            df[col] = df[col].astype("Int64")
    return df


def _file_sha256(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


# ====================================================================== the run
def run_pipeline(pipeline, recordings, out, *, executor: str | Executor = "serial",
                 workers: int | None = None, scheduler: str | None = None,
                 device: str = "auto", force: bool = False, progress: bool | None = None,
                 loader: str = DEFAULT_LOADER, command: list | None = None) -> RunReport:
    """Run a pipeline over recordings, writing results to ``out``.

    Parameters
    ----------
    pipeline : str, Path or PipelineConfig
        A pipeline file (validated completely before any data is read) or a parsed one.
    recordings : str, Path or list of them
        NWB files, Zarr NWB folders, or folders searched with ``find_recordings``.
    out : str or Path
        The output folder (created when missing).
    executor : {"serial", "processes", "dask"} or Executor, default="serial"
    workers : int, default=None
        Worker processes / LocalCluster workers; all cores when None.
    scheduler : str, default=None
        Address of a running Dask scheduler (with ``executor="dask"``).
    device : str, default="auto"
        Device for the estimators (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``).
    force : bool, default=False
        Redo every recording, even those done under the same pipeline hash.
    progress : bool, default=None
        Draw a progress bar on stderr; when None, only when stderr is a terminal.
    loader : str, default="neuroml.io.nwb:load_recording"
        ``"module:function"`` that opens a recording file.
    command : list of str, default=None
        The command line, kept in ``run.json``.

    Returns
    -------
    report : RunReport
        ``report.ok`` is True when every recording succeeded.

    Raises
    ------
    ConfigError
        The pipeline file is invalid.
    RecordingError
        A recording path does not exist, or none were found.
    DeviceError
        The device asked for is not here.
    NeuroMLError
        Another run is writing to ``out``.
    """
    t_run = time.perf_counter()
    config = pipeline if isinstance(pipeline, PipelineConfig) else load_pipeline(pipeline)
    paths = expand_recordings(recordings)
    ex = executor if isinstance(executor, Executor) else make_executor(
        executor, workers=workers, scheduler=scheduler)
    remote = getattr(ex, "scheduler", None) is not None
    device_info = {"requested": device} if remote else _device_info(device)
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    ids = recording_ids(paths)
    phash = config.hash
    summary_path, run_path, log_path = out / "summary.csv", out / "run.json", out / "run.log"

    with _RunLock(out), _logging_to(log_path, progress) as console:
        started = _now()
        _log.info("Pipeline '%s' (hash %s) on %d recording(s), executor %s, device %s -> %s",
                  config.name, phash[:12], len(paths), ex.name, device_info.get("resolved", device),
                  out)
        results: dict[str, RecordingResult] = {}
        tasks = []
        for path, rid in zip(paths, ids):
            rec_dir = out / rid
            marker = None
            if not force:
                with contextlib.suppress(OSError):
                    marker = io_out.check_marker(rec_dir, phash, io_out.fingerprint(path))
            if marker is not None:
                results[rid] = RecordingResult(
                    recording_id=rid, path=str(path), status="skipped",
                    metrics=dict(marker.get("metrics", {})), outputs=sorted(marker["outputs"]),
                    timings=list(marker.get("timings", [])), started=marker.get("finished"),
                    ended=marker.get("finished"),
                )
            else:
                tasks.append(RecordingTask(path=str(path), recording_id=rid, out_dir=str(rec_dir),
                                           pipeline=config, pipeline_hash=phash, device=device,
                                           loader=loader))
        if results:
            _log.info("%d recording(s) already done under this pipeline hash: skipped "
                      "(use --force to redo them).", len(results))

        order = {rid: i for i, rid in enumerate(ids)}
        pending = {t.recording_id: t for t in tasks}

        def ordered() -> list[RecordingResult]:
            rows = []
            for rid, path in zip(ids, paths):
                rows.append(results.get(rid) or RecordingResult(rid, str(path), "pending"))
            return rows

        run_info = {
            "neuroml_version": __version__,
            "command": command,
            "pipeline": {"file": config.source, "name": config.name,
                         "description": config.description, "hash": phash,
                         "file_sha256": _file_sha256(config.source), "text": config.text,
                         "config": config.to_dict()},
            "versions": versions(),
            "device": device_info,
            "executor": ex.describe(),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "out": str(out),
            "started": started,
            "status": "running",
        }

        def write_run(status: str, ex_info: dict) -> None:
            done = ordered()
            info = dict(run_info, status=status, executor=ex_info, ended=_now(),
                        seconds=round(time.perf_counter() - t_run, 3),
                        counts={s: sum(r.status == s for r in done)
                                for s in ("ok", "skipped", "failed", "pending")},
                        recordings=[_result_json(r) for r in done])
            io_out.write_json(run_path, info, durable=False)

        prog = Progress(len(tasks), len(config.steps) + 1,
                        bar=bool(console.stream.isatty()) if progress is None else bool(progress),
                        stream=console.stream)
        console.progress = prog
        status = "interrupted"
        io_out.write_text(summary_path, _summary_frame(ordered()).to_csv(index=False),
                                      durable=False)
        write_run("running", ex.describe())
        try:
            with ex:
                threads = ex.task_threads(len(tasks))
                if threads:
                    tasks = [_with_threads(t, threads) for t in tasks]

                def on_event(event):
                    if event and event[0] == "step":
                        prog.step(event[1], event[2], event[3])

                n_done = 0
                warm = (loader.partition(":")[0], *config.step_modules, *WARM_MODULES)
                for task, res in ex.map_unordered(process_recording, tasks,
                                                  on_event if prog.bar else None,
                                                  init=functools.partial(preload, warm)):
                    if isinstance(res, BaseException):
                        res = RecordingResult(
                            recording_id=task.recording_id, path=task.path, status="failed",
                            error=f"{type(res).__name__}: {res} (the worker running it died or "
                                  "was lost; rerun to retry)", failed_step="worker",
                        )
                    results[res.recording_id] = res
                    pending.pop(res.recording_id, None)
                    n_done += 1
                    prog.finished(res.recording_id, res.ok)
                    _report(res, n_done, len(tasks))
                    io_out.write_text(summary_path, _summary_frame(ordered()).to_csv(index=False),
                                      durable=False)
                ex_info = ex.describe()
            status = "finished"
        finally:
            prog.close()
            console.progress = None
            write_run(status, ex.describe() if status != "finished" else ex_info)
            io_out.write_text(summary_path, _summary_frame(ordered()).to_csv(index=False),
                                      durable=False)

        final = [results[rid] for rid in sorted(results, key=order.get)]
        report = RunReport(out=out, results=final, summary_path=summary_path, run_path=run_path,
                           log_path=log_path, seconds=time.perf_counter() - t_run)
        _log.info("Finished in %.1f s: %d ok, %d skipped (already done), %d failed.",
                  report.seconds, report.n_ok, report.n_skipped, report.n_failed)
    return report


def _with_threads(task: RecordingTask, threads: int) -> RecordingTask:
    return RecordingTask(**{**{f: getattr(task, f) for f in task.__dataclass_fields__},
                            "torch_threads": threads})


def _result_json(r: RecordingResult) -> dict:
    d = asdict(r)
    d["seconds"] = round(d["seconds"], 4)
    d["steps"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in t.items()}
                  for t in d.pop("timings")]
    return d


def _report(res: RecordingResult, n: int, total: int) -> None:
    if res.status == "ok":
        steps = ", ".join(f"{t['step'].split(' ')[-1]} {t['compute_s'] + t['write_s']:.2f}s"
                          for t in res.timings)
        _log.info("[%d/%d] %s: ok in %.1f s (%s)", n, total, res.recording_id, res.seconds, steps)
    else:
        _log.error("[%d/%d] %s: FAILED at %s: %s", n, total, res.recording_id,
                   res.failed_step, res.error)
        if res.traceback:
            _log.debug("Traceback for %s (%s):\n%s", res.recording_id, res.path, res.traceback)


@contextlib.contextmanager
def _logging_to(log_path: Path, progress: bool | None):
    """Attach ``run.log`` (everything, with tracebacks) for the run; yield the console handler.

    The console handler is the package's own when the CLI set one up, else a
    temporary handler that shows nothing (library use stays quiet).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    fh.setLevel(logging.DEBUG)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    old_level = _log.level
    _log.setLevel(logging.DEBUG)
    _log.addHandler(fh)
    console = next((h for h in _log.handlers if isinstance(h, BarAwareHandler)), None)
    if console is None:
        console = _NullConsole()
    try:
        yield console
    finally:
        _log.removeHandler(fh)
        fh.close()
        _log.setLevel(old_level)


class _NullConsole:
    """Stands in for the console handler when none is attached (library use)."""

    def __init__(self):
        self.progress = None
        self.stream = sys.stderr
