"""Writing a :class:`Recording` to an NWB (HDF5) file, atomically."""

from __future__ import annotations

import os
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import NeuroMLError, ParameterError, RecordingError
from ._nwb_common import _FILE_FIELDS, _SUBJECT_FIELDS, _UNIT_ID_COLUMN
from ._nwb_write_objects import _column, _columns, _ids, _nwb_name, _time_intervals, _time_series
from .recording import Recording


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
        columns = _column("spike_times", "spike times of each unit, in seconds",
                          spikes.times, spikes.offsets[1:])
        columns += _columns(table, reserved - {"obs_intervals"}, "units", shown)
        nwb.units = Units(name="units", description="units written by neuroml",
                          id=_ids(spikes.unit_ids), columns=columns)

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

    Numeric arrays of more than 100,000 elements (spike times, long signals and their
    timestamps, long columns) are stored gzip-compressed (level 4, with HDF5's shuffle
    filter); compression is lossless, so they read back bit for bit.

    The file is written to a temporary file in the same folder, then moved into
    place, so a crash never leaves a half-written file at ``path``. It gets the
    permissions a plain ``open()`` would give (``0o666`` less the process umask).

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
    # HDF5 creates the temporary file itself, exclusively ("w-": never an existing file),
    # with the permissions a plain open() gives (0o666 less the umask) -- not mkstemp's 0o600.
    tmp = str(folder / f".{target.stem}.{uuid.uuid4().hex}.tmp.nwb")
    try:
        with NWBHDF5IO(tmp, mode="w-") as io:
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
