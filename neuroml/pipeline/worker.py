"""Processing one recording: what a worker runs for each task.

:func:`process_recording` loads the recording, runs the pipeline's steps in order,
passing values between them by name in a per-recording context, writes each step's
outputs atomically to ``OUT/<recording-id>/`` and, last, the done-marker. It never
raises for a problem with the recording: the returned :class:`RecordingResult` says
what failed and where. Tasks and results are plain picklable dataclasses, so any
executor (this process, spawned processes, Dask workers) can run it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import os
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ..errors import NeuroMLError
from . import outputs as io_out
from .config import PipelineConfig
from .executors import limit_threads
from .registry import CONTEXT_ROOT, StepContext, get_step

__all__ = [
    "DEFAULT_LOADER",
    "WARM_MODULES",
    "RecordingTask",
    "RecordingResult",
    "process_recording",
    "preload",
]

#: The function that opens a recording file, as ``"module:function"``.
DEFAULT_LOADER = "neuroml.io.nwb:load_recording"

_EXT = {"array": ".nc", "metrics": ".json", "table": ".csv"}


def now() -> str:
    """The local time, ISO 8601 with the UTC offset, to the second."""
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


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
    warnings : list of str
        ``"<step>: <Category>: <message>"`` for each distinct warning raised (at most 20).
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
    warnings: list = field(default_factory=list)
    seconds: float = 0.0
    started: str | None = None
    ended: str | None = None
    worker: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the recording's outputs are complete (done now or before)."""
        return self.status in ("ok", "skipped")


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


_MAX_WARNINGS = 20


@contextlib.contextmanager
def _recording_warnings(result: RecordingResult, where: str):
    """Collect the warnings a step raises into ``result.warnings`` (deduplicated).

    They reach ``run.log`` and ``run.json`` with the recording and step they came from
    instead of interleaving with the progress bar. Only in a worker's main thread:
    :func:`warnings.catch_warnings` is process-global, so threaded workers (a Dask
    cluster of threads) leave warnings to Python's default handling.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            for w in caught:
                text = f"{where}: {w.category.__name__}: {w.message}"
                if text not in result.warnings and len(result.warnings) < _MAX_WARNINGS:
                    result.warnings.append(text)


def _close_figure(fig) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


_THREAD_LOCK = threading.Lock()


def process_recording(task: RecordingTask, events: Callable | None = None) -> RecordingResult:
    """Load one recording, run every step, write the outputs and, last, the done-marker.

    Never raises for a problem with the recording: the returned result says
    ``status="failed"`` with the error and where it happened.

    Workers that are threads of one process (a Dask cluster of threads) process one
    recording at a time: HDF5 (read by h5py for NWB) and netCDF-C (written for the
    arrays) are not thread-safe across libraries, and concurrent calls can crash the
    process. Worker processes are not limited.

    Parameters
    ----------
    task : RecordingTask
    events : callable, default=None
        Called with ``("step", recording_id, index, name)`` as each step starts.
    """
    if threading.current_thread() is threading.main_thread():
        return _process(task, events)
    with _THREAD_LOCK:
        return _process(task, events)


def _process(task: RecordingTask, events: Callable | None) -> RecordingResult:
    t_start = time.perf_counter()
    result = RecordingResult(recording_id=task.recording_id, path=task.path, status="failed",
                             started=now(), worker=f"{socket.gethostname()}:{os.getpid()}")
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
        with _recording_warnings(result, "load"):
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
            with _recording_warnings(result, sc.label):
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
                if value is None:  # an output this configuration does not produce
                    context[name] = None
                    continue
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
        result.ended = now()
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
        result.ended = result.ended or now()
    return result
