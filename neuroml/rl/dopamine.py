"""Distributional analyses of dopamine reward responses (Dabney et al. 2020, Nature 577).

The variable-magnitude task gives rewards of several sizes. Under distributional TD each
dopamine neuron scales positive errors by ``alpha+`` and negative ones by ``alpha-``, so
its response to reward reverses sign at a cell-specific *reversal point* (the
``tau``-expectile of the reward distribution, ``tau = alpha+ / (alpha+ + alpha-)``), and
cells with a larger asymmetry reverse at larger rewards. Three steps:

1. :func:`reward_responses`: from recordings (e.g. the Uchida lab CommonFormat units read
   by :func:`neuroml.load_recording`) to one baseline-subtracted response per reward trial.
2. :func:`~neuroml.rl.reversal.reversal_point_analysis`: per cell the reversal point and
   the asymmetry, from independent halves of the trials;
   :func:`~neuroml.rl.reversal.reversal_correlation` their correlation across cells.
3. :func:`~neuroml.rl.imputation.decode_reward_distribution`: the reward distribution
   whose expectiles are the reversal points at the asymmetries (Dabney's imputation), as
   samples.

This module holds the first step; it follows the authors' released MATLAB analysis
(``LoadVarMagData.m``); every departure is named where it is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import Options, check_param
from ..errors import ParameterError, RecordingError

__all__ = ["reward_responses"]


# ---------------------------------------------------------------------- responses
def _rate(rec, align: str, window, mask) -> np.ndarray:
    """Spikes/s of every unit in ``window`` around each selected trial's ``align`` time."""
    w0, w1 = float(window[0]), float(window[1])
    counts = rec.epochs(align, (w0, w1), w1 - w0, trials=mask)  # one bin per trial
    return np.asarray(counts.values[:, 0, :], dtype=np.float64) / (w1 - w0)


def reward_responses(recordings, *, window=(0.2, 0.6), baseline=(-1.0, 0.0),
                     trials="all") -> pd.DataFrame:
    """Baseline-subtracted firing rate after each reward, one row per (unit, trial).

    As in Dabney et al. (2020): the rate (spikes/s) in ``window`` after the reward minus
    the rate in ``baseline`` before the trial's event (``start_time``: the odour onset
    on cued trials, the reward itself on uncued ones). The defaults are the paper's:
    200-600 ms after reward (its MATLAB code takes 200-600 ms after uncued rewards and
    1,700-2,100 ms after the odour, i.e. after the reward 1.5 s later, on cued trials)
    and the second before the event. The paper averages a smoothed 1 ms PSTH over the
    window; counting spikes in the window gives per-cell, per-magnitude means that
    correlate at 0.999 with the paper's on the 40 units of Eshel et al.

    With ``trials="all"`` cued and uncued trials are pooled as in the paper: the uncued
    responses are shifted by one population-wide constant, the mean of the cued
    responses minus the mean of the uncued ones (each the mean over cells of the
    per-cell, per-magnitude means), so both sit on the cued trials' scale.

    Parameters
    ----------
    recordings : Recording, str, Path, or an iterable of them
        Paths are opened with :func:`neuroml.load_recording`; ids must be distinct. Each
        needs spikes and a trials table with ``start_time``, ``reward_time``,
        ``magnitude`` and ``cued`` (as the CommonFormat reader gives). Trials with a
        finite ``magnitude`` and ``reward_time`` are used.
    window : (float, float), default=(0.2, 0.6)
        Response window in seconds after ``reward_time``.
    baseline : (float, float), default=(-1.0, 0.0)
        Baseline window in seconds around ``start_time``.
    trials : {"all", "uncued", "cued"}, default="all"
        Which reward trials; "all" pools them with the offset above.

    Returns
    -------
    responses : pandas.DataFrame
        Columns ``cell`` (the recording id, with ``/<unit id>`` when a recording has
        several units), ``recording``, ``unit``, ``trial`` (trials-table label),
        ``magnitude``, ``cued``, ``baseline`` (spikes/s) and ``response`` (spikes/s,
        baseline subtracted, offset applied). ``attrs["uncued_offset"]`` holds the
        offset (0.0 unless ``trials="all"``), ``attrs["window"]``/``["baseline"]`` the
        windows.

    Raises
    ------
    RecordingError
        A recording lacks spikes, a trials table or one of the columns above.
    ParameterError
        A bad window or ``trials``, or two recordings with the same id.
    """
    check_param("trials", trials, [Options(("all", "uncued", "cued"))], "reward_responses")
    for name, win in (("window", window), ("baseline", baseline)):
        try:
            ok = len(win) == 2 and float(win[0]) < float(win[1])
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ParameterError(f"The '{name}' parameter of reward_responses must be "
                                 f"(start, stop) in seconds with start < stop. Got {win!r}.")
    from ..io.nwb import load_recording
    from ..io.recording import Recording

    items = [recordings] if isinstance(recordings, str | Path | Recording) else list(recordings)
    frames, seen = [], set()
    for item in items:
        rec = load_recording(item) if isinstance(item, str | Path) else item
        if rec.id in seen:
            raise ParameterError(
                f"reward_responses: two recordings share the id {rec.id!r}, so their cells "
                "would be merged; give each recording a distinct file name or identifier.")
        seen.add(rec.id)
        table = rec.trials
        need = ["start_time", "reward_time", "magnitude", "cued"]
        lacking = [c for c in need if table is None or c not in table.columns]
        if lacking or not rec.has_spikes:
            raise RecordingError(
                f"reward_responses: recording '{rec.id}' lacks "
                f"{lacking or ['spikes']}; it needs spikes and a trials table with {need} "
                "(as neuroml.load_recording gives for CommonFormat .mat files).")
        mag = pd.to_numeric(table["magnitude"], errors="coerce").to_numpy(dtype=float)
        rew = pd.to_numeric(table["reward_time"], errors="coerce").to_numpy(dtype=float)
        cued = table["cued"].to_numpy(dtype=bool)
        mask = np.isfinite(mag) & np.isfinite(rew)
        if trials != "all":
            mask &= cued if trials == "cued" else ~cued
        if not mask.any():
            continue
        resp = _rate(rec, "reward_time", window, mask)
        base = _rate(rec, "start_time", baseline, mask)
        units = rec.spikes.unit_ids
        n_sel, n_units = resp.shape
        label = [rec.id if n_units == 1 else f"{rec.id}/{u}" for u in units]
        frames.append(pd.DataFrame({
            "cell": np.tile(label, n_sel), "recording": rec.id,
            "unit": np.tile(np.asarray(units, dtype=object), n_sel),
            "trial": np.repeat(np.asarray(table.index[mask]), n_units),
            "magnitude": np.repeat(mag[mask], n_units),
            "cued": np.repeat(cued[mask], n_units),
            "baseline": base.ravel(), "response": (resp - base).ravel()}))
    if not frames:
        raise RecordingError("reward_responses: no reward trials (finite magnitude and "
                             f"reward_time, trials={trials!r}) in the recordings given.")
    out = pd.concat(frames, ignore_index=True)
    offset = 0.0
    if trials == "all" and out["cued"].any() and (~out["cued"]).any():
        means = out.groupby(["cued", "cell", "magnitude"])["response"].mean()
        offset = float(means.loc[True].mean() - means.loc[False].mean())
        out.loc[~out["cued"], "response"] += offset
    out.attrs.update(uncued_offset=offset, window=[float(w) for w in window],
                     baseline=[float(b) for b in baseline])
    return out
