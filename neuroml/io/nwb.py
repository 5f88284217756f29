"""NWB files in and out: :func:`load_recording`, :func:`find_recordings`, :func:`write_nwb`.

Reading is lazy: opening a file reads its metadata and the layout of its groups; the
spike trains, the trials table, each interval table and each signal are read from the
file the first time they are used. The file stays open until :meth:`Recording.close`
(or the end of a ``with`` block).

Both NWB storage back-ends are read: HDF5 files (``*.nwb``) with pynwb's
``NWBHDF5IO``, and Zarr NWB directories (``*.zarr.nwb`` / ``*.nwb.zarr``) with
``hdmf_zarr`` (``pip install neuroml[zarr]``). Writing produces HDF5.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import NeuroMLError, ParameterError, RecordingError
from .recording import Recording, make_signal
from .spikes import SpikeTrains

__all__ = ["load_recording", "find_recordings", "write_nwb"]

#: Optional NWBFile fields copied into ``Recording.meta`` and written back.
_FILE_FIELDS = (
    "lab", "institution", "experimenter", "experiment_description", "session_id",
    "keywords", "notes", "pharmacology", "protocol", "related_publications", "surgery",
    "virus", "stimulus_notes", "data_collection",
)
_SUBJECT_FIELDS = (
    "age", "age__reference", "description", "genotype", "sex", "species", "subject_id",
    "weight", "date_of_birth", "strain",
)
#: ``comments`` of TimeSeries that neuroml wrote start with this, followed by JSON.
_MARKER = "neuroml:"
#: Units-table column holding non-integer unit ids (NWB ids must be integers).
_UNIT_ID_COLUMN = "neuroml_unit_id"
#: Signal attrs the loader derives from the NWB series itself (not copied into the marker).
_DERIVED_ATTRS = {"unit", "description", "conversion", "offset", "resolution", "rate",
                  "starting_time", "timestamps_unit", "nwb_path", "neurodata_type",
                  "timestamps_note", "channel_note"}


# ====================================================================== finding files
def _is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and (
        ".zarr" in path.name or (path / ".zgroup").exists() or (path / ".zattrs").exists()
    )


def _is_recording(path: Path) -> bool:
    name = path.name
    if path.is_dir():
        return name.endswith((".zarr.nwb", ".nwb.zarr")) or (
            name.endswith((".nwb", ".zarr")) and _is_zarr_dir(path)
        )
    return path.is_file() and name.endswith(".nwb")


def find_recordings(folder, *, pattern: str | None = None) -> list[Path]:
    """Every NWB recording under a folder, recursively, in sorted order.

    HDF5 files ending in ``.nwb`` and Zarr NWB directories (``*.zarr.nwb`` or
    ``*.nwb.zarr``) are found; a Zarr store is returned as one recording and not
    searched inside.

    Parameters
    ----------
    folder : str or Path
        The folder to search (a single NWB file or Zarr store is returned as itself).
    pattern : str, default=None
        A glob pattern the file or directory *name* must match (e.g. ``"sub-4*"``);
        every recording when None.

    Returns
    -------
    paths : list of Path
        Sorted by their path relative to ``folder``, so the order is the same on every
        machine.

    Raises
    ------
    RecordingError
        When ``folder`` does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "b.nwb").touch(); (d / "a.nwb").touch(); (d / "notes.txt").touch()
    >>> [p.name for p in find_recordings(d)]
    ['a.nwb', 'b.nwb']
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise RecordingError(f"Cannot search for recordings: folder '{folder}' does not exist.")
    if pattern is not None and not isinstance(pattern, str):
        raise ParameterError(
            f"The 'pattern' parameter of find_recordings must be a str or None. Got {pattern!r} instead."
        )
    if _is_recording(root):
        found = [root]
    else:
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            keep = []
            for d in sorted(dirnames):
                if _is_recording(here / d):
                    found.append(here / d)
                elif not d.startswith("."):
                    keep.append(d)
            dirnames[:] = keep  # never descend into Zarr stores or hidden folders
            found.extend(here / f for f in filenames if f.endswith(".nwb") and not f.startswith("."))
    if pattern is not None:
        found = [p for p in found if fnmatch.fnmatch(p.name, pattern)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix() if p != root else "")


# ====================================================================== reading
def _open(path: Path, shown: str):
    """Open ``path`` with the right pynwb IO class; return the IO (not yet read)."""
    if not path.exists():
        raise RecordingError(f"NWB file '{shown}' does not exist.")
    if path.is_dir():
        if not _is_zarr_dir(path):
            raise RecordingError(
                f"'{shown}' is a directory but not a Zarr NWB store (no .zgroup/.zattrs and no "
                "'.zarr' in its name); pass an .nwb file, a Zarr NWB directory, or use "
                "find_recordings() to list the recordings inside a folder."
            )
        try:
            from hdmf_zarr.nwb import NWBZarrIO
        except ImportError as err:
            raise RecordingError(
                f"'{shown}' is a Zarr NWB store; reading it needs hdmf-zarr: "
                "pip install neuroml[zarr]"
            ) from err
        try:
            return NWBZarrIO(str(path), mode="r")
        except Exception as err:
            raise RecordingError(
                f"Zarr NWB store '{shown}' could not be opened: {type(err).__name__}: {err}"
            ) from err
    import h5py
    from pynwb import NWBHDF5IO

    if not h5py.is_hdf5(str(path)):
        raise RecordingError(
            f"'{shown}' is not an HDF5 file, so not an NWB file (NWB files are HDF5 or Zarr "
            "directories); it may be another format or damaged."
        )
    try:
        return NWBHDF5IO(str(path), mode="r", load_namespaces=True)
    except Exception as err:
        raise RecordingError(
            f"NWB file '{shown}' could not be opened (truncated or corrupt?): "
            f"{type(err).__name__}: {err}"
        ) from err


def _nwb_version(io) -> str | None:
    try:
        version = io.nwb_version[0]
    except Exception:
        version = None
    if version is None:
        root = getattr(io, "file", None) or getattr(io, "_file", None)
        try:
            version = root.attrs.get("nwb_version")
        except Exception:
            version = None
    if isinstance(version, bytes):
        version = version.decode()
    return None if version is None else str(version)


class _Guard:
    """Turns any failure while reading part of a file into a RecordingError naming it."""

    def __init__(self, shown: str):
        self.shown = shown
        self.closed = False
        self.owner = None

    def wrap(self, what: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def load():
            try:
                return fn()
            except RecordingError:
                raise
            except Exception as err:
                hint = " (the file was closed; read what you need before rec.close())" if self.closed else ""
                raise RecordingError(
                    f"Could not read {what} from NWB file '{self.shown}'{hint}: "
                    f"{type(err).__name__}: {err}"
                ) from err
        return load


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


def _children(obj) -> list:
    from hdmf.container import AbstractContainer

    return [c for c in getattr(obj, "children", ()) if isinstance(c, AbstractContainer)]


def _display_path(path: str) -> str:
    """The short path used to name colliding objects ("behavior/Position/position")."""
    if path.startswith("processing/"):
        return path[len("processing/"):]
    if path.startswith("stimulus/presentation/"):
        return "stimulus/" + path[len("stimulus/presentation/"):]
    return path


def _collect(nwb):
    """Walk acquisition, processing and stimulus; return (series, tables, skipped)."""
    from hdmf.common import DynamicTable
    from pynwb import TimeSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.image import ImageSeries

    series: list[tuple[str, str, Any]] = []  # (short name, path, object)
    tables: list[tuple[str, str, Any]] = []
    skipped: list[dict] = []
    seen: set = set()

    def skip(path: str, kind: str, reason: str):
        skipped.append({"path": path, "type": kind, "reason": reason})

    def visit(obj, path: str):
        key = getattr(obj, "object_id", None) or id(obj)
        if key in seen:
            return
        seen.add(key)
        kind = type(obj).__name__
        if isinstance(obj, TimeSeries):
            data = obj.fields.get("data")
            shape = tuple(getattr(data, "shape", ()) or ())
            external = isinstance(obj, ImageSeries) and obj.fields.get("external_file") is not None
            if external:
                skip(path, kind, "image data stored in external files")
            elif data is None:
                skip(path, kind, "no data")
            elif isinstance(obj, ImageSeries) and len(shape) >= 3:
                skip(path, kind, f"image data of shape {shape} (3-D or more)")
            else:
                series.append((obj.name, path, obj))
            return
        if isinstance(obj, TimeIntervals):
            tables.append((obj.name, path, obj))
            return
        if isinstance(obj, DynamicTable):
            skip(path, kind, "a table that is not a TimeSeries or TimeIntervals")
            return
        kids = _children(obj)
        before = len(series) + len(tables) + len(skipped)
        for child in kids:
            visit(child, f"{path}/{child.name}")
        if len(series) + len(tables) + len(skipped) == before:
            reason = ("holds no TimeSeries or interval table" if kids
                      else "not a TimeSeries or an interval table")
            skip(path, kind, reason)

    for name in sorted(nwb.acquisition):
        visit(nwb.acquisition[name], f"acquisition/{name}")
    for mod_name in sorted(nwb.processing):
        module = nwb.processing[mod_name]
        for name in sorted(module.data_interfaces):
            visit(module.data_interfaces[name], f"processing/{mod_name}/{name}")
    for name in sorted(nwb.stimulus):
        visit(nwb.stimulus[name], f"stimulus/presentation/{name}")
    return series, tables, skipped


def _unique_names(entries: list[tuple[str, str]]) -> list[str]:
    """Short names where unique, the NWB path where two share a short name."""
    counts = Counter(short for short, _ in entries)
    names = [short if counts[short] == 1 else path for short, path in entries]
    again = Counter(names)
    seen: Counter = Counter()
    out = []
    for name in names:
        if again[name] > 1:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        out.append(name)
    return out


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


def _metadata(nwb, io, path, shown: str, skipped: list) -> dict:
    meta: dict[str, Any] = {
        "identifier": nwb.identifier,
        "session_description": nwb.session_description,
        "session_start_time": nwb.session_start_time,
    }
    for field in _FILE_FIELDS:
        value = nwb.fields.get(field)
        if value is None:
            continue
        if isinstance(value, tuple | list | np.ndarray):
            value = [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(value)]
        meta[field] = value
    subject = nwb.subject
    meta["subject"] = (
        {k: v for k, v in subject.fields.items() if not hasattr(v, "fields")} if subject else None
    )
    meta["nwb_version"] = _nwb_version(io)
    meta["source"] = shown
    meta["file"] = Path(path).name
    meta["skipped"] = skipped
    return meta


def load_recording(path) -> Recording:
    """Open an NWB recording lazily.

    Opening reads the file's metadata and layout only; spike trains, trials, each
    interval table and each signal are read on first use. The file stays open until
    ``rec.close()`` or the end of a ``with load_recording(path) as rec:`` block.

    Parameters
    ----------
    path : str or Path
        An NWB HDF5 file (``.nwb``) or a Zarr NWB directory (``.zarr.nwb``,
        ``.nwb.zarr``, or any directory holding ``.zgroup``/``.zattrs``; needs
        ``pip install neuroml[zarr]``).

    Returns
    -------
    recording : Recording
        - ``spikes``: the units table as :class:`SpikeTrains` (flat times from
          ``units/spike_times``, offsets from ``spike_times_index``, ids from
          ``units/id``; ``spikes.units`` holds every other unit column). Spike times not
          sorted within a unit are sorted with a warning. None without a units table.
        - ``trials``: ``nwb.trials`` as a DataFrame (index ``"trial"``, every column;
          NaN stays NaN). None without trials.
        - ``intervals``: every other TimeIntervals table (``epochs``, ``encoding_table``
          ...), including those inside processing modules, as DataFrames indexed by
          ``"id"``.
        - ``signals``: every TimeSeries in acquisition, processing modules (searched
          through their containers) and stimulus, as ``(time, channel)`` DataArrays.
          Named by their NWB name, or by their path (``"behavior/Position/position"``)
          where two share a name. Channels are electrode or ROI ids when the series
          links them, else ``0 .. n-1``. ``attrs`` keep ``unit``, ``description``,
          ``conversion``, ``offset``, ``timestamps_unit``, ``nwb_path`` (data are not
          rescaled by ``conversion``).
        - ``meta``: ``identifier``, ``session_description``, ``session_start_time``,
          ``subject`` (dict), ``lab``, ``institution``, ``experimenter``, ``nwb_version``,
          ``source`` (``path`` as given), ``file``, ``signal_paths`` /
          ``interval_paths`` (each name's location in the file), and ``skipped``: the
          objects not read as signals (external or 3-D image series, non-interval
          tables ...), each with the reason.

        Table columns stored in a file but missing from the table's ``colnames``
        (which pynwb ignores) are read too and listed in the DataFrame's
        ``attrs["columns_not_in_colnames"]``.

    Raises
    ------
    RecordingError
        The path does not exist, is not HDF5 or Zarr NWB, is truncated or corrupt, or
        (when a field is first used) a part of the file cannot be read; the message
        names the file and what is wrong.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.nwb")
    >>> _ = Recording.from_arrays(spike_times=[[0.1, 0.4], [0.2]]).to_nwb(path)
    >>> with load_recording(path) as rec:
    ...     rec.spikes.counts.tolist()
    [2, 1]
    """
    shown = str(path)
    p = Path(path).expanduser()
    io = _open(p, shown)
    try:
        nwb = io.read()
    except Exception as err:
        io.close()
        raise RecordingError(
            f"NWB file '{shown}' could not be read (truncated, corrupt or not NWB?): "
            f"{type(err).__name__}: {err}"
        ) from err
    guard = _Guard(shown)
    try:
        series, tables, skipped = _collect(nwb)

        spikes = None
        if nwb.units is not None:
            spikes = guard.wrap("the units table", lambda u=nwb.units: _read_spikes(u, io, shown))
        trials = None
        if nwb.trials is not None:
            trials = guard.wrap("the trials table", lambda t=nwb.trials: _table(t, io, "trial"))

        interval_entries = [(name, f"intervals/{name}", table)
                            for name, table in sorted(nwb.intervals.items()) if name != "trials"]
        interval_entries += tables
        interval_names = _unique_names([(s, _display_path(p_)) for s, p_, _ in interval_entries])
        intervals = {
            name: guard.wrap(f"interval table '{path_}'", lambda t=table: _table(t, io, "id"))
            for name, (_, path_, table) in zip(interval_names, interval_entries)
        }

        shorts = []
        for short, path_, ts in series:
            marker = _marker(ts)
            shorts.append((str(marker["name"]) if marker and "name" in marker else short, _display_path(path_)))
        names = _unique_names(shorts)
        signals = {
            name: guard.wrap(
                f"series '{path_}'",
                lambda ts=ts, name=name, path_=path_: _read_signal(ts, name, path_, shown),
            )
            for name, (_, path_, ts) in zip(names, series)
        }
        meta = _metadata(nwb, io, p, shown, skipped)
        meta["signal_paths"] = {name: path_ for name, (_, path_, _) in zip(names, series)}
        meta["interval_paths"] = {
            name: path_ for name, (_, path_, _) in zip(interval_names, interval_entries)
        }
    except Exception as err:
        io.close()
        if isinstance(err, RecordingError):
            raise
        raise RecordingError(
            f"NWB file '{shown}' could not be read: {type(err).__name__}: {err}"
        ) from err

    def close():
        guard.closed = True
        io.close()

    rec = Recording(spikes=spikes, trials=trials, intervals=intervals, signals=signals,
                    meta=meta, closer=close)
    # Every loader holds the guard and the guard holds the recording, so the file stays
    # open while anything that can still read from it is alive (``load_recording(p)
    # .signals["x"]`` works); close() or a ``with`` block closes it deterministically.
    guard.owner = rec
    return rec


# ====================================================================== writing
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
    from hdmf.common import VectorData, VectorIndex

    columns, dropped = [], []
    for name in df.columns:
        if name in skip:
            continue
        data, ends, reason = _column_data(str(name), df[name])
        if reason is not None:
            dropped.append(f"{name!r} ({reason})")
            continue
        column = VectorData(name=str(name), description=str(name), data=data)
        columns.append(column)
        if ends is not None:
            columns.append(VectorIndex(name=f"{name}_index", data=ends, target=column))
    if dropped:
        warnings.warn(
            f"write_nwb('{shown}'): {owner} column(s) {', '.join(dropped)} cannot be stored in "
            "NWB and were not written.",
            UserWarning, stacklevel=4,
        )
    return columns


def _ids(index: pd.Index, n: int):
    from hdmf.common import ElementIdentifiers

    values = index.to_numpy()
    if values.dtype.kind in "iu" and len(np.unique(values)) == n:
        return ElementIdentifiers(name="id", data=values.astype(np.int64))
    return ElementIdentifiers(name="id", data=np.arange(n, dtype=np.int64))


def _time_intervals(name: str, df: pd.DataFrame, shown: str):
    from hdmf.common import VectorData
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
    required = [
        VectorData(name=c, description=f"{c} of each row, in seconds",
                   data=pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64))
        for c in ("start_time", "stop_time")
    ]
    columns = required + _columns(df, {"start_time", "stop_time"}, f"table '{name}'", shown)
    description = str(df.attrs.get("description") or f"{name} written by neuroml")
    return TimeIntervals(name=name, description=description, id=_ids(df.index, len(df)),
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
        "data": data,
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
    return TimeSeries(timestamps=times, **kwargs)


def _session_start(value, shown: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ParameterError(
            f"write_nwb('{shown}'): meta['session_start_time'] must be a datetime or an ISO "
            f"date string. Got {value!r} instead."
        ) from err
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.to_pydatetime()


def _subject(subject, shown: str):
    from pynwb.file import Subject

    if subject is None:
        return None
    if not isinstance(subject, dict):
        raise ParameterError(
            f"write_nwb('{shown}'): meta['subject'] must be a dict of Subject fields "
            f"({', '.join(_SUBJECT_FIELDS)}). Got {type(subject).__name__} instead."
        )
    kwargs = {k: v for k, v in subject.items() if k in _SUBJECT_FIELDS and v is not None}
    unknown = sorted(set(subject) - set(_SUBJECT_FIELDS))
    if unknown:
        warnings.warn(
            f"write_nwb('{shown}'): subject field(s) {unknown} are not NWB Subject fields "
            f"({', '.join(_SUBJECT_FIELDS)}) and were not written.",
            UserWarning, stacklevel=3,
        )
    if "date_of_birth" in kwargs:
        kwargs["date_of_birth"] = _session_start(kwargs["date_of_birth"], shown)
    try:
        return Subject(**kwargs)
    except Exception as err:
        raise ParameterError(f"write_nwb('{shown}'): meta['subject'] is not valid: {err}") from err


def _build_nwbfile(recording: Recording, shown: str):
    from hdmf.common import VectorData, VectorIndex
    from pynwb import NWBFile
    from pynwb.misc import Units

    meta = recording.meta
    kwargs: dict[str, Any] = {}
    for field in _FILE_FIELDS:
        value = meta.get(field)
        if value is None:
            continue
        if field in ("experimenter", "keywords", "related_publications"):
            value = [value] if isinstance(value, str) else [str(v) for v in value]
        else:
            value = str(value)
        kwargs[field] = value
    nwb = NWBFile(
        session_description=str(meta.get("session_description") or "recording written by neuroml"),
        identifier=str(meta.get("identifier") or uuid.uuid4()),
        session_start_time=_session_start(meta.get("session_start_time"), shown),
        subject=_subject(meta.get("subject"), shown),
        **kwargs,
    )

    spikes = recording.spikes
    if spikes is not None:
        table = spikes.units.copy()
        int_ids = spikes.unit_ids.dtype.kind in "iu"
        if not int_ids:
            table[_UNIT_ID_COLUMN] = spikes.unit_ids.astype(str)
        reserved = {"spike_times", "electrodes", "electrode_group", "obs_intervals"}
        for name in sorted(reserved & set(table.columns) - {"spike_times", "obs_intervals"}):
            warnings.warn(
                f"write_nwb('{shown}'): units column {name!r} refers to electrode tables that "
                "are not written; it was not written.", UserWarning, stacklevel=3,
            )
        spike_col = VectorData(name="spike_times", description="spike times of each unit, in seconds",
                               data=spikes.times)
        columns = [spike_col, VectorIndex(name="spike_times_index", data=spikes.offsets[1:],
                                          target=spike_col)]
        columns += _columns(table, reserved - {"obs_intervals"}, "units", shown)
        ids = spikes.unit_ids.astype(np.int64) if int_ids else np.arange(len(spikes))
        from hdmf.common import ElementIdentifiers

        nwb.units = Units(name="units", description="units written by neuroml",
                          id=ElementIdentifiers(name="id", data=ids), columns=columns)

    trials = recording.trials
    if trials is not None:
        nwb.trials = _time_intervals("trials", trials, shown)

    taken: set = {"trials"} if trials is not None else set()
    for name in recording.intervals:
        df = recording.intervals[name]
        nwb_name = _nwb_name(name, taken)
        if nwb_name != name:
            warnings.warn(
                f"write_nwb('{shown}'): interval table {name!r} is written as {nwb_name!r} "
                "('/' is not allowed in NWB names, and 'trials' holds the trials table).",
                UserWarning, stacklevel=3,
            )
        table = _time_intervals(nwb_name, df, shown)
        if nwb_name == "epochs":
            nwb.epochs = table
        elif nwb_name == "invalid_times":
            nwb.invalid_times = table
        else:
            nwb.add_time_intervals(table)

    if len(recording.signals):
        module = nwb.create_processing_module(
            name="neuroml", description="continuous signals written by neuroml"
        )
        taken = set()
        for name in recording.signals:
            module.add(_time_series(name, _nwb_name(name, taken), recording.signals[name], shown))
    return nwb


def write_nwb(recording: Recording, path, *, overwrite: bool = False) -> Path:
    """Write a recording to an NWB (HDF5) file; :func:`load_recording` reads it back equal.

    Written: spike trains as the units table (unit ids, and every unit column NWB can
    store: numbers, bools, strings, equal-shape arrays, ragged lists), the trials table
    and every interval table as TimeIntervals (every such column), signals as
    TimeSeries in the processing module ``"neuroml"`` (``starting_time`` + ``rate``
    when the signal has a ``rate`` attr and regular times, else ``timestamps``; channel
    labels, the signal's name and its other attrs are kept in the series' ``comments``
    so they come back), and metadata (``identifier``, ``session_description``,
    ``session_start_time`` — now, in UTC, when missing —, ``subject`` and the other
    NWBFile fields). Columns or attrs NWB cannot hold are reported in a warning.

    The file is written to a temporary file in the same folder, then moved into
    place, so a crash never leaves a half-written file at ``path``.

    Parameters
    ----------
    recording : Recording
    path : str or Path
        Destination ``.nwb`` file.
    overwrite : bool, default=False
        Replace ``path`` if it exists.

    Returns
    -------
    path : Path

    Raises
    ------
    RecordingError
        ``path`` exists and ``overwrite`` is False, its folder does not exist, or
        writing fails.
    ParameterError
        A signal or the metadata cannot be represented in NWB.
    """
    from pynwb import NWBHDF5IO

    if not isinstance(recording, Recording):
        raise ParameterError(
            f"The 'recording' parameter of write_nwb must be a Recording. Got {type(recording).__name__} instead."
        )
    target = Path(path).expanduser()
    shown = str(path)
    if target.exists() and not overwrite:
        raise RecordingError(f"'{shown}' already exists; pass overwrite=True to replace it.")
    if target.is_dir():
        raise RecordingError(f"'{shown}' is a directory; write_nwb writes an HDF5 .nwb file.")
    folder = target.parent
    if not folder.is_dir():
        raise RecordingError(f"Cannot write '{shown}': folder '{folder}' does not exist.")
    try:
        nwb = _build_nwbfile(recording, shown)
    except NeuroMLError:
        raise
    except Exception as err:
        raise RecordingError(
            f"Cannot write '{shown}': the recording cannot be put into NWB form: "
            f"{type(err).__name__}: {err}"
        ) from err
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp.nwb", dir=folder)
    os.close(fd)
    try:
        with NWBHDF5IO(tmp, mode="w") as io:
            io.write(nwb)
        os.replace(tmp, target)
    except NeuroMLError:
        _remove(tmp)
        raise
    except Exception as err:
        _remove(tmp)
        raise RecordingError(f"Writing NWB file '{shown}' failed: {type(err).__name__}: {err}") from err
    return target


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
