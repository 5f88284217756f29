"""Writing results: atomic files, NetCDF/JSON/CSV/figure writers, and done-markers.

Every file is written to a temporary file in the destination folder, flushed to disk,
and moved over the destination with :func:`os.replace` (atomic on POSIX and Windows), so
a reader — or a rerun after the process was killed — sees either the old file or the
complete new one, never a partial file. Left-over temporary files of a killed run are
hidden (``.<name>.<random>.tmp``) and removed when the recording is processed again.

A recording counts as done only when its **done-marker** (``_done.json``, written last)
exists, holds the current pipeline hash and the input file's fingerprint, and every
output it lists exists with the size it lists.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "MARKER",
    "atomic_path",
    "write_bytes",
    "write_text",
    "write_json",
    "write_array",
    "write_table",
    "write_figure",
    "sanitize_array",
    "to_jsonable",
    "fingerprint",
    "write_marker",
    "read_marker",
    "check_marker",
    "remove_stale_temporaries",
]

#: File name of the per-recording done-marker.
MARKER = "_done.json"

_UMASK = os.umask(0)
os.umask(_UMASK)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    The temporary file is in the same folder (so the final :func:`os.replace` is an
    atomic rename on one filesystem), flushed to disk before the rename when
    ``durable``, and given the usual ``0o666 & ~umask`` permissions. On any error it is
    removed and ``path`` is left as it was.

    The rename alone makes the write safe against a killed process; ``durable`` also
    makes it survive a power cut (the done-marker is written only after the folder
    holding the outputs has been flushed too, see :func:`write_marker`).

    Parameters
    ----------
    path : str or Path
        The destination; its folder is created when missing.
    durable : bool, default=True
        ``fsync`` the content before the rename.

    Yields
    ------
    tmp : Path
        Write the content here.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(path, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str, *, durable: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), durable=durable)


def to_jsonable(value: Any) -> Any:
    """Convert NumPy/pandas/xarray scalars and arrays to plain JSON types.

    NaN and infinities become ``None`` (JSON has no NaN); tuples become lists; other
    objects become their ``str``.
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    if isinstance(value, xr.DataArray):
        value = value.values
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()] if value.ndim else to_jsonable(value.item())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, pd.Timestamp | np.datetime64):
        return str(value)
    return str(value)


def write_json(path, obj: Any, *, durable: bool = True) -> Path:
    """Write ``obj`` as indented JSON atomically (see :func:`to_jsonable`)."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    return write_text(path, text + "\n", durable=durable)


# ====================================================================== arrays
def _sanitize_attrs(attrs: Mapping) -> dict:
    out = {}
    for key, value in attrs.items():
        key = str(key)
        if value is None:
            continue
        if isinstance(value, bool | np.bool_):
            out[key] = int(value)
        elif isinstance(value, str | int | float | np.integer | np.floating):
            out[key] = value
        elif isinstance(value, list | tuple | np.ndarray):
            arr = np.asarray(value) if len(value) else np.asarray([], dtype=float)
            if arr.dtype.kind in "iuf" and arr.ndim == 1:
                out[key] = arr
            elif arr.dtype.kind == "b" and arr.ndim == 1:
                out[key] = arr.astype(np.int8)
            else:
                out[key] = json.dumps(to_jsonable(value))
        else:
            out[key] = json.dumps(to_jsonable(value))
    return out


def _sanitize_values(values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        return values
    flat = values.ravel()
    if all(isinstance(v, str) for v in flat):
        return values.astype(str)
    if all(isinstance(v, bool | np.bool_) for v in flat):
        return values.astype(bool)
    if all(isinstance(v, numbers_real) and not isinstance(v, bool | np.bool_) for v in flat):
        return values.astype(np.float64)
    return np.array([json.dumps(to_jsonable(v)) if not isinstance(v, str) else v for v in flat],
                    dtype=str).reshape(values.shape)


numbers_real = (int, float, np.integer, np.floating)


def sanitize_array(da: xr.DataArray, name: str | None = None) -> xr.DataArray:
    """A copy of ``da`` that NetCDF can store.

    Object-dtype coordinates become strings (or numbers/booleans when they all are;
    ragged cells are stored as JSON text), multi-indexes are reset to plain
    coordinates, and attributes that NetCDF cannot hold (``None``, dicts, nested or
    mixed lists) are dropped (``None``) or stored as JSON text; booleans become 0/1.

    Parameters
    ----------
    da : xarray.DataArray
    name : str, default=None
        Name of the variable in the file (``da.name``, else ``"data"``, when None).
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"expected an xarray.DataArray, got {type(da).__name__}")
    da = da.copy(deep=False)
    for dim in list(da.dims):
        if dim in da.indexes and isinstance(da.indexes[dim], pd.MultiIndex):
            da = da.reset_index(dim)
    coords = {}
    for cname, coord in da.coords.items():
        values = _sanitize_values(np.asarray(coord.values))
        coords[cname] = (coord.dims, values, _sanitize_attrs(coord.attrs))
    data = _sanitize_values(np.asarray(da.values))
    return xr.DataArray(data, dims=da.dims, coords=coords, name=name or da.name or "data",
                        attrs=_sanitize_attrs(da.attrs))


_NETCDF_LOCK = threading.Lock()


def write_array(path, da: xr.DataArray, name: str | None = None) -> Path:
    """Write a DataArray as NetCDF-4 atomically (after :func:`sanitize_array`).

    Read it back with ``xarray.open_dataarray(path)`` (or ``load_dataarray``).
    """
    clean = sanitize_array(da, name)
    # The netCDF-C/HDF5 libraries are not thread-safe: workers that are threads of one
    # process (a Dask LocalCluster with processes=False, multi-threaded Dask workers)
    # must not write at the same time, or the process crashes.
    with _NETCDF_LOCK, atomic_path(path) as tmp:
        clean.to_netcdf(tmp, format="NETCDF4")
    return Path(path)


def write_table(path, df: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV atomically (the index is written when it is named)."""
    text = df.to_csv(index=df.index.name is not None)
    return write_text(path, text)


_NO_DATES = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}


def write_figure(base, fig, formats=("png",), dpi: int = 100) -> list[Path]:
    """Save a matplotlib figure as ``base.<format>`` for each format, atomically.

    PDF and SVG are written without a creation date (and SVG with fixed element ids),
    so the same figure gives the same file. The figure is not closed.

    Returns
    -------
    paths : list of Path
    """
    import matplotlib

    base = Path(base)
    paths = []
    for fmt in formats:
        path = base.with_name(base.name + "." + fmt)
        # a fixed salt makes SVG element ids the same from run to run
        with atomic_path(path) as tmp, open(tmp, "wb") as fh, \
                matplotlib.rc_context({"svg.hashsalt": "neuroml"}):
            fig.savefig(fh, format=fmt, dpi=dpi, metadata=_NO_DATES[fmt])
        paths.append(path)
    return paths


# ====================================================================== done markers
def fingerprint(path) -> dict:
    """Size and modification time of an input file (or a Zarr folder's files).

    A recording is redone when its input file changed since its outputs were made.
    """
    p = Path(path)
    if p.is_dir():
        size, mtime, n = 0, 0, 0
        for root, _, files in os.walk(p):
            for f in files:
                st = os.stat(os.path.join(root, f))
                size += st.st_size
                mtime = max(mtime, st.st_mtime_ns)
                n += 1
        return {"name": p.name, "size": size, "mtime_ns": mtime, "files": n}
    st = p.stat()
    return {"name": p.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_marker(rec_dir, *, pipeline_hash: str, source_fingerprint: dict, outputs: list[str],
                 extra: Mapping | None = None) -> Path:
    """Write the done-marker of a recording (call it after every output is written).

    Parameters
    ----------
    rec_dir : Path
        The recording's output folder.
    pipeline_hash : str
        :attr:`PipelineConfig.hash`.
    source_fingerprint : dict
        :func:`fingerprint` of the input file.
    outputs : list of str
        File names (relative to ``rec_dir``) of every output written.
    extra : mapping, default=None
        More to keep (metrics for the summary, timings).
    """
    rec_dir = Path(rec_dir)
    listing = {name: (rec_dir / name).stat().st_size for name in outputs}
    body = {"pipeline_hash": pipeline_hash, "source": source_fingerprint, "outputs": listing}
    body.update(extra or {})
    _fsync_dir(rec_dir)  # the outputs' renames reach the disk before the marker exists
    path = write_json(rec_dir / MARKER, body)
    _fsync_dir(rec_dir)
    return path


def read_marker(rec_dir) -> dict | None:
    """The done-marker's content, or None when missing or unreadable."""
    try:
        with open(Path(rec_dir) / MARKER, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_marker(rec_dir, pipeline_hash: str, source_fingerprint: dict) -> dict | None:
    """The marker when the recording is done under this pipeline and input, else None.

    Done means: the marker exists and parses, holds ``pipeline_hash`` and the same
    input fingerprint, and every listed output exists with the listed size.
    """
    rec_dir = Path(rec_dir)
    marker = read_marker(rec_dir)
    if marker is None or marker.get("pipeline_hash") != pipeline_hash:
        return None
    if marker.get("source") != source_fingerprint:
        return None
    outputs = marker.get("outputs")
    if not isinstance(outputs, dict):
        return None
    for name, size in outputs.items():
        try:
            if (rec_dir / name).stat().st_size != size:
                return None
        except OSError:
            return None
    return marker


def remove_stale_temporaries(rec_dir) -> int:
    """Delete temporary files a killed run left in ``rec_dir``; return how many."""
    n = 0
    rec_dir = Path(rec_dir)
    if not rec_dir.is_dir():
        return 0
    for p in rec_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
            n += 1
    return n
