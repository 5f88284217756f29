"""The ``psth`` step: peri-stimulus time histograms per condition, and trial rasters."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from ..._validation import Interval
from ..constraints import ListOf
from ..registry import Input, Output, Param, register_step
from ._common import COLUMN, rate_unit

__all__ = ["psth"]


def _group(epochs, by):
    if by is None:
        return None
    names = [by] if isinstance(by, str) else list(by)
    return next((b for b in names if b in epochs.coords and epochs[b].dims == ("trial",)), None)


def _grid(n: int):
    from ...plotting import new_figure

    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = new_figure(figsize=(3.4 * ncols, 2.7 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


@register_step(
    "psth",
    inputs={
        "epochs": Input("epochs", "(trial, time, unit) spike counts"),
        "recording": Input("recording", "the recording (its spikes, for the rasters)"),
    },
    outputs={
        "psth": Output("array", "(condition, time, unit) mean firing rate in Hz per value of "
                                "'by' (or (time, unit))"),
        "psth_figure": Output("figure", "PSTH +- s.e.m. per condition of the units shown"),
        "raster_figure": Output("figure", "trial rasters of the same units, grouped by 'by'"),
    },
    params={
        "by": Param([*COLUMN, None], "condition",
                    "trial column to split trials by (a list: the first present; all trials "
                    "together when absent or null)"),
        "n_units": Param([Interval(numbers.Integral, 1, 64)], 4,
                         "units shown: the most modulated (largest variance of the PSTH over "
                         "conditions and time)"),
        "units": Param([ListOf((int,)), None], None,
                       "unit ids to show instead of the most modulated"),
    },
)
def psth(ctx, *, epochs, recording, by, n_units, units):
    """Mean firing rate per condition over time (PSTH) for every unit, with figures."""
    from ...errors import RecordingError
    from ...plotting import plot_psth, plot_raster

    group = _group(epochs, by)
    factor, unit_name = rate_unit(epochs)
    rates = epochs.astype(np.float64) * factor
    mean = rates.groupby(group).mean("trial") if group else rates.mean("trial")
    mean = mean.assign_attrs(dict(epochs.attrs), units=unit_name, by=group or "")
    mean.name = "psth"

    if units is None:
        dims = [d for d in mean.dims if d != "unit"]
        modulation = mean.var(dims).values
        order = np.argsort(-modulation, kind="stable")[: min(n_units, mean.sizes["unit"])]
        shown = mean["unit"].values[np.sort(order)]
    else:
        missing = sorted(set(units) - set(mean["unit"].values.tolist()))
        if missing:
            raise RecordingError(
                f"Recording '{ctx.recording_id}' has no unit(s) {missing} (param 'units' of "
                f"the psth step); unit ids: {mean['unit'].values.tolist()[:20]}"
            )
        shown = np.asarray(units)

    fig_psth, axes = _grid(len(shown))
    # plot_psth divides by the bin size; scaled epochs (rate, sqrt, zscore) are shown as is
    bin_size = 1.0 / factor if unit_name == "Hz" else 1.0
    for i, (ax, u) in enumerate(zip(axes, shown)):
        # the legend goes beside the last panel, where it crowds no neighbour
        plot_psth(epochs, unit=u, by=group, ax=ax, legend=(i == len(shown) - 1),
                  bin_size=bin_size)
        if unit_name != "Hz":
            ax.set_ylabel(unit_name)
        ax.set_title(f"unit {u}")

    fig_raster, axes = _grid(len(shown))
    spikes_ok = epochs.attrs.get("source", "spikes") == "spikes" and "align_to" in epochs.attrs
    if spikes_ok:  # the trials the epochs came from (maybe an interval table), as a table
        columns = [c for c in epochs.coords if epochs[c].dims == ("trial",) and c != "trial"]
        table = pd.DataFrame({c: epochs[c].values for c in columns},
                             index=pd.Index(epochs["trial"].values, name="trial"))
        recording = recording.with_trials(table)
    for ax, u in zip(axes, shown):
        if spikes_ok:
            plot_raster(recording, unit=u, align_to=epochs.attrs["align_to"],
                        window=tuple(epochs.attrs["window"]), by=group,
                        trials=epochs["trial"].values, ax=ax)
        else:
            ax.text(0.5, 0.5, "no spike raster for\nsignal epochs", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_title(f"unit {u}")
    return {"psth": mean, "psth_figure": fig_psth, "raster_figure": fig_raster}
