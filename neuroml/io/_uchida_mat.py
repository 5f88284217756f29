"""Reading the Uchida lab's "CommonFormat" MATLAB files (one dopamine unit per file).

The format (Eshel et al. 2015, 2016; Dabney et al. 2020) holds two structs:

- ``events``: one entry per trial in ``odorOn``, ``odorOff``, ``odorID``, ``trialType``
  (and ``laserOn``, ``laserOff``, ``rewardOn``, ``airpuffOn``, ``leverOn``,
  ``firstLick``), plus free-running event lists (``freeLaserOn``, ``laser_sequence``
  ...). Times are in milliseconds.
- ``responses``: ``spike`` (the unit's spike times, ms), ``lick``, ``lever``, the
  optogenetic-tagging results (``laserEvokedSpikes``, ``LaserLatency``) and mean
  waveforms with and without laser.

:func:`load_commonformat` turns one file into a :class:`~neuroml.io.recording.Recording`;
:func:`neuroml.load_recording` calls it for ``.mat`` files. MATLAB v5 files are read with
``scipy.io.loadmat``, v7.3 (HDF5) files with ``h5py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RecordingError
from .recording import Recording

__all__ = ["load_commonformat", "is_commonformat", "MAGNITUDES_UL", "REWARD_DELAY_S"]

#: Reward magnitudes (uL) of trial types 1-7 (uncued) and 8-14 (cued by odour 1).
MAGNITUDES_UL = (0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0)
#: Delay from odour onset to reward on cued trials: 1 s of odour, then 0.5 s of trace
#: (the population response in the 40 files rises 40-70 ms after this time).
REWARD_DELAY_S = 1.5

# Per-trial fields of ``events`` (ms unless noted) and their trials-table names.
_TRIAL_FIELDS = {
    "odorOn": "odor_on", "odorOff": "odor_off", "laserOn": "laser_on",
    "laserOff": "laser_off", "rewardOn": "reward_on", "airpuffOn": "airpuff_on",
    "leverOn": "lever_on", "firstLick": "first_lick",
}
_REQUIRED_EVENTS = ("odorOn", "odorID", "trialType")
_WAVEFORMS = ("meanLaserWaveform", "stderrLaserWaveform", "meanNoLaserWaveform",
              "stderrNoLaserWaveform")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _read_v5(path: Path) -> dict:
    from scipy.io import loadmat

    raw = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    out = {}
    for name, value in raw.items():
        if name.startswith("__"):
            continue
        fields = getattr(value, "_fieldnames", None)
        out[name] = ({f: getattr(value, f) for f in fields} if fields is not None else value)
    return out


def _read_v73(path: Path) -> dict:
    """MATLAB v7.3 (HDF5): each struct is a group, each field a dataset (column-major)."""
    import h5py

    def value(ds):
        if ds.attrs.get("MATLAB_empty", 0):
            return np.zeros(0)
        data = ds[()]
        return np.asarray(data).T  # MATLAB writes column-major: transpose back

    out = {}
    with h5py.File(str(path), "r") as f:
        for name, obj in f.items():
            if name.startswith("#"):
                continue
            if isinstance(obj, h5py.Group):
                out[name] = {k: value(v) for k, v in obj.items() if isinstance(v, h5py.Dataset)}
            else:
                out[name] = value(obj)
    return out


def _read_mat(path: Path, shown: str) -> dict:
    import h5py

    if not path.exists():
        raise RecordingError(f"MATLAB file '{shown}' does not exist.")
    if path.is_dir():
        raise RecordingError(f"'{shown}' is a directory, not a MATLAB .mat file.")
    try:
        if h5py.is_hdf5(str(path)):
            return _read_v73(path)
        return _read_v5(path)
    except RecordingError:
        raise
    except Exception as err:
        raise RecordingError(
            f"MATLAB file '{shown}' could not be read (truncated, corrupt or not a .mat "
            f"file?): {type(err).__name__}: {err}"
        ) from err


def is_commonformat(path) -> bool:
    """Whether ``path`` is a ``.mat`` file holding ``events`` and ``responses``.

    Reads the variable names only (``scipy.io.whosmat``; the top-level names of a v7.3
    file), not the data.
    """
    import h5py
    from scipy.io import whosmat

    p = Path(path)
    if not (p.is_file() and p.name.lower().endswith(".mat")):
        return False
    try:
        if h5py.is_hdf5(str(p)):
            with h5py.File(str(p), "r") as f:
                names = set(f.keys())
        else:
            names = {entry[0] for entry in whosmat(str(p))}
    except Exception:
        return False
    return {"events", "responses"} <= names


def _vector(values, what: str, shown: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object or arr.ndim > 1 and min(arr.shape) > 1:
        raise RecordingError(
            f"CommonFormat file '{shown}': {what} must be a numeric vector; got an array of "
            f"shape {arr.shape} and dtype {arr.dtype}."
        )
    try:
        return arr.astype(np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise RecordingError(
            f"CommonFormat file '{shown}': {what} is not numeric ({arr.dtype})."
        ) from err


def _trials(events: dict, spikes_s: np.ndarray, shown: str, skipped: list) -> pd.DataFrame:
    odor_on = _vector(events["odorOn"], "events.odorOn", shown)
    n = odor_on.size
    cols = {}
    for field in _REQUIRED_EVENTS + tuple(f for f in _TRIAL_FIELDS if f in events):
        v = _vector(events[field], f"events.{field}", shown)
        if v.size != n:
            raise RecordingError(
                f"CommonFormat file '{shown}': events.{field} has {v.size} entries but "
                f"events.odorOn has {n} (one per trial expected)."
            )
        cols[field] = v
    if np.any(~np.isfinite(odor_on)):
        raise RecordingError(
            f"CommonFormat file '{shown}': events.odorOn has "
            f"{int(np.sum(~np.isfinite(odor_on)))} missing (NaN) trial times."
        )
    back = np.flatnonzero(np.diff(odor_on) < 0)
    if back.size:
        raise RecordingError(
            f"CommonFormat file '{shown}': events.odorOn must increase from trial to trial "
            f"(one trial after another); it goes back in time at {back.size} trial(s), first "
            f"trial {int(back[0]) + 1} ({odor_on[back[0]]:g} ms) -> {int(back[0]) + 2} "
            f"({odor_on[back[0] + 1]:g} ms).")
    start = odor_on / 1000.0
    trial_type = cols["trialType"]
    odor_id = cols["odorID"]
    index = np.where(np.isin(trial_type, np.arange(1, 15)), trial_type, 0).astype(int)
    magnitude = np.where(index > 0, np.asarray((np.nan,) + MAGNITUDES_UL * 2)[index], np.nan)
    uncued = (index >= 1) & (index <= 7)
    cued_reward = index >= 8
    cued = np.where(np.isfinite(trial_type), trial_type >= 8, odor_id > 0)
    reward = np.full(n, np.nan)
    reward[uncued] = start[uncued]
    reward[cued_reward] = start[cued_reward] + REWARD_DELAY_S
    if "rewardOn" in cols:
        recorded = np.isfinite(cols["rewardOn"])
        reward[recorded] = cols["rewardOn"][recorded] / 1000.0
    last_end = max(float(spikes_s.max()) if spikes_s.size else -np.inf,
                    float(np.nanmax(reward)) if np.any(np.isfinite(reward)) else -np.inf,
                    float(start[-1]) if n else -np.inf)
    stop = np.append(start[1:], last_end) if n else start.copy()
    table = {
        "start_time": start, "stop_time": stop, "trial_type": trial_type,
        "odor_id": odor_id, "cued": cued.astype(bool), "magnitude": magnitude,
        "reward_time": reward,
    }
    for field, name in _TRIAL_FIELDS.items():
        if field not in cols:
            continue
        if np.any(np.isfinite(cols[field])):
            table[name] = cols[field] / 1000.0
        else:
            skipped.append({"path": f"events.{field}", "type": "trial field",
                            "reason": "all NaN"})
    if np.all(np.isfinite(odor_id)):
        table["odor_id"] = odor_id.astype(np.int64)
    df = pd.DataFrame(table)
    df.index.name = "trial"
    df.attrs["description"] = (
        "CommonFormat trials: start_time is odour onset (cued trials) or the reward itself "
        "(uncued trials), in seconds.")
    return df


def _event_tables(events: dict, responses: dict, shown: str, skipped: list) -> dict:
    tables = {}
    known = set(_TRIAL_FIELDS) | set(_REQUIRED_EVENTS)
    for field, values in events.items():
        if field in known or field == "freeLaserOff":
            continue
        arr = np.asarray(values)
        if arr.dtype == object or arr.ndim > 1 and min(arr.shape) > 1:
            skipped.append({"path": f"events.{field}", "type": str(arr.dtype),
                            "reason": f"not a vector of times (shape {arr.shape})"})
            continue
        t = arr.astype(np.float64).ravel() / 1000.0
        if t.size == 0:
            continue
        df = pd.DataFrame({"start_time": t, "stop_time": t})
        if field == "freeLaserOn":
            off = np.asarray(events.get("freeLaserOff", []), dtype=np.float64).ravel()
            if off.size == t.size:
                df["stop_time"] = off / 1000.0
            latency = np.asarray(responses.get("LaserLatency", []), dtype=np.float64).ravel()
            if latency.size == t.size:
                df["spike_latency"] = latency / 1000.0
        df.index.name = "id"
        tables[_snake(field)] = df
    evoked = np.asarray(responses.get("laserEvokedSpikes", []))
    if evoked.size:
        # Integer files store 0.1 ms ticks (each one is then a spike of ``spike``);
        # floating-point files store milliseconds.
        scale = 1e4 if evoked.dtype.kind in "iu" else 1e3
        t = evoked.astype(np.float64).ravel() / scale
        tables["laser_evoked_spikes"] = pd.DataFrame(
            {"start_time": t, "stop_time": t}).rename_axis("id")
    for field in ("lick", "lever"):
        t = np.asarray(responses.get(field, []), dtype=np.float64).ravel() / 1000.0
        if t.size:
            tables[f"{field}s"] = pd.DataFrame({"start_time": t, "stop_time": t}).rename_axis("id")
    return tables


def load_commonformat(path, shown: str | None = None) -> Recording:
    """Read one Uchida lab CommonFormat ``.mat`` file into a :class:`Recording`.

    Parameters
    ----------
    path : str or Path
        A MATLAB v5 or v7.3 file with ``events`` and ``responses`` structs.
    shown : str, default=None
        How the file is named in messages and ``meta["source"]`` (``path`` when None).

    Returns
    -------
    recording : Recording
        All times in seconds (the file's milliseconds / 1000).

        - ``spikes``: one unit, ``responses.spike``; its id is the file stem, and the
          unit table has ``tetrode`` and ``cell`` when the name holds ``TT<t>_<c>``.
        - ``trials`` (index ``"trial"``, one row per entry of ``events.odorOn``):
          ``start_time`` (odour onset on odour trials; the reward itself on uncued
          trials, whose ``odorOn`` marks the reward), ``stop_time`` (the next trial's
          start; for the last trial the last spike or reward), ``trial_type`` (float,
          NaN kept), ``odor_id``, ``cued`` (True for trial types 8-15, which start with
          an odour, False for 1-7; from ``odor_id > 0`` where the type is NaN),
          ``magnitude`` (uL: types 1-7 uncued and 8-14 cued give 0.1, 0.3, 1.2, 2.5,
          5, 10, 20 uL; NaN otherwise), ``reward_time`` (uncued: ``start_time``; cued
          8-14: ``start_time + 1.5`` s, the task's odour-to-reward delay, as these files
          carry no reward event; ``events.rewardOn`` where it is recorded; NaN without
          reward), and every other per-trial event field that is not all NaN, renamed
          (``odor_on``, ``odor_off``, ``laser_on``, ``first_lick`` ...). On uncued
          trials ``odor_on``/``odor_off`` are the file's values (reward time and 1 s
          later), though no odour is given.
        - ``intervals``: free-running events as tables with ``start_time``/``stop_time``
          (equal for point events): ``free_laser_on`` (tagging pulses, with
          ``spike_latency`` from ``LaserLatency``), ``laser_sequence``, ``laser_hz1``,
          ``laser_evoked_spikes`` (integer files store 0.1 ms ticks, float files ms),
          ``licks``, ``levers`` when present.
        - ``meta``: ``identifier`` (file stem), ``source``, ``file``, ``format``,
          ``mat_version``, ``waveforms`` (mean/SEM waveforms with and without laser,
          32 samples x 4 channels), ``skipped`` (fields not read, with the reason).

    Raises
    ------
    RecordingError
        The file is missing, not a readable .mat file, lacks the ``events`` /
        ``responses`` structs or their fields ``odorOn``, ``odorID``, ``trialType`` /
        ``spike``, or its per-trial fields differ in length.
    """
    p = Path(path).expanduser()
    shown = str(path) if shown is None else shown
    data = _read_mat(p, shown)
    missing = [s for s in ("events", "responses") if not isinstance(data.get(s), dict)]
    if missing:
        raise RecordingError(
            f"MATLAB file '{shown}' is not a CommonFormat recording: it lacks the struct(s) "
            f"{missing} (found variables {sorted(data)}); expected 'events' and 'responses'."
        )
    events, responses = data["events"], data["responses"]
    lacking = [f"events.{f}" for f in _REQUIRED_EVENTS if f not in events]
    lacking += ["responses.spike"] if "spike" not in responses else []
    if lacking:
        raise RecordingError(
            f"CommonFormat file '{shown}' lacks the field(s) {lacking}; events has "
            f"{sorted(events)}, responses has {sorted(responses)}."
        )
    skipped: list[dict] = []
    spikes_s = np.sort(_vector(responses["spike"], "responses.spike", shown)) / 1000.0
    if not np.all(np.isfinite(spikes_s)):
        raise RecordingError(f"CommonFormat file '{shown}': responses.spike holds NaN times.")
    trials = _trials(events, spikes_s, shown, skipped)
    intervals = _event_tables(events, responses, shown, skipped)
    stem = p.stem
    found = re.search(r"TT(\d+)_(\d+)", stem)
    units = pd.DataFrame(
        {"tetrode": [int(found.group(1))], "cell": [int(found.group(2))]} if found else {},
        index=pd.Index([stem], name="unit"))
    waveforms = {_snake(k): np.asarray(responses[k], dtype=np.float64)
                 for k in _WAVEFORMS if k in responses and np.size(responses[k])}
    import h5py

    meta = {
        "session_description": "Uchida lab CommonFormat unit (variable reward magnitude task)",
        "source": shown, "file": p.name, "format": "Uchida lab CommonFormat (MATLAB)",
        "mat_version": "7.3" if h5py.is_hdf5(str(p)) else "5",
        "waveforms": waveforms, "skipped": skipped,
    }
    return Recording.from_arrays(spike_times=[spikes_s], unit_ids=[stem], units=units,
                                 trials=trials, intervals=intervals, identifier=stem, **meta)
