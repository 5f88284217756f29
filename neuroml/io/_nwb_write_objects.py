"""Writing one NWB object: table columns, a TimeIntervals table, a TimeSeries.

Numeric arrays of more than :data:`_COMPRESS_ABOVE` elements (spike times, long signals,
their timestamps, long table columns) are written gzip-compressed; gzip is lossless, so
they read back bit for bit.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ParameterError
from ._nwb_common import _DERIVED_ATTRS, _MARKER

#: Numeric arrays with more elements than this are written gzip-compressed.
_COMPRESS_ABOVE = 100_000
#: gzip level (1 fastest .. 9 smallest); 4 is hdmf's and h5py's usual middle ground.
_GZIP_LEVEL = 4


def _compressed(data):
    """``data`` wrapped for gzip compression (with the shuffle filter) when it is a numeric
    array of more than ``_COMPRESS_ABOVE`` elements; anything else is returned as is."""
    if (isinstance(data, np.ndarray) and data.dtype.kind in "biuf"
            and data.size > _COMPRESS_ABOVE):
        from hdmf.backends.hdf5 import H5DataIO

        return H5DataIO(data, compression="gzip", compression_opts=_GZIP_LEVEL, shuffle=True)
    return data


def _column(name: str, description: str, data, ends=None) -> list:
    """A VectorData column, and its VectorIndex when ``ends`` (the end of each row in the
    flat ``data``) is given; large arrays compressed."""
    from hdmf.common import VectorData, VectorIndex

    column = VectorData(name=name, description=description, data=_compressed(data))
    if ends is None:
        return [column]
    return [column, VectorIndex(name=f"{name}_index", data=_compressed(ends), target=column)]


def _column_data(name: str, values: pd.Series) -> tuple[Any, Any, str | None]:
    """NWB-storable (data, index) for one column, or (None, None, reason) if it is not."""
    arr = values.to_numpy()
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        values = values.astype(object)
        arr, dtype = values.to_numpy(), values.dtype
    if isinstance(dtype, pd.StringDtype):
        if values.isna().any():
            return None, None, "missing values in a string column (fill them first)"
        return values.to_numpy(dtype=object), None, None
    if pd.api.types.is_extension_array_dtype(dtype):
        if values.isna().any():
            if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
                return values.astype("float64").to_numpy(), None, None
            return None, None, f"missing values in a {dtype} column"
        arr = values.to_numpy(dtype=dtype.numpy_dtype)
    if arr.dtype.kind in "biuf":
        return arr, None, None
    if arr.dtype.kind in "U":
        return arr.astype(object), None, None
    if arr.dtype.kind == "M":
        return None, None, "datetime values (convert them to seconds or strings first)"
    if arr.dtype != object:
        return None, None, f"dtype {arr.dtype}"
    if all(isinstance(v, str) for v in arr):
        return arr, None, None
    if all(isinstance(v, bytes) for v in arr):
        return np.array([v.decode("utf-8", errors="replace") for v in arr], dtype=object), None, None
    cells = []
    for v in arr:
        if isinstance(v, list | tuple | np.ndarray):
            cells.append(np.asarray(v))
        else:
            return None, None, f"cells of type {type(v).__name__}"
    if not cells:
        return np.zeros(0), None, None
    if all(c.dtype.kind in "biufUO" for c in cells):
        shapes = {c.shape for c in cells}
        if len(shapes) == 1 and cells[0].ndim >= 1 and cells[0].dtype.kind in "biuf":
            return np.stack(cells), None, None
        # ragged: rows of any length, each row of one shape (obs_intervals: (k, 2))
        if all(c.ndim >= 1 for c in cells) and len({c.shape[1:] for c in cells}) == 1:
            flat = np.concatenate(cells)
            if flat.dtype.kind == "U":
                flat = flat.astype(object)
            if flat.dtype.kind in "biuf" or (
                flat.dtype.kind == "O" and all(isinstance(v, str) for v in flat.ravel())
            ):
                ends = np.cumsum([c.shape[0] for c in cells]).astype(np.int64)
                return flat, ends, None
    if any(c.dtype == object and any(hasattr(x, "object_id") for x in c.ravel()) for c in cells):
        return None, None, "references to other NWB objects"
    return None, None, "cells of unequal shape or type"


def _columns(df: pd.DataFrame, skip: set, owner: str, shown: str) -> list:
    """hdmf VectorData (and VectorIndex) columns for every storable column of ``df``."""
    columns, dropped = [], []
    for name in df.columns:
        if name in skip:
            continue
        data, ends, reason = _column_data(str(name), df[name])
        if reason is not None:
            dropped.append(f"{name!r} ({reason})")
            continue
        columns += _column(str(name), str(name), data, ends)
    if dropped:
        warnings.warn(
            f"write_nwb('{shown}'): {owner} column(s) {', '.join(dropped)} cannot be stored in "
            "NWB and were not written.",
            UserWarning, stacklevel=4,
        )
    return columns


def _ids(labels):
    """NWB row ids: ``labels`` themselves when they are unique integers, else 0 .. n-1."""
    from hdmf.common import ElementIdentifiers

    values = np.asarray(labels)
    n = len(values)
    if values.dtype.kind in "iu" and len(np.unique(values)) == n:
        return ElementIdentifiers(name="id", data=values.astype(np.int64))
    return ElementIdentifiers(name="id", data=np.arange(n, dtype=np.int64))


def _time_intervals(name: str, df: pd.DataFrame, shown: str):
    from pynwb.epoch import TimeIntervals

    df = df.copy()
    missing = [c for c in ("start_time", "stop_time") if c not in df.columns]
    if missing:
        warnings.warn(
            f"write_nwb('{shown}'): table '{name}' has no {missing} column(s), which NWB "
            "requires; they were written as NaN.",
            UserWarning, stacklevel=3,
        )
        for c in missing:
            df[c] = np.nan
    columns = []
    for c in ("start_time", "stop_time"):
        seconds = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        columns += _column(c, f"{c} of each row, in seconds", seconds)
    columns += _columns(df, {"start_time", "stop_time"}, f"table '{name}'", shown)
    description = str(df.attrs.get("description") or f"{name} written by neuroml")
    return TimeIntervals(name=name, description=description, id=_ids(df.index),
                         columns=columns)


def _nwb_name(name: str, taken: set) -> str:
    """A valid, unused NWB object name for ``name`` ('/' is not allowed in NWB names)."""
    base = str(name).replace("/", "__") or "signal"
    candidate, k = base, 1
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    taken.add(candidate)
    return candidate


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(type(value).__name__)


def _time_series(name: str, nwb_name: str, da: xr.DataArray, shown: str):
    from pynwb import TimeSeries

    if "time" not in da.dims or da.ndim != 2:
        raise ParameterError(
            f"write_nwb('{shown}'): signal {name!r} must be a (time, channel) DataArray. "
            f"Got dims {da.dims}."
        )
    da = da.transpose("time", ...)
    times = np.asarray(da["time"].values, dtype=np.float64)
    if not np.all(np.isfinite(times)):
        raise ParameterError(
            f"write_nwb('{shown}'): signal {name!r} has NaN or infinite times; NWB timestamps "
            "must be finite seconds."
        )
    data = np.asarray(da.values)
    if data.dtype.kind == "U":
        data = data.astype(object)
    channel_dim = da.dims[1]
    channels = da[channel_dim].values if channel_dim in da.coords else np.arange(data.shape[1])
    marker: dict[str, Any] = {"name": str(name), "channel": _jsonable(np.asarray(channels))}
    attrs = dict(da.attrs)
    extra, dropped = {}, []
    for key, value in attrs.items():
        if key in _DERIVED_ATTRS:
            continue
        try:
            extra[str(key)] = _jsonable(value)
        except TypeError:
            dropped.append(f"attr {key!r}")
    if extra:
        marker["attrs"] = extra
    coords = {}
    for cname, coord in da.coords.items():
        if cname in ("time", channel_dim):
            continue
        if coord.dims == ("time",):
            try:
                coords[str(cname)] = _jsonable(coord.values)
                continue
            except TypeError:
                pass
        dropped.append(f"coordinate {cname!r}")
    if coords:
        marker["coords"] = coords
    if dropped:
        warnings.warn(
            f"write_nwb('{shown}'): signal {name!r}: {', '.join(dropped)} cannot be stored and "
            "were not written.", UserWarning, stacklevel=3,
        )
    if data.shape[1] == 1:
        data = data[:, 0]
    kwargs: dict[str, Any] = {
        "name": nwb_name,
        "data": _compressed(data),
        "unit": str(attrs.get("unit", "n.a.")),
        "description": str(attrs.get("description", "no description")),
        "comments": _MARKER + json.dumps(marker),
    }
    for field in ("conversion", "offset", "resolution"):
        if field in attrs:
            kwargs[field] = float(attrs[field])
    rate = attrs.get("rate")
    if rate is not None and times.size:
        regular = times[0] + np.arange(times.size) / float(rate)
        if np.array_equal(regular, times):
            return TimeSeries(rate=float(rate), starting_time=float(times[0]), **kwargs)
    return TimeSeries(timestamps=_compressed(times), **kwargs)
