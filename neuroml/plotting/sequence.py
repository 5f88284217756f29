"""Figures for sequence decoders, encoding models and tuning-curve fits.

- :func:`plot_predicted_behavior`: decoded against observed behaviour over time, one
  panel per behaviour channel, several decoders overlaid.
- :func:`plot_decoder_scores`: held-out R^2 per decoder, a bar each with the folds as
  points.
- :func:`plot_receptive_fields`: a grid of receptive fields (e.g.
  ``ConvEncodingModel.receptive_fields()``) on a colour scale symmetric about 0.
- :func:`plot_tuning_curves`: each neuron's responses and its ``ParametricRegressor``
  fit, a grid of small panels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes

from ..errors import ParameterError
from ._common import group_colors, new_figure, time_label

__all__ = ["plot_predicted_behavior", "plot_decoder_scores", "plot_receptive_fields",
           "plot_tuning_curves"]

#: Colour of observed data (behaviour traces, measured responses).
_OBSERVED = "0.15"


def _panel_axes(ax, n: int, owner: str, *, ncols: int, panel: tuple[float, float],
                sharex: bool = False, sharey: bool = False) -> list[Axes]:
    """``n`` Axes: a new grid of ``ncols`` columns (extra cells hidden), or the given ones."""
    if ax is None:
        nrows = math.ceil(n / ncols)
        fig = new_figure((panel[0] * ncols + 0.6, panel[1] * nrows + 0.5))
        grid = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey).ravel()
        for extra in grid[n:]:
            extra.set_visible(False)
        return list(grid[:n])
    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(ax)) \
        if isinstance(ax, Sequence | np.ndarray) else None
    if axes is None or len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        raise ParameterError(
            f"The 'ax' parameter of {owner} must be None or {n} matplotlib Axes (one per "
            f"panel). Got {ax!r} instead.")
    return axes


def _select(da: xr.DataArray, dim: str, wanted, what: str, owner: str) -> xr.DataArray:
    """``da`` restricted to ``wanted`` labels (or, failing that, positions) along ``dim``."""
    if wanted is None:
        return da
    wanted = np.atleast_1d(np.asarray(wanted))
    if dim in da.coords and np.isin(wanted, da[dim].values).all():
        return da.sel({dim: wanted})
    if wanted.dtype.kind in "iu" and ((wanted >= -da.sizes[dim]) & (wanted < da.sizes[dim])).all():
        return da.isel({dim: wanted})
    labels = da[dim].values.tolist() if dim in da.coords else list(range(da.sizes[dim]))
    raise ParameterError(
        f"The '{what}' parameter of {owner} must list labels or positions along {dim!r} "
        f"(labels: {labels[:20]}). Got {wanted.tolist()[:20]} instead.")


# ---------------------------------------------------------------------- behaviour traces
def _break_gaps(x: np.ndarray, values: list[np.ndarray]) -> tuple[np.ndarray, list]:
    """Insert a NaN point wherever ``x`` jumps by more than 1.5 typical steps (no line
    is drawn across a gap in the recording)."""
    if x.size < 3:
        return x, values
    step = np.diff(x)
    cuts = np.flatnonzero(step > 1.5 * np.median(step)) + 1
    if not cuts.size:
        return x, values
    x = np.insert(x.astype(np.float64), cuts, np.nan)
    return x, [np.insert(v.astype(np.float64), cuts, np.nan, axis=0) for v in values]


_METRES = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0}
_PREFIX = {-9: "n", -6: "\u00b5", -3: "m", 0: ""}


def _scaled_unit(unit, values: np.ndarray) -> tuple[float, str | None]:
    """A factor and unit label that bring tiny or huge values near 1 (m/s -> µm/s)."""
    finite = np.abs(values[np.isfinite(values)])
    peak = float(finite.max()) if finite.size else 0.0
    if peak == 0 or 1e-2 <= peak < 1e4:
        return 1.0, unit
    power = int(3 * np.floor(np.log10(peak) / 3))
    base, _, rest = (unit or "").partition("/")
    if base in _METRES and power in _PREFIX:
        return 10.0 ** -power, f"{_PREFIX[power]}m" + (f"/{rest}" if rest else "")
    return 10.0 ** -power, f"\u00d71e{power}" + (f" {unit}" if unit else "")


def plot_predicted_behavior(predictions: xr.DataArray, *, observed=None, decoders=None,
                            channels=None, time_range=None, trials=None, colors=None,
                            ax: Axes | Sequence[Axes] | None = None) -> np.ndarray:
    """Decoded against observed behaviour over time, one panel per behaviour channel.

    Parameters
    ----------
    predictions : xarray.DataArray, dims ([decoder,] [trial,] time[, channel])
        Held-out predictions, e.g. the ``sequence_predictions`` output of the pipeline
        step ``decode_sequence``: one trace per ``decoder``, time in seconds. With a
        ``trial`` dim the selected trials are drawn end to end (dotted lines mark the
        trial boundaries, dashed ones the event of ``attrs["align_to"]``). A coordinate ``observed`` with the predictions' dims minus
        ``decoder`` holds the true behaviour; a coordinate ``r2`` over ``decoder`` (and
        ``channel``) adds each decoder's R^2 to its legend entry. ``attrs`` ``behavior``
        and ``unit`` label the axes (tiny or huge values are rescaled: m/s to µm/s, else
        a ``×1e-6`` factor in the label). Gaps in time (steps over 1.5 times the typical
        one) break the lines. The y-range covers the observed trace and at most one
        more observed range above and below it: predictions beyond are cut.
    observed : array-like or DataArray, default=None
        The true behaviour, shaped as one decoder's predictions; the ``observed``
        coordinate when None.
    decoders : sequence, default=None
        Decoders to draw (labels along ``decoder``); all when None.
    channels : sequence, default=None
        Channels to draw (labels or positions); all when None.
    time_range : (float, float), default=None
        Only the bins with ``start <= time < stop`` (seconds; without a ``trial`` dim).
    trials : sequence, default=None
        Trials to draw end to end (labels or positions); the first 5 when None.
    colors : sequence of colours, default=None
        One per decoder (tab10 when None); the observed trace is near-black.
    ax : Axes or sequence of Axes, default=None
        One Axes per channel; a new figure (one panel per row, shared time axis) when None.

    Returns
    -------
    axes : ndarray of matplotlib.axes.Axes, shape (n_channels,)
        In each, ``lines[0]`` is the observed trace and ``lines[1 + i]`` decoder ``i``.
    """
    owner = "plot_predicted_behavior"
    if not isinstance(predictions, xr.DataArray) or "time" not in predictions.dims or \
            not set(predictions.dims) <= {"decoder", "trial", "time", "channel"}:
        got = predictions.dims if isinstance(predictions, xr.DataArray) \
            else type(predictions).__name__
        raise ParameterError(
            f"The 'predictions' parameter of {owner} must be a DataArray with dims "
            f"([decoder,] [trial,] time[, channel]). Got {got} instead.")
    da = predictions
    if "decoder" not in da.dims:
        da = da.expand_dims(decoder=[str(da.name or "decoded")])
    if "channel" not in da.dims:
        da = da.expand_dims(channel=[str(da.attrs.get("behavior", "behaviour"))], axis=-1)
    if observed is None:
        if "observed" not in da.coords:
            raise ParameterError(
                f"{owner} needs the observed behaviour: pass observed=..., or give predictions "
                "an 'observed' coordinate (as decode_sequence does).")
        obs = da["observed"]
    else:
        obs = observed if isinstance(observed, xr.DataArray) else xr.DataArray(
            np.asarray(observed), dims=[d for d in predictions.dims if d != "decoder"])
        if "channel" not in obs.dims:
            obs = obs.expand_dims(channel=da["channel"].values, axis=-1)
        obs = obs.assign_coords({d: da[d] for d in obs.dims if d in da.coords})
        if any(obs.sizes[d] != da.sizes[d] for d in obs.dims):
            raise ParameterError(
                f"The 'observed' parameter of {owner} must have the shape of one decoder's "
                f"predictions {[da.sizes[d] for d in obs.dims]}. Got {list(obs.shape)} instead.")
        da = da.assign_coords(observed=obs)
    da = _select(da, "decoder", decoders, "decoders", owner)
    da = _select(da, "channel", channels, "channels", owner)
    bounds, events = [], []
    if "trial" in da.dims:
        da = _select(da, "trial", trials if trials is not None else
                     np.arange(min(5, da.sizes["trial"])), "trials", owner)
        da = da.transpose("decoder", "trial", "time", "channel")
        t = np.asarray(da["time"].values, dtype=np.float64)
        step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
        length = t[-1] - t[0] + 2 * step  # one empty bin between trials breaks the lines
        x = np.concatenate([t - t[0] + k * length for k in range(da.sizes["trial"])])
        bounds = [k * length - step for k in range(1, da.sizes["trial"])]
        pred = da.values.reshape(da.sizes["decoder"], -1, da.sizes["channel"])
        truth = da["observed"].transpose("trial", "time", "channel").values.reshape(
            -1, da.sizes["channel"])
        labels = da["trial"].values.tolist()
        shown = f"{labels[0]}" if len(labels) == 1 else f"{labels[0]}\u2013{labels[-1]}"
        if len(labels) > 1 and labels != list(range(labels[0], labels[0] + len(labels))):
            shown = ", ".join(map(str, labels))
        xlabel = f"Time (s), trial{'s' if len(labels) > 1 else ''} {shown} end to end"
        event = da.attrs.get("align_to")
        if event and t[0] <= 0 <= t[-1]:
            events = [-t[0] + k * length for k in range(da.sizes["trial"])]
            xlabel += f" (dashed: {event})"
        else:
            events = []
    else:
        da = da.transpose("decoder", "time", "channel")
        x = np.asarray(da["time"].values, dtype=np.float64)
        keep = np.ones(x.size, bool)
        if time_range is not None:
            keep = (x >= float(time_range[0])) & (x < float(time_range[1]))
            if not keep.any():
                raise ParameterError(
                    f"The 'time_range' parameter of {owner} selects no bin; times span "
                    f"{x.min():g} .. {x.max():g} s. Got {list(time_range)} instead.")
        x = x[keep]
        pred = da.values[:, keep]
        truth = da["observed"].transpose("time", "channel").values[keep]
        xlabel = time_label(da.attrs)
    x, (truth, *rest) = _break_gaps(x, [truth, *pred])
    pred = np.stack(rest) if rest else pred
    names = [str(d) for d in da["decoder"].values]
    chans = [str(c) for c in da["channel"].values]
    r2 = da["r2"] if "r2" in da.coords else None
    palette = group_colors(len(names), colors)
    axes = _panel_axes(ax, len(chans), owner, ncols=1, panel=(9.0, 2.1), sharex=True)
    factor, unit = _scaled_unit(da.attrs.get("unit"), truth)
    truth, pred = truth * factor, pred * factor
    behavior = da.attrs.get("behavior")
    for j, a in enumerate(axes):
        a.plot(x, truth[:, j], color=_OBSERVED, linewidth=1.6, label="observed")
        for i, name in enumerate(names):
            label = name
            if r2 is not None:
                value = r2.isel(decoder=i, channel=j) if "channel" in r2.dims else r2.isel(decoder=i)
                label = f"{name} (R\u00b2 {float(value):.2f})"
            a.plot(x, pred[i, :, j], color=palette[i], linewidth=1.1, alpha=0.9, label=label)
        for b in bounds:
            a.axvline(b, color="0.6", linestyle=":", linewidth=0.8, zorder=0)
        for e in events:
            a.axvline(e, color="0.75", linestyle="--", linewidth=0.8, zorder=0)
        label = chans[j] if not chans[j].lstrip("-").isdigit() else f"channel {chans[j]}"
        a.set_ylabel(f"{label} ({unit})" if unit else label)
        lo, hi = np.nanmin(truth[:, j]), np.nanmax(truth[:, j])
        if np.isfinite(lo) and hi > lo:  # predictions far outside the data are cut
            got = np.nanmin(pred[:, :, j]), np.nanmax(pred[:, :, j])
            span = hi - lo
            bottom = min(lo, max(got[0], lo - span))
            top = max(hi, min(got[1], hi + span))
            a.set_ylim(bottom - 0.05 * span, top + 0.05 * span)
        a.grid(alpha=0.3)
        a.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        if np.isfinite(x).any():
            a.set_xlim(np.nanmin(x), np.nanmax(x))
    axes[-1].set_xlabel(xlabel)
    for a in axes[:-1]:
        if a.get_shared_x_axes().joined(a, axes[-1]):
            a.tick_params(labelbottom=False)
    axes[0].set_title(f"{behavior}: held-out predictions" if behavior else
                      "Held-out predictions")
    return np.asarray(axes, dtype=object)


# ---------------------------------------------------------------------- scores
def _scores_frame(scores, owner: str) -> tuple[list[str], list[np.ndarray], np.ndarray, bool]:
    """Decoder names, each decoder's fold scores, the bar heights, whether they are pooled."""
    if isinstance(scores, xr.DataArray):
        if scores.dims not in (("decoder",), ("decoder", "fold"), ("fold", "decoder")):
            raise ParameterError(
                f"The 'scores' parameter of {owner} must have dims ('decoder',) or "
                f"('decoder', 'fold'). Got dims {scores.dims} instead.")
        names = [str(d) for d in scores["decoder"].values] if "decoder" in scores.coords \
            else [str(i) for i in range(scores.sizes["decoder"])]
        if "fold" in scores.dims:
            folds = [np.asarray(v, dtype=np.float64)
                     for v in scores.transpose("decoder", "fold").values]
        else:
            folds = [np.asarray([v], dtype=np.float64) for v in scores.values]
        if "pooled" in scores.coords and scores["pooled"].dims == ("decoder",):
            return names, folds, np.asarray(scores["pooled"].values, dtype=np.float64), True
        return names, folds, np.array([np.nanmean(f) for f in folds]), False
    if isinstance(scores, pd.Series):
        scores = scores.to_dict()
    if not isinstance(scores, Mapping) or not scores:
        raise ParameterError(
            f"The 'scores' parameter of {owner} must be a DataArray with dims ('decoder', "
            f"['fold']) or a non-empty dict of decoder -> score(s). Got "
            f"{type(scores).__name__} instead.")
    names = [str(k) for k in scores]
    folds = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in scores.values()]
    return names, folds, np.array([np.nanmean(f) for f in folds]), False


def plot_decoder_scores(scores, *, floor: float | None = -1.0, colors=None,
                        ax: Axes | None = None, ylabel: str = "Held-out R\u00b2",
                        title: str | None = "Decoders") -> Axes:
    """Held-out score per decoder: a bar each, the cross-validation folds as points.

    Parameters
    ----------
    scores : DataArray with dims ("decoder",) or ("decoder", "fold"), dict or Series
        Scores per decoder (and fold), e.g. the ``sequence_scores`` output of
        ``decode_sequence``. A coordinate ``pooled`` along ``decoder`` (the score of
        all held-out bins together) gives the bar heights; else the mean over folds.
        A dict maps decoder name -> a score or a list of fold scores.
    floor : float or None, default=-1.0
        Lowest value shown: bars and points below it (a badly negative R^2) stop at
        the floor, marked with a downward triangle, and their value is written.
        None shows everything.
    colors : sequence of colours, default=None
        One per decoder (tab10 when None).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.
    ylabel : str, default="Held-out R²"
    title : str or None, default="Decoders"

    Returns
    -------
    ax : matplotlib.axes.Axes
        One bar per decoder (``ax.patches``; the tick labels give the decoder and its
        score); the fold points are ``ax.collections[0]`` when there are several folds.
    """
    owner = "plot_decoder_scores"
    names, folds, heights, pooled = _scores_frame(scores, owner)
    if ax is None:
        ax = new_figure((1.2 + 0.9 * len(names), 3.6)).add_subplot()
    elif not isinstance(ax, Axes):
        raise ParameterError(f"The 'ax' parameter of {owner} must be a matplotlib Axes or "
                             f"None. Got {type(ax).__name__} instead.")
    palette = group_colors(len(names), colors)
    values = np.concatenate([heights, *folds])
    lo = float(np.nanmin(np.r_[values, 0.0]))
    hi = float(np.nanmax(np.r_[values, 0.0]))
    bottom = lo if floor is None or lo >= floor else float(floor)
    pos = np.arange(len(names))
    shown = np.maximum(heights, bottom) if floor is not None else heights
    ax.bar(pos, shown, width=0.6, color=palette, alpha=0.75, edgecolor="none")
    if any(f.size > 1 for f in folds):
        xs, ys = [], []
        for i, f in enumerate(folds):
            jitter = np.linspace(-0.15, 0.15, f.size) if f.size > 1 else np.zeros(1)
            xs.append(i + jitter)
            ys.append(np.maximum(f, bottom) if floor is not None else f)
        ax.scatter(np.concatenate(xs), np.concatenate(ys), s=14, color="0.15", zorder=3)
    span = max(hi - bottom, 1e-9)
    for i, h in enumerate(heights):
        if floor is not None and h < bottom:
            ax.plot(i, bottom, marker="v", color=palette[i], markersize=9, zorder=4,
                    clip_on=False)
    ax.axhline(0, color="0.3", linewidth=0.8)
    ax.set_xticks(pos, [f"{n}\n{h:.2f}" for n, h in zip(names, heights)], fontsize="small")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(bottom - 0.08 * span, hi + 0.08 * span)
    ax.set_ylabel(ylabel + (f" (cut at {bottom:g})" if floor is not None and lo < floor else ""))
    if ax.collections:
        n = max(f.size for f in folds)
        bar = "all held-out bins" if pooled else "mean of the folds"
        ax.set_xlabel(f"bar: {bar}\ndots: the {n} folds", fontsize="small")
    if title:
        ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return ax


# ---------------------------------------------------------------------- receptive fields
def plot_receptive_fields(fields, *, neurons=None, ncols: int | None = None,
                          scale: str = "each", label: str | None = "cell_type",
                          cmap: str = "RdBu_r", colorbar: bool = True,
                          ax: Sequence[Axes] | None = None) -> np.ndarray:
    """A grid of receptive fields, each on a colour scale symmetric about 0.

    Parameters
    ----------
    fields : DataArray of shape (neuron, y, x) or ndarray
        E.g. ``ConvEncodingModel.receptive_fields()`` (the first dim names the neurons,
        whatever it is called; multi-channel fields need one channel selected first).
    neurons : sequence, default=None
        Neurons to draw (labels or positions); all when None.
    ncols : int, default=None
        Columns of the grid; ``ceil(sqrt(n))`` (at most 8) when None.
    scale : {"each", "shared"}, default="each"
        ``"each"``: every panel spans ``[-m, m]`` with ``m`` its own largest ``|value|``
        (the shape of each field; no colorbar). ``"shared"``: one ``m`` for all panels,
        with a colorbar (compares strengths).
    label : str or None, default="cell_type"
        A coordinate along the neuron dim added to each panel's title when present.
    cmap : str, default="RdBu_r"
        A diverging colormap (0 in the middle).
    colorbar : bool, default=True
        With ``scale="shared"``, add a colorbar.
    ax : sequence of Axes, default=None
        One Axes per neuron; a new grid when None.

    Returns
    -------
    axes : ndarray of matplotlib.axes.Axes, shape (n_neurons,)
        Each holds one image (``ax.images[0]``).
    """
    owner = "plot_receptive_fields"
    if scale not in ("each", "shared"):
        raise ParameterError(f"The 'scale' parameter of {owner} must be 'each' or 'shared'. "
                             f"Got {scale!r} instead.")
    da = fields if isinstance(fields, xr.DataArray) else xr.DataArray(
        np.asarray(fields), dims=[f"dim_{i}" for i in range(np.ndim(fields))])
    if da.ndim == 4 and da.shape[1] == 1:
        da = da.isel({da.dims[1]: 0})
    if da.ndim != 3 or 0 in da.shape:
        raise ParameterError(
            f"The 'fields' parameter of {owner} must be a non-empty (neuron, y, x) array "
            f"(select one channel of multi-channel fields first). Got dims {da.dims} of "
            f"shape {da.shape} instead.")
    dim = da.dims[0]
    da = _select(da, dim, neurons, "neurons", owner)
    n = da.sizes[dim]
    ncols = int(ncols) if ncols is not None else min(8, math.ceil(math.sqrt(n)))
    axes = _panel_axes(ax, n, owner, ncols=max(1, min(ncols, n)), panel=(1.6, 1.7))
    values = np.asarray(da.values, dtype=np.float64)
    ydim, xdim = da.dims[1], da.dims[2]
    ys = np.asarray(da[ydim].values, np.float64) if ydim in da.coords else np.arange(da.shape[1])
    xs = np.asarray(da[xdim].values, np.float64) if xdim in da.coords else np.arange(da.shape[2])
    dy = ys[1] - ys[0] if ys.size > 1 else 1.0
    dx = xs[1] - xs[0] if xs.size > 1 else 1.0
    extent = (xs[0] - dx / 2, xs[-1] + dx / 2, ys[-1] + dy / 2, ys[0] - dy / 2)
    shared = float(np.nanmax(np.abs(values))) or 1.0
    ids = da[dim].values if dim in da.coords else np.arange(n)
    extra = da[label].values if label is not None and label in da.coords and \
        da[label].dims == (dim,) else None
    image = None
    for i, a in enumerate(axes):
        m = shared if scale == "shared" else (float(np.nanmax(np.abs(values[i]))) or 1.0)
        image = a.imshow(values[i], cmap=cmap, vmin=-m, vmax=m, extent=extent,
                         interpolation="nearest")
        a.set_xticks([])
        a.set_yticks([])
        title = f"{dim} {ids[i]}" if extra is None else f"{ids[i]}: {extra[i]}"
        a.set_title(title, fontsize="small")
    fig = axes[0].figure
    if scale == "shared" and colorbar:
        cb = fig.colorbar(image, ax=list(axes), shrink=0.8)
        cb.set_label(str(da.attrs.get("units", "value")), fontsize="small")
    elif fig.get_suptitle() == "":
        fig.suptitle("Receptive fields: red > 0 > blue,\neach panel scaled to its own "
                     "largest |value|" if scale == "each" else "Receptive fields",
                     fontsize="medium")
    return np.asarray(axes, dtype=object)


# ---------------------------------------------------------------------- tuning curves
def plot_tuning_curves(model, x, y, *, neurons=None, ncols: int | None = None,
                       n_points: int = 200, xlabel: str = "x", ylabel: str = "Response",
                       ax: Sequence[Axes] | None = None) -> np.ndarray:
    """Each neuron's responses and its fitted tuning curve, a grid of small panels.

    Parameters
    ----------
    model : ParametricRegressor
        Fitted on ``x`` (one feature) and responses ``(n_samples, n_neurons)``.
    x : array-like of shape (n_samples,)
        The stimulus or behavioural variable (e.g. direction in radians).
    y : array-like or DataArray of shape (n_samples, n_neurons)
        The responses the model was fitted to (or held-out ones).
    neurons : sequence, default=None
        Neurons to draw (ids of ``model.neuron_ids_`` or positions); all when None.
    ncols : int, default=None
        Columns of the grid; ``ceil(sqrt(n))`` (at most 6) when None.
    n_points : int, default=200
        Points of the fitted curve, evenly spaced over the range of ``x``.
    xlabel, ylabel : str, default="x", "Response"
    ax : sequence of Axes, default=None
        One Axes per neuron; a new grid when None.

    Returns
    -------
    axes : ndarray of matplotlib.axes.Axes, shape (n_neurons,)
        In each: the responses (``collections[0]``), the mean per distinct ``x`` with
        its standard error when ``x`` repeats (an errorbar container), and the fit
        (``lines[-1]``). Titles give the neuron and the fit's R^2 on ``y``.
    """
    owner = "plot_tuning_curves"
    if not hasattr(model, "param_values_") or not hasattr(model, "predict"):
        raise ParameterError(f"The 'model' parameter of {owner} must be a fitted "
                             f"ParametricRegressor. Got {type(model).__name__} instead.")
    if getattr(model, "n_features_in_", 1) != 1:
        raise ParameterError(f"{owner} draws tuning curves over one variable; the model "
                             f"was fitted on {model.n_features_in_} features.")
    xv = np.asarray(x.values if isinstance(x, xr.DataArray) else x, dtype=np.float64).ravel()
    Y = np.asarray(y.values if isinstance(y, xr.DataArray) else y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    n_all = len(model.neuron_ids_)
    if Y.shape != (xv.size, n_all):
        raise ParameterError(
            f"The 'y' parameter of {owner} must have shape (n_samples, n_neurons) = "
            f"({xv.size}, {n_all}). Got {Y.shape} instead.")
    ids = np.asarray(model.neuron_ids_)
    pos = np.arange(n_all)
    if neurons is not None:
        pos = _select(xr.DataArray(pos, dims="neuron", coords={"neuron": ids}), "neuron",
                      neurons, "neurons", owner).values
    grid = np.linspace(xv.min(), xv.max(), int(n_points))
    curve = np.asarray(model.predict(grid), dtype=np.float64).reshape(grid.size, -1)
    fitted = np.asarray(model.predict(xv), dtype=np.float64).reshape(xv.size, -1)
    values, inverse, counts = np.unique(xv, return_inverse=True, return_counts=True)
    repeated = counts.max() > 1
    n = len(pos)
    ncols = int(ncols) if ncols is not None else min(6, math.ceil(math.sqrt(n)))
    axes = _panel_axes(ax, n, owner, ncols=max(1, min(ncols, n)), panel=(2.3, 1.9),
                       sharex=True)
    for a, k in zip(axes, pos):
        a.scatter(xv, Y[:, k], s=6, color="0.6", alpha=0.5, linewidths=0, label="responses")
        if repeated:
            total = np.bincount(inverse, Y[:, k])
            mean = total / counts
            sq = np.bincount(inverse, (Y[:, k] - mean[inverse]) ** 2)
            sem = np.sqrt(sq / np.maximum(counts - 1, 1) / counts)
            a.errorbar(values, mean, yerr=sem, fmt="o", color=_OBSERVED, markersize=2.5,
                       elinewidth=0.8, label="mean \u00b1 s.e.m.")
        a.plot(grid, curve[:, k], color="C3", linewidth=1.6, label="fit")
        resid = ((Y[:, k] - fitted[:, k]) ** 2).sum()
        total_ss = ((Y[:, k] - Y[:, k].mean()) ** 2).sum()
        r2 = 1 - resid / total_ss if total_ss > 0 else float("nan")
        who = f"neuron {ids[k]}" if np.issubdtype(ids.dtype, np.integer) else str(ids[k])
        a.set_title(f"{who}: R\u00b2 {r2:.2f}", fontsize="small")
        a.tick_params(labelsize="small")
        a.grid(alpha=0.3)
    ncols_used = max(1, min(ncols, n))
    for i, a in enumerate(axes):
        if i % ncols_used == 0:
            a.set_ylabel(ylabel, fontsize="small")
        if i + ncols_used >= n:  # no panel below this one
            a.set_xlabel(xlabel, fontsize="small")
            a.tick_params(labelbottom=True)
        else:
            a.tick_params(labelbottom=False)
    axes[0].legend(frameon=False, fontsize="x-small", loc="best")
    return np.asarray(axes, dtype=object)
