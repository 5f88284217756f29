"""Helpers shared by the built-in steps (parameter types, column choice, scaling)."""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from ..._validation import Interval, Options
from ...errors import RecordingError
from ..constraints import ListOf

__all__ = ["COLUMN", "POSITIVE", "SCALE", "pick_column", "scale_counts", "rate_unit",
           "trial_labels"]

#: A trials-table column, or a list of candidates (the first present is used).
COLUMN = [str, ListOf((str,))]
#: A number > 0.
POSITIVE = [Interval(numbers.Real, 0, None, "neither")]
#: How spike counts are scaled before analysis.
SCALE = [Options(("counts", "rate", "sqrt", "zscore"))]


def pick_column(available, candidates, what: str, recording_id: str, *,
                kind: str = "trials column") -> str:
    """The first of ``candidates`` (a str or list of str) that is in ``available``.

    ``kind`` is what the candidates are, in the message ("trials column", "signal" ..).

    Raises
    ------
    RecordingError
        None of them is there; the message lists the ones that are.
    """
    names = [candidates] if isinstance(candidates, str) else list(candidates)
    for name in names:
        if name in available:
            return name
    shown = repr(names[0]) if len(names) == 1 else f"(any of {names})"
    raise RecordingError(
        f"Recording '{recording_id}' has no {kind} {shown} for {what}; "
        f"its {kind}s: {sorted(map(str, available))}."
    )


def scale_counts(da: xr.DataArray, scale: str, bin_size: float) -> xr.DataArray:
    """Spike counts scaled for analysis.

    ``counts``: unchanged; ``rate``: counts / bin_size (Hz); ``sqrt``: the square root
    (variance-stabilising for Poisson counts); ``zscore``: each unit centred and divided
    by its standard deviation over all other axes (units that never vary stay 0).
    """
    if scale == "counts":
        out = da
    elif scale == "rate":
        out = da / float(bin_size)
    elif scale == "sqrt":
        out = np.sqrt(da.astype(np.float64))
    else:
        axes = [d for d in da.dims if d not in ("unit", "channel")]
        x = da.astype(np.float64)
        mean = x.mean(axes)
        std = x.std(axes)
        out = (x - mean) / xr.where(std > 0, std, 1.0)
    out = out.assign_attrs(da.attrs)
    out.attrs["scale"] = scale
    out.name = da.name
    return out


def rate_unit(da: xr.DataArray) -> tuple[float, str]:
    """Factor turning ``da`` (as scaled by :func:`scale_counts`) into Hz, and its unit."""
    scale = da.attrs.get("scale", "counts")
    if scale == "counts" and "bin_size" in da.attrs:
        return 1.0 / float(da.attrs["bin_size"]), "Hz"
    if scale == "rate":
        return 1.0, "Hz"
    return 1.0, scale


def trial_labels(epochs: xr.DataArray, label, recording_id: str) -> tuple[str, np.ndarray]:
    """The trial coordinate to decode (first of ``label`` present) and its values.

    Raises
    ------
    RecordingError
        No such coordinate, missing values, or fewer than two classes.
    """
    coords = [c for c in epochs.coords if epochs[c].dims == ("trial",) and c != "trial"]
    name = pick_column(coords, label, "the decoding label", recording_id)
    y = np.asarray(epochs[name].values)
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise RecordingError(
            f"Recording '{recording_id}': trials column {name!r} has "
            f"{int(np.isnan(y).sum())} missing value(s); decoding needs a label on every trial."
        )
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise RecordingError(
            f"Recording '{recording_id}': trials column {name!r} has a single value "
            f"({classes.tolist()}); decoding needs at least two classes."
        )
    return name, y
