"""Reading one NWB object: a table as a DataFrame, the units table as SpikeTrains, a
TimeSeries as a ``(time, channel)`` DataArray.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ParameterError, RecordingError
from ._nwb_common import _MARKER, _UNIT_ID_COLUMN
from .recording import make_signal
from .spikes import SpikeTrains


def _decode_bytes(df: pd.DataFrame) -> pd.DataFrame:
    """Byte-string cells (old fixed-length HDF5 strings) become str."""
    for col in df.columns:
        values = df[col].to_numpy()
        if values.dtype == object and len(values) and all(isinstance(v, bytes) for v in values):
            df[col] = [v.decode("utf-8", errors="replace") for v in values]
    return df


def _unlisted_columns(table, io, n_rows: int) -> dict[str, Any]:
    """Columns stored in a table's group but missing from its ``colnames`` attribute.

    pynwb reads only the columns named in ``colnames``; some files hold more (the
    Rutishauser file's ``response_time``). They are read here from the file so that
    nothing in a table is silently dropped.
    """
    try:
        builder = io.manager.get_builder(table)
    except Exception:
        return {}
    if builder is None:
        return {}
    known = set(table.colnames) | {c.name for c in table.columns} | {"id"}
    datasets = builder.datasets
    out: dict[str, Any] = {}
    for name, dset in datasets.items():
        if name in known or dset.attributes.get("neurodata_type") != "VectorData":
            continue
        data = np.asarray(dset.data[:])
        index = datasets.get(f"{name}_index")
        if index is not None and index.attributes.get("neurodata_type") == "VectorIndex":
            ends = np.asarray(index.data[:], dtype=np.int64)
            if ends.size == n_rows and (ends.size == 0 or ends[-1] == data.shape[0]):
                out[name] = np.split(data, ends[:-1]) if ends.size else []
        elif data.shape[:1] == (n_rows,):
            out[name] = data if data.ndim == 1 else list(data)
    return out


def _table(table, io, index_name: str, exclude: frozenset = frozenset()) -> pd.DataFrame:
    df = table.to_dataframe(index=True, exclude=set(exclude)) if exclude else table.to_dataframe(index=True)
    extra = _unlisted_columns(table, io, len(df))
    for name, values in extra.items():
        df[name] = values
    df = _decode_bytes(df)
    df.index.name = index_name
    description = getattr(table, "description", None)
    if description:
        df.attrs["description"] = str(description)
    if extra:
        df.attrs["columns_not_in_colnames"] = sorted(extra)
    return df


def _read_spikes(units, io, shown: str) -> SpikeTrains:
    ids = np.asarray(units.id.data[:])
    n_units = ids.size
    if "spike_times" in units.colnames:
        column = units["spike_times"]
        if hasattr(column, "target"):  # ragged: VectorIndex over the flat spike times
            times = np.asarray(column.target.data[:], dtype=np.float64).ravel()
            ends = np.asarray(column.data[:], dtype=np.int64).ravel()
        else:  # one spike per unit stored flat (unusual but legal)
            times = np.asarray(column.data[:], dtype=np.float64).ravel()
            ends = np.arange(1, times.size + 1, dtype=np.int64)
    else:
        times = np.zeros(0)
        ends = np.zeros(n_units, dtype=np.int64)
    if ends.size != n_units:
        raise RecordingError(
            f"NWB file '{shown}': units/spike_times_index has {ends.size} entries but the units "
            f"table has {n_units} ids."
        )
    if np.any(np.diff(ends) < 0) or (ends.size and (ends[0] < 0 or ends[-1] != times.size)):
        last = int(ends[-1]) if ends.size else 0
        raise RecordingError(
            f"NWB file '{shown}': units/spike_times_index ends at {last} but units/spike_times "
            f"holds {times.size} spike times (the file is truncated or corrupt)."
        )
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    unit_of = np.repeat(np.arange(n_units), np.diff(offsets))
    backwards = np.flatnonzero(np.diff(times) < 0) + 1
    backwards = backwards[~np.isin(backwards, offsets[1:-1])]
    if backwards.size:
        bad = np.unique(unit_of[backwards])
        warnings.warn(
            f"NWB file '{shown}': spike times of {bad.size} unit(s) (ids {ids[bad][:10].tolist()}) "
            "are not sorted in the file; they were sorted within each unit.",
            UserWarning, stacklevel=3,
        )
        times = times[np.lexsort((times, unit_of))]
    table = _table(units, io, "unit", exclude=frozenset({"spike_times"}))
    if _UNIT_ID_COLUMN in table.columns:  # ids that neuroml wrote as a column
        ids = table[_UNIT_ID_COLUMN].to_numpy()
        table = table.drop(columns=_UNIT_ID_COLUMN)
    try:
        return SpikeTrains(times, offsets, unit_ids=ids, units=table)
    except ParameterError as err:
        raise RecordingError(f"NWB file '{shown}': the units table is not usable: {err}") from err


def _marker(ts) -> dict | None:
    comments = ts.fields.get("comments")
    if isinstance(comments, str) and comments.startswith(_MARKER):
        try:
            value = json.loads(comments[len(_MARKER):])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def _region_ids(region, n_channels: int):
    """Ids of the rows a DynamicTableRegion points to, or None if they don't fit."""
    if region is None:
        return None, None
    rows = np.asarray(region.data[:], dtype=np.int64).ravel()
    ids = np.asarray(region.table.id.data[:])
    if rows.size != n_channels or (rows.size and (rows.min() < 0 or rows.max() >= ids.size)):
        return None, (
            f"{region.name} points to {rows.size} row(s) of '{region.table.name}' but the data "
            f"has {n_channels} channel(s); channels numbered 0..{n_channels - 1} instead"
        )
    return ids[rows], None


def _read_signal(ts, name: str, path: str, shown: str) -> xr.DataArray:
    data = np.atleast_1d(np.asarray(ts.data[()]))
    n = data.shape[0]
    n_channels = 1 if data.ndim <= 1 else int(np.prod(data.shape[1:]))
    timestamps = ts.timestamps
    rate = None
    start = 0.0
    if timestamps is not None:
        timestamps = np.asarray(timestamps[:], dtype=np.float64).ravel()
        bad = ~np.isfinite(timestamps)
        if bad.any():
            raise RecordingError(
                f"NWB file '{shown}': series '{path}' has {int(bad.sum())} NaN or infinite "
                f"timestamp(s) (first at sample {int(np.flatnonzero(bad)[0])})."
            )
    else:
        rate = ts.rate
        start = ts.starting_time if ts.starting_time is not None else 0.0
        if rate is None or not np.isfinite(rate) or rate <= 0 or not np.isfinite(start):
            raise RecordingError(
                f"NWB file '{shown}': series '{path}' has no timestamps and an unusable "
                f"rate={rate!r} / starting_time={start!r}."
            )
    marker = _marker(ts) or {}
    channels, note = None, None
    if "channel" in marker and len(marker["channel"]) == n_channels:
        channels = np.asarray(marker["channel"])
    elif ts.fields.get("electrodes") is not None:
        channels, note = _region_ids(ts.electrodes, n_channels)
    elif ts.fields.get("rois") is not None:
        channels, note = _region_ids(ts.rois, n_channels)
    da = make_signal(data, timestamps, rate=rate, starting_time=start, channels=channels,
                     name=name, unit=ts.unit, description=ts.description)
    attrs = da.attrs
    if data.ndim > 2:
        attrs["original_shape"] = list(data.shape)
    if rate is not None:
        attrs["starting_time"] = float(start)
    for field in ("conversion", "offset", "resolution"):
        value = ts.fields.get(field)
        if value is not None:
            attrs[field] = float(value)
    comments = ts.fields.get("comments")
    if comments and not marker and comments != "no comments":
        attrs["comments"] = str(comments)
    if timestamps is not None:
        attrs["timestamps_unit"] = str(ts.fields.get("timestamps_unit") or "seconds")
        decreasing = int(np.sum(np.diff(timestamps) < 0))
        if decreasing:
            attrs["timestamps_note"] = (
                f"timestamps decrease {decreasing} time(s); kept in file order (sort before "
                "interpolating)"
            )
        elif n > 2 and np.array_equal(timestamps, np.arange(n, dtype=np.float64)):
            attrs["timestamps_note"] = (
                "timestamps are 0, 1, 2 ... n-1: probably frame indices rather than seconds; "
                "kept as given"
            )
    if note:
        attrs["channel_note"] = note
    attrs["nwb_path"] = path
    attrs["neurodata_type"] = type(ts).__name__
    attrs.update(marker.get("attrs", {}))
    coords = marker.get("coords", {})
    for cname, values in coords.items():
        if len(values) == n:
            da = da.assign_coords({cname: ("time", np.asarray(values))})
    if hasattr(ts, "confidence") and ts.fields.get("confidence") is not None:  # ndx-pose
        conf = np.asarray(ts.confidence[:])
        if conf.shape == (n,):
            da = da.assign_coords(confidence=("time", conf))
            attrs["confidence_definition"] = str(ts.fields.get("confidence__definition") or "")
    return da
