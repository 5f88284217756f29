"""Steps that turn a recording's spikes into arrays: ``bin_spikes`` and ``epochs``."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ..._validation import Interval
from ...errors import RecordingError
from ..constraints import Pair
from ..registry import Input, Output, Param, register_step
from ._common import COLUMN, POSITIVE, SCALE, pick_column, scale_counts

__all__ = ["bin_spikes", "epochs"]

_RECORDING = {"recording": Input("recording", "the loaded recording")}


@register_step(
    "bin_spikes",
    inputs=_RECORDING,
    outputs={
        "binned": Output("array", "(time, unit) spike counts over the whole session "
                                  "(or start..stop)", save=False),
    },
    params={
        "bin_size": Param(POSITIVE, 0.05, "bin width in seconds"),
        "start": Param([float, None], None,
                       "first bin's start in seconds; the first spike when null"),
        "stop": Param([float, None], None,
                      "last bin's end in seconds; the last spike when null"),
        "scale": Param(SCALE, "counts",
                       "counts as they are, rate (Hz), sqrt (variance-stabilised) or zscore "
                       "(per unit)"),
    },
)
def bin_spikes(ctx, *, recording, bin_size, start, stop, scale):
    """Bin every unit's spikes in equal bins over the session: a (time, unit) array."""
    binned = recording.bin(bin_size, start=start, stop=stop)
    binned.attrs["bin_size"] = float(bin_size)
    return {"binned": scale_counts(binned, scale, bin_size)}


@register_step(
    "epochs",
    inputs=_RECORDING,
    outputs={
        "epochs": Output("array", "(trial, time, unit) counts aligned to each trial's event, "
                                  "every trials column as a trial coordinate", save=False),
        "epochs_info": Output("metrics", "trials used and dropped, units, bins, the event "
                                         "aligned to"),
    },
    params={
        "align_to": Param(COLUMN, "start_time",
                          "trials-table column of event times to align to; a list means the "
                          "first column the recording has (for folders mixing tasks)"),
        "window": Param([Pair()], [-0.5, 1.0],
                        "[start, stop] around the event in seconds"),
        "bin_size": Param(POSITIVE, 0.05, "bin width in seconds"),
        "source": Param([str], "spikes",
                        "'spikes' for spike counts, or the name of a signal sampled at the "
                        "bin centres"),
        "scale": Param(SCALE, "counts",
                       "counts as they are, rate (Hz), sqrt (variance-stabilised) or zscore "
                       "(per unit over trials and time)"),
        "min_trials": Param([Interval(numbers.Integral, 1, None)], 2,
                            "fewer usable trials than this is an error for the recording"),
        "table": Param([*COLUMN, None], None,
                       "an interval table to use as the trials (e.g. 'encoding_table', "
                       "'flashes_presentations'; a list: the first the recording has, "
                       "'trials' naming the NWB trials table); the trials table when null"),
    },
)
def epochs(ctx, *, recording, align_to, window, bin_size, source, scale, min_trials, table):
    """Align spike counts (or a signal) to an event of every trial: (trial, time, unit)."""
    if table is not None:
        names = [table] if isinstance(table, str) else list(table)
        found = next((n for n in names if n in recording.intervals
                      or (n == "trials" and recording.has_trials)), None)
        if found is None:
            raise RecordingError(
                f"Recording '{ctx.recording_id}' has no interval table "
                f"{names[0] if len(names) == 1 else names!r} (param 'table' of the epochs "
                f"step); its interval tables: {list(recording.intervals) or 'none'}."
            )
        if found != "trials":
            recording = recording.with_trials(recording.intervals[found])
    trials = recording.trials
    if trials is None or len(trials) == 0:
        where = "no trials table" if trials is None else "an empty trials table"
        raise RecordingError(
            f"Recording '{ctx.recording_id}' has {where}; the 'epochs' step needs trials "
            f"(interval tables present: {list(recording.intervals) or 'none'})."
        )
    column = pick_column(trials.columns, align_to, "'align_to'", ctx.recording_id)
    events = pd.to_numeric(trials[column], errors="coerce")
    usable = np.isfinite(events.to_numpy(dtype=np.float64))
    n_usable = int(usable.sum())
    if n_usable < min_trials:
        raise RecordingError(
            f"Recording '{ctx.recording_id}': only {n_usable} trial(s) have a '{column}' time "
            f"(min_trials={min_trials})."
        )
    mask = usable if n_usable < len(trials) else None
    data = recording.epochs(column, tuple(window), bin_size, source=source, trials=mask)
    info = {
        "table": "trials" if table is None else found,
        "align_to": column,
        "n_trials": int(data.sizes["trial"]),
        "n_dropped": int(len(trials) - n_usable),
        "n_features": int(data.sizes[data.dims[-1]]),
        "n_times": int(data.sizes["time"]),
        "bin_size": float(bin_size),
    }
    return {"epochs": scale_counts(data, scale, bin_size), "epochs_info": info}
