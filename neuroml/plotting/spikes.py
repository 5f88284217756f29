"""Figures of spiking activity: rasters and peri-stimulus time histograms (PSTH)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..errors import ParameterError, RecordingError
from ..io.recording import Recording
from ..io.spikes import SpikeTrains
from ._common import get_axes, group_colors, group_trials, mark_event, require_dims, time_label

__all__ = ["plot_raster", "plot_psth"]


def _ticks(times: np.ndarray, rows: np.ndarray, height: float = 0.8) -> np.ndarray:
    """Vertical tick segments ``[(t, row - h/2), (t, row + h/2)]``, shape (n, 2, 2)."""
    seg = np.empty((times.size, 2, 2))
    seg[:, :, 0] = times[:, None]
    seg[:, 0, 1] = rows - height / 2
    seg[:, 1, 1] = rows + height / 2
    return seg


def plot_raster(spikes, *, unit=None, align_to: str | None = None,
                window: tuple[float, float] = (-0.5, 1.0), by: str | None = None,
                trials=None, start: float | None = None, stop: float | None = None,
                units=None, ax: Axes | None = None, color="k",
                linewidth: float = 0.8) -> Axes:
    """Spike raster: all units over a time range, or one unit across aligned trials.

    Two modes:

    - **Population raster** (``align_to`` None): ``spikes`` is a
      :class:`~neuroml.SpikeTrains` (or a Recording, whose ``spikes`` are used); one
      row per unit, spikes in ``[start, stop)``.
    - **Trial raster** (``align_to`` given): ``spikes`` is a :class:`~neuroml.Recording`
      with a trials table; the spikes of ``unit`` in ``window`` around each trial's
      ``align_to`` time, one row per trial (first trial at the top), optionally
      grouped and coloured by the trial column ``by``.

    Parameters
    ----------
    spikes : SpikeTrains or Recording
    unit : unit id, default=None
        The unit of a trial raster (required with ``align_to``).
    align_to : str, default=None
        A trials-table column of event times in seconds (trial raster).
    window : (float, float), default=(-0.5, 1.0)
        Seconds around the event shown in a trial raster.
    by : str, default=None
        Trials column to group (sort) and colour the trial rows by.
    trials : array-like of bool or trial labels, default=None
        Which trials to show (a trial raster); all when None. Trials whose event
        time is NaN must be left out this way.
    start, stop : float, default=None
        Time range of a population raster in seconds; the first and last spike
        when None.
    units : array-like of unit ids, default=None
        Units of a population raster; all when None.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.
    color : color, default="k"
        Tick colour (when not coloured by ``by``).
    linewidth : float, default=0.8

    Returns
    -------
    ax : matplotlib.axes.Axes
        The ticks are LineCollections in ``ax.collections`` (one per colour group).
    """
    owner = "plot_raster"
    if align_to is not None:
        if not isinstance(spikes, Recording):
            raise ParameterError(
                f"A trial raster (align_to={align_to!r}) of {owner} needs a Recording with a "
                f"trials table. Got {type(spikes).__name__} instead."
            )
        if unit is None:
            raise ParameterError(
                f"The 'unit' parameter of {owner} is required with 'align_to': the id of the "
                "unit whose spikes are shown across trials."
            )
        return _trial_raster(spikes, unit, align_to, window, by, trials, ax, color, linewidth)
    if isinstance(spikes, Recording):
        spikes = spikes._require_spikes()
    if not isinstance(spikes, SpikeTrains):
        raise ParameterError(
            f"The 'spikes' parameter of {owner} must be a SpikeTrains or a Recording. "
            f"Got {type(spikes).__name__} instead."
        )
    if units is not None:
        spikes = spikes.select(np.atleast_1d(units))
    lo, hi = spikes.span
    start = lo if start is None else float(start)
    stop = (hi + 1e-9) if stop is None else float(stop)
    if not start < stop:
        raise ParameterError(
            f"The 'start' and 'stop' parameters of {owner} must satisfy start < stop. "
            f"Got start={start!r}, stop={stop!r} instead."
        )
    st = spikes.restrict(start, stop)
    ax = get_axes(ax, figsize=(7.0, 1.8 + 0.12 * min(len(st), 60)), owner=owner)
    rows = st.unit_index().astype(np.float64)
    ax.add_collection(LineCollection(_ticks(st.times, rows), colors=color,
                                     linewidths=linewidth))
    n = len(st)
    ax.set_xlim(start, stop)
    ax.set_ylim(n - 0.5, -0.5)  # first unit at the top
    if n <= 25:
        ax.set_yticks(range(n), [str(u) for u in st.unit_ids])
        ax.set_ylabel("Unit")
    else:  # ticks at some rows, labelled with those rows' unit ids
        ids = [str(u) for u in st.unit_ids]
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda y, _pos: ids[int(round(y))] if 0 <= round(y) < len(ids) else ""))
        ax.set_ylabel("Unit")
    ax.set_xlabel("Time (s)")
    ax.set_title(f"Spike raster ({n} units)")
    return ax


def _trial_raster(rec: Recording, unit, align_to, window, by, trials, ax, color, linewidth):
    owner = "plot_raster"
    table = rec._require_trials()
    if trials is not None:
        sel = np.asarray(trials)
        table = table.loc[sel] if sel.dtype == bool else table.loc[list(sel)]
    if align_to not in table.columns:
        raise RecordingError(
            f"The 'align_to' parameter of {owner} must be a column of the trials table of "
            f"{rec._where()}; columns: {list(table.columns)}. Got {align_to!r}."
        )
    if by is not None and by not in table.columns:
        raise ParameterError(
            f"The 'by' parameter of {owner} must be a trials column; columns: "
            f"{list(table.columns)}. Got {by!r}."
        )
    w0, w1 = float(window[0]), float(window[1])
    if not w0 < w1:
        raise ParameterError(
            f"The 'window' parameter of {owner} must be (start, stop) with start < stop. "
            f"Got {tuple(window)!r} instead."
        )
    events = pd.to_numeric(table[align_to], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(events)):
        bad = table.index[~np.isfinite(events)].tolist()
        raise RecordingError(
            f"Column {align_to!r} of the trials table of {rec._where()} has {len(bad)} "
            f"missing (NaN) event time(s), trials {bad[:10]}; pass "
            f"trials=rec.trials[{align_to!r}].notna() to show the others."
        )
    times = np.sort(rec._require_spikes()[unit])
    # Order (and group) the trials: by the `by` column (stable), else as in the table.
    if by is not None:
        keys = table[by].to_numpy()
        labels = list(dict.fromkeys(keys.tolist()))
        try:
            labels = sorted(labels)
        except TypeError:
            pass
        order = np.concatenate([np.flatnonzero(keys == lab) for lab in labels])
        group_of = np.array([labels.index(k) for k in keys.tolist()])[order]
    else:
        labels, order, group_of = [None], np.arange(len(table)), np.zeros(len(table), int)
    ev = events[order]
    lo = np.searchsorted(times, ev + w0, side="left")
    hi = np.searchsorted(times, ev + w1, side="left")
    counts = hi - lo
    rows = np.repeat(np.arange(ev.size), counts)
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if ev.size else np.zeros(0, int)
    rel = times[idx] - ev[rows]
    ax = get_axes(ax, figsize=(6.0, 2.6 + 0.015 * min(ev.size, 200)), owner=owner)
    palette = group_colors(len(labels)) if by is not None else [color]
    handles = []
    for g, lab in enumerate(labels):
        keep = group_of[rows] == g
        ax.add_collection(LineCollection(_ticks(rel[keep], rows[keep].astype(np.float64)),
                                         colors=[palette[g]], linewidths=linewidth))
        if by is not None:
            handles.append(Line2D([], [], color=palette[g], linewidth=2, label=str(lab)))
    if by is not None and len(labels) > 1:
        bounds = np.flatnonzero(np.diff(group_of)) + 0.5
        for b in bounds:
            ax.axhline(b, color="0.7", linewidth=0.6)
        ax.legend(handles=handles, title=by, frameon=False, fontsize="small",
                  loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if w0 <= 0 <= w1:
        ax.axvline(0.0, color="0.5", linestyle=":", linewidth=1, zorder=0)
    ax.set_xlim(w0, w1)
    ax.set_ylim(ev.size - 0.5, -0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"Time from {align_to} (s)")
    ax.set_ylabel("Trial" + (f" (sorted by {by})" if by is not None else ""))
    ax.set_title(f"Unit {unit}: {ev.size} trials")
    return ax


def plot_psth(epochs: xr.DataArray, *, unit, by: str | None = "condition",
              bin_size: float | None = None, ax: Axes | None = None, colors=None,
              cmap: str | None = None, sem: bool = True, legend: bool = True) -> Axes:
    """Peri-stimulus time histogram of one unit: mean firing rate ± s.e.m. per condition.

    Parameters
    ----------
    epochs : xarray.DataArray, dims ("trial", "time", "unit")
        Spike counts from :meth:`Recording.epochs` (``time`` in seconds relative to
        the event; trial coordinates from the trials table; ``attrs["bin_size"]``).
    unit : unit id
        The unit (a value of the ``unit`` coordinate).
    by : str or None, default="condition"
        Trial coordinate to split by; None averages all trials.
    bin_size : float, default=None
        Bin width in seconds, to convert counts to Hz; ``epochs.attrs["bin_size"]``
        when None.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.
    colors : sequence of colors, default=None
        One per condition.
    cmap : str, default=None
        Colormap for the conditions when ``colors`` is None.
    sem : bool, default=True
        Shade ± one standard error of the mean across trials (``std(ddof=1) / sqrt(n)``).
    legend : bool, default=True

    Returns
    -------
    ax : matplotlib.axes.Axes
        One line per condition in ``ax.lines`` (after the event line when 0 is shown);
        one band per condition with at least two trials in ``ax.collections``.
    """
    owner = "plot_psth"
    epochs = require_dims(epochs, ["trial", "time", "unit"], owner, "epochs")
    bin_size = epochs.attrs.get("bin_size") if bin_size is None else bin_size
    if bin_size is None or not float(bin_size) > 0:
        raise ParameterError(
            f"{owner} needs the bin width to convert counts to Hz: pass bin_size= or use "
            f"Recording.epochs output (attrs['bin_size']). Got {bin_size!r}."
        )
    units = epochs["unit"].values if "unit" in epochs.coords else np.arange(epochs.sizes["unit"])
    matches = np.flatnonzero(units == unit)
    if matches.size != 1:
        shown = units[:10].tolist()
        raise ParameterError(
            f"The 'unit' parameter of {owner} must be one of the unit ids {shown}"
            f"{' ...' if units.size > 10 else ''}. Got {unit!r} instead."
        )
    rate = epochs.isel(unit=int(matches[0])).astype(np.float64) / float(bin_size)
    groups = group_trials(rate, by, owner)
    palette = group_colors(len(groups), colors, cmap) if by is not None else (colors or ["C0"])
    ax = get_axes(ax, figsize=(6.0, 3.8), owner=owner)
    times = np.asarray(epochs["time"].values, dtype=np.float64)
    mark_event(ax, times)
    for (label, sub), col in zip(groups, palette):
        n = sub.sizes["trial"]
        mean = sub.mean("trial").values
        name = "all trials" if label is None else str(label)
        ax.plot(times, mean, color=col, linewidth=1.6, label=f"{name} (n={n})")
        if sem and n > 1:
            err = sub.std("trial", ddof=1).values / np.sqrt(n)
            ax.fill_between(times, mean - err, mean + err, color=col, alpha=0.2, linewidth=0)
    if times.size > 1:
        ax.set_xlim(times.min(), times.max())
    ax.set_ylim(bottom=0)
    ax.set_xlabel(time_label(epochs.attrs))
    ax.set_ylabel("Firing rate (Hz)")
    ax.set_title(f"Unit {unit}" + (f" by {by}" if by is not None else ""))
    if legend:
        ax.legend(title=by, frameon=False, fontsize="small", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return ax
