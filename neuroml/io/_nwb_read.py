"""Reading NWB files: open the file, walk its groups, assemble a lazy :class:`Recording`.

:func:`load_recording` opens the file (HDF5 with pynwb's ``NWBHDF5IO``, Zarr with
``hdmf_zarr``), reads its metadata and finds every units table, interval table and
TimeSeries; what each of those becomes is in :mod:`._nwb_read_objects`, and each is read
only when first used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RecordingError
from ._nwb_common import _FILE_FIELDS
from ._nwb_find import _is_zarr_dir
from ._nwb_read_objects import _marker, _read_signal, _read_spikes, _table
from .recording import Recording


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
    """Open an NWB recording lazily (or read a CommonFormat ``.mat`` unit).

    Opening reads the file's metadata and layout only; spike trains, trials, each
    interval table and each signal are read on first use. The file stays open until
    ``rec.close()`` or the end of a ``with load_recording(path) as rec:`` block.

    A path ending in ``.mat`` is read as one of the Uchida lab's "CommonFormat" MATLAB
    files (``events`` and ``responses`` structs, one dopamine unit per file; times in
    ms become seconds), all at once; see :func:`neuroml.io._uchida_mat.load_commonformat`
    for the trials table it builds (``start_time``, ``trial_type``, ``odor_id``,
    ``magnitude``, ``cued``, ``reward_time`` ...).

    Parameters
    ----------
    path : str or Path
        An NWB HDF5 file (``.nwb``) or a Zarr NWB directory (``.zarr.nwb``,
        ``.nwb.zarr``, or any directory holding ``.zgroup``/``.zattrs``; needs
        ``pip install neuroml[zarr]``), or a CommonFormat ``.mat`` file (MATLAB v5 or
        v7.3).

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
        (when a field is first used) a part of the file cannot be read; a ``.mat`` file
        without the CommonFormat structs and fields. The message names the file and
        what is wrong.

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
    if p.suffix.lower() == ".mat":
        from ._uchida_mat import load_commonformat

        return load_commonformat(p, shown)
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
