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
import functools
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import RecordingError
from . import outputs as io_out
from .config import PipelineConfig, load_pipeline
from .executors import Executor, make_executor
from .progress import BarAwareHandler, Progress
from .report import (
    RunLock,
    RunReport,
    device_info,
    file_sha256,
    result_json,
    summary_frame,
    versions,
)
from .worker import (
    DEFAULT_LOADER,
    WARM_MODULES,
    RecordingResult,
    RecordingTask,
    now,
    preload,
    process_recording,
)

__all__ = [
    "DEFAULT_LOADER",
    "RecordingTask",
    "RecordingResult",
    "RunReport",
    "expand_recordings",
    "recording_ids",
    "process_recording",
    "run_pipeline",
    "versions",
]

_log = logging.getLogger("neuroml.pipeline")


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
    dev_info = {"requested": device} if remote else device_info(device)
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    ids = recording_ids(paths)
    phash = config.hash
    summary_path, run_path, log_path = out / "summary.csv", out / "run.json", out / "run.log"

    with RunLock(out), _logging_to(log_path, progress) as console:
        # Under the lock no other run writes here: temporary files beside summary.csv /
        # run.json are leftovers of a run killed mid-write (each recording's own folder
        # is cleaned by its worker).
        io_out.remove_stale_temporaries(out)
        started = now()
        _log.info("Pipeline '%s' (hash %s) on %d recording(s), executor %s, device %s -> %s",
                  config.name, phash[:12], len(paths), ex.name, dev_info.get("resolved", device),
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
                         "file_sha256": file_sha256(config.source), "text": config.text,
                         "config": config.to_dict()},
            "versions": versions(),
            "device": dev_info,
            "executor": ex.describe(),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "out": str(out),
            "started": started,
            "status": "running",
        }

        def write_run(status: str, ex_info: dict) -> None:
            done = ordered()
            info = dict(run_info, status=status, executor=ex_info, ended=now(),
                        seconds=round(time.perf_counter() - t_run, 3),
                        counts={s: sum(r.status == s for r in done)
                                for s in ("ok", "skipped", "failed", "pending")},
                        recordings=[result_json(r) for r in done])
            io_out.write_json(run_path, info, durable=False)

        prog = Progress(len(tasks), len(config.steps) + 1,
                        bar=bool(console.stream.isatty()) if progress is None else bool(progress),
                        stream=console.stream)
        console.progress = prog
        status = "interrupted"
        io_out.write_text(summary_path, summary_frame(ordered()).to_csv(index=False),
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
                seen_warnings: set = set()
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
                    _report(res, n_done, len(tasks), seen_warnings)
                    io_out.write_text(summary_path, summary_frame(ordered()).to_csv(index=False),
                                      durable=False)
                ex_info = ex.describe()
            status = "finished"
        finally:
            prog.close()
            console.progress = None
            write_run(status, ex.describe() if status != "finished" else ex_info)
            io_out.write_text(summary_path, summary_frame(ordered()).to_csv(index=False),
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


def _report(res: RecordingResult, n: int, total: int, seen: set) -> None:
    for text in res.warnings:  # each distinct warning once on the console, all in run.log
        level = logging.DEBUG if text in seen else logging.WARNING
        seen.add(text)
        _log.log(level, "%s: %s", res.recording_id, text)
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
