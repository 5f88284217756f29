"""What a run reports: the RunReport, summary.csv rows, run.json provenance, the folder lock."""

from __future__ import annotations

import contextlib
import hashlib
import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import NeuroMLError
from .worker import RecordingResult

__all__ = ["RunReport", "RunLock", "versions", "device_info", "summary_frame", "file_sha256",
           "result_json"]


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


_PACKAGES = ("numpy", "scipy", "scikit-learn", "torch", "pandas", "xarray", "pynwb", "hdmf",
             "h5py", "netCDF4", "matplotlib", "PyYAML", "hdmf-zarr", "dask", "distributed")


def versions() -> dict:
    """Versions of Python, neuroml and the packages it depends on (those installed)."""
    out = {"python": platform.python_version(), "neuroml": __version__}
    for pkg in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def device_info(device: str) -> dict:
    from ..device import resolve_device

    dev = resolve_device(device)
    info = {"requested": device, "resolved": str(dev)}
    if dev.type == "cuda":
        import torch

        info["name"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
    return info


class RunLock:
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


def summary_frame(results: list[RecordingResult]) -> pd.DataFrame:
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


def file_sha256(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def result_json(r: RecordingResult) -> dict:
    d = asdict(r)
    d["seconds"] = round(d["seconds"], 4)
    d["steps"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in t.items()}
                  for t in d.pop("timings")]
    return d
