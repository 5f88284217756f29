"""Small steps used only by the pipeline tests (imported by worker processes too)."""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from neuroml._validation import Interval
from neuroml.pipeline import Input, Output, Param, register_step


@register_step(
    "test_mean_rate",
    inputs={"data": Input("epochs", "(trial, time, unit) counts")},
    outputs={
        "rates": Output("array", "mean count per unit"),
        "rate_metrics": Output("metrics", "mean over units"),
        "rate_figure": Output("figure", "bar chart"),
    },
    params={"factor": Param([Interval(numbers.Real, 0, None, "neither")], 1.0, "multiplier")},
)
def mean_rate(ctx, *, data, factor):
    """Mean count per unit times a factor (a test step)."""
    rates = data.mean(("trial", "time")) * factor
    rates.name = "rates"
    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.bar(np.arange(rates.sizes["unit"]), rates.values)
    return {"rates": rates, "rate_metrics": {"mean_rate": float(rates.mean()),
                                             "n_units": int(rates.sizes["unit"])},
            "rate_figure": fig}


@register_step(
    "test_needs_label",
    inputs={"data": Input("epochs", "epochs")},
    outputs={"label_counts": Output("metrics", "trials per class")},
    params={"label": Param([str], doc="trial column (required)")},
)
def needs_label(ctx, *, data, label):
    """Counts trials per value of a label (fails when the column is missing)."""
    if label not in data.coords:
        raise KeyError(f"no column {label!r}")
    values, counts = np.unique(data[label].values, return_counts=True)
    return {"label_counts": {str(v): int(c) for v, c in zip(values, counts)}}


@register_step(
    "test_bad_return",
    inputs={},
    outputs={"x": Output("array", "an array")},
    params={},
)
def bad_return(ctx):
    """Returns the wrong type (tests the runner's check)."""
    return {"x": xr.Dataset()}


@register_step(
    "test_warns",
    inputs={},
    outputs={"warned": Output("metrics", "nothing much")},
    params={},
)
def warns(ctx):
    """Warns twice with the same message and once with another."""
    import warnings

    for _ in range(2):
        warnings.warn("numbers may be off", RuntimeWarning, stacklevel=1)
    warnings.warn(f"recording {ctx.recording_id} is odd", UserWarning, stacklevel=1)
    return {"warned": {"ok": True}}
