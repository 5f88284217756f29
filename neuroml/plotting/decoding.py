"""Figures for decoding: scores over time, temporal generalization, confusion matrices."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.transforms import blended_transform_factory

from ..errors import ParameterError
from ._common import get_axes, mark_event, require_dims, time_label

__all__ = ["plot_decoding_over_time", "plot_temporal_generalization", "plot_confusion_matrix"]


def _score_label(da: xr.DataArray, default: str = "Decoding score") -> str:
    for key in ("scoring", "metric"):
        if da.attrs.get(key):
            return str(da.attrs[key]).replace("_", " ").capitalize()
    return default if not da.name or da.name in ("score", "scores") else str(da.name)


def _bin_edges(centres: np.ndarray) -> np.ndarray:
    """Edges around bin centres (half a step beyond the first and last)."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[:-1] + c[1:]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def plot_decoding_over_time(scores: xr.DataArray, *, chance: float | None = None,
                            pvalues=None, alpha: float = 0.05, ax: Axes | None = None,
                            color=None, label: str | None = None,
                            ylabel: str | None = None) -> Axes:
    """Decoding score over time: mean across folds with a ± s.e.m. band.

    Parameters
    ----------
    scores : xarray.DataArray, dims ("time",) or ("fold", "time") in any order
        Scores per time bin (seconds), optionally per cross-validation fold. With a
        ``fold`` dim the mean across folds is drawn with a shaded band of ± one
        standard error of the mean (``std(ddof=1) / sqrt(n_folds)``). ``attrs``
        ``align_to`` and ``scoring`` (or ``metric``) label the axes.
    chance : float, default=None
        Chance level, drawn as a dashed horizontal line.
    pvalues : array-like or DataArray of shape (n_times,), default=None
        One p-value per time bin (e.g. from a permutation test); bins with
        ``p <= alpha`` (the exact level of a permutation test) are marked by a bar
        along the bottom of the axes.
    alpha : float, default=0.05
        Significance level for ``pvalues``.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.
    color : color, default=None
        Line colour (the first colour of the cycle when None).
    label : str, default=None
        Legend label of the score line.
    ylabel : str, default=None
        Y-axis label; from ``scores.attrs["scoring"]`` or ``"Decoding score"`` when None.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The score line is ``ax.lines[0]``; the band (with folds) is a collection.
    """
    owner = "plot_decoding_over_time"
    scores = require_dims(scores, ["time"], owner, "scores", optional=["fold"])
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ParameterError(f"The 'alpha' parameter of {owner} must be in (0, 1). Got {alpha!r}.")
    ax = get_axes(ax, figsize=(6.0, 3.8), owner=owner)
    times = np.asarray(scores["time"].values, dtype=np.float64)
    color = color or "C0"
    if "fold" in scores.dims and scores.sizes["fold"] > 1:
        n = scores.sizes["fold"]
        mean = scores.mean("fold").values
        sem = scores.std("fold", ddof=1).values / np.sqrt(n)
        ax.plot(times, mean, color=color, linewidth=1.8,
                label=label or f"mean ± s.e.m. ({n} folds)")
        ax.fill_between(times, mean - sem, mean + sem, color=color, alpha=0.25, linewidth=0)
    else:
        mean = scores.squeeze("fold").values if "fold" in scores.dims else scores.values
        ax.plot(times, mean, color=color, linewidth=1.8, label=label or "score")
    if chance is not None:
        ax.axhline(chance, color="0.3", linestyle="--", linewidth=1, label=f"chance ({chance:g})")
    mark_event(ax, times)
    if pvalues is not None:
        p = np.asarray(pvalues.values if isinstance(pvalues, xr.DataArray) else pvalues,
                       dtype=np.float64).ravel()
        if p.size != times.size:
            raise ParameterError(
                f"The 'pvalues' parameter of {owner} needs one p-value per time bin "
                f"({times.size}). Got {p.size} instead."
            )
        sig = p <= alpha
        if sig.any():
            edges = _bin_edges(times)
            trans = blended_transform_factory(ax.transData, ax.transAxes)
            starts = np.flatnonzero(sig & ~np.concatenate([[False], sig[:-1]]))
            stops = np.flatnonzero(sig & ~np.concatenate([sig[1:], [False]]))
            for i, (a, b) in enumerate(zip(starts, stops)):
                ax.plot([edges[a], edges[b + 1]], [0.03, 0.03], transform=trans, color="k",
                        linewidth=3, solid_capstyle="butt",
                        label=f"p ≤ {alpha:g}" if i == 0 else None)
    if times.size > 1:
        ax.set_xlim(times.min(), times.max())
    ax.set_xlabel(time_label(scores.attrs))
    ax.set_ylabel(ylabel or _score_label(scores))
    ax.set_title("Decoding over time")
    ax.legend(frameon=False, fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    return ax


def plot_temporal_generalization(matrix: xr.DataArray, *, chance: float | None = None,
                                 ax: Axes | None = None, cmap: str = "RdBu_r",
                                 vlim: float | None = None, colorbar: bool = True,
                                 diagonal: bool = True, label: str | None = None) -> Axes:
    """Temporal generalization matrix: train time (y) x test time (x).

    Parameters
    ----------
    matrix : xarray.DataArray, dims ("train_time", "test_time"), optional "fold"
        Scores of a decoder trained at each ``train_time`` and tested at each
        ``test_time`` (seconds); a ``fold`` dim is averaged.
    chance : float, default=None
        Centre of the diverging colormap (e.g. 0.5 for accuracy on two balanced
        classes); ``matrix.attrs["chance"]`` when None. Without any chance level the
        map is sequential (viridis), not centred.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.
    cmap : str, default="RdBu_r"
        Diverging colormap used when a chance level is known.
    vlim : float, default=None
        Half-range of the colour scale around chance; the largest ``|score - chance|``
        when None.
    colorbar : bool, default=True
        Add a colorbar (its own Axes, next to ``ax``).
    diagonal : bool, default=True
        Draw the train = test diagonal.
    label : str, default=None
        Colorbar label; from ``attrs["scoring"]`` or ``"Decoding score"`` when None.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The matrix is ``ax.images[0]``.
    """
    owner = "plot_temporal_generalization"
    matrix = require_dims(matrix, ["train_time", "test_time"], owner, "matrix",
                          optional=["fold"])
    if "fold" in matrix.dims:
        matrix = matrix.mean("fold", keep_attrs=True)
    matrix = matrix.transpose("train_time", "test_time")
    ax = get_axes(ax, figsize=(5.4, 4.6), owner=owner)
    values = np.asarray(matrix.values, dtype=np.float64)
    train = np.asarray(matrix["train_time"].values, dtype=np.float64)
    test = np.asarray(matrix["test_time"].values, dtype=np.float64)
    te, tr = _bin_edges(test), _bin_edges(train)
    chance = matrix.attrs.get("chance") if chance is None else chance
    if chance is not None:
        if vlim is not None:
            norm = Normalize(vmin=chance - float(vlim), vmax=chance + float(vlim))
        else:
            # Centred on chance but spanning only the data, so an accuracy scale never
            # shows impossible values (e.g. negative accuracies below a low chance level).
            eps = 1e-9 * max(1.0, abs(chance))
            lo = min(float(np.nanmin(values)), chance - eps)
            hi = max(float(np.nanmax(values)), chance + eps)
            norm = TwoSlopeNorm(vcenter=chance, vmin=lo, vmax=hi)
        colormap = cmap
    else:
        norm, colormap = None, "viridis"
    im = ax.imshow(values, origin="lower", aspect="auto", cmap=colormap, norm=norm,
                   extent=(te[0], te[-1], tr[0], tr[-1]), interpolation="nearest")
    if diagonal:
        lo, hi = max(te[0], tr[0]), min(te[-1], tr[-1])
        if lo < hi:
            ax.plot([lo, hi], [lo, hi], color="k", linestyle="--", linewidth=0.8)
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.9)
        cb.set_label(label or _score_label(matrix))
        if chance is not None:
            cb.ax.axhline(chance, color="k", linewidth=0.8)
    ax.set_xlabel(time_label(matrix.attrs, "test_time").replace("Test time", "Testing time"))
    ax.set_ylabel(time_label(matrix.attrs, "train_time").replace("Train time", "Training time"))
    ax.set_title("Temporal generalization")
    return ax


def plot_confusion_matrix(confusion, *, labels=None, normalize: bool | str = True,
                          ax: Axes | None = None, cmap: str = "Blues",
                          colorbar: bool = True, annotate: bool | None = None) -> Axes:
    """Confusion matrix: true class (rows) x predicted class (columns).

    Parameters
    ----------
    confusion : array-like or DataArray of shape (n_classes, n_classes)
        Counts (or proportions), rows the true class and columns the predicted one,
        as :func:`sklearn.metrics.confusion_matrix` returns. A DataArray's
        coordinates label the classes.
    labels : sequence, default=None
        Class names; the DataArray's coordinates or ``0 .. n - 1`` when None.
    normalize : bool or {"true", "pred", "all"}, default=True
        True or ``"true"`` divides each row by its sum (recall per class, rows sum to
        1); ``"pred"`` divides each column; ``"all"`` the whole matrix; False shows
        the values as given.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.
    cmap : str, default="Blues"
    colorbar : bool, default=True
    annotate : bool, default=None
        Write each cell's value; by default when there are at most 15 classes.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The matrix is ``ax.images[0]``; the cell values are ``ax.texts``.
    """
    owner = "plot_confusion_matrix"
    if isinstance(confusion, xr.DataArray):
        if confusion.ndim != 2:
            raise ParameterError(
                f"The 'confusion' parameter of {owner} must be 2-D (true, predicted). "
                f"Got dims {confusion.dims} instead."
            )
        if labels is None:
            labels = confusion[confusion.dims[0]].values if confusion.dims[0] in confusion.coords else None
        values = np.asarray(confusion.values, dtype=np.float64)
    else:
        values = np.asarray(confusion, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] == 0:
        raise ParameterError(
            f"The 'confusion' parameter of {owner} must be a square (n_classes, n_classes) "
            f"matrix. Got shape {values.shape} instead."
        )
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"The 'confusion' parameter of {owner} contains NaN or infinity.")
    n = values.shape[0]
    labels = list(range(n)) if labels is None else list(labels)
    if len(labels) != n:
        raise ParameterError(
            f"The 'labels' parameter of {owner} needs {n} class names. Got {len(labels)}."
        )
    if normalize not in (True, False, "true", "pred", "all"):
        raise ParameterError(
            f"The 'normalize' parameter of {owner} must be True, False, 'true', 'pred' or "
            f"'all'. Got {normalize!r} instead."
        )
    shown = values
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize in (True, "true"):
            shown = values / values.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            shown = values / values.sum(axis=0, keepdims=True)
        elif normalize == "all":
            shown = values / values.sum()
    shown = np.nan_to_num(shown)
    ax = get_axes(ax, figsize=(4.8 + 0.15 * n, 4.0 + 0.15 * n), owner=owner)
    vmax = 1.0 if normalize else max(float(shown.max()), 1e-12)
    im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    if annotate is None:
        annotate = n <= 15
    if annotate:
        threshold = vmax / 2
        integer = not normalize and np.allclose(shown, np.round(shown))
        for i in range(n):
            for j in range(n):
                text = f"{shown[i, j]:.0f}" if integer else f"{shown[i, j]:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize="small",
                        color="white" if shown[i, j] > threshold else "black")
    ax.set_xticks(range(n), [str(lab) for lab in labels],
                  rotation=45 if max(len(str(lab)) for lab in labels) > 3 else 0,
                  ha="right" if max(len(str(lab)) for lab in labels) > 3 else "center")
    ax.set_yticks(range(n), [str(lab) for lab in labels])
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title("Confusion matrix" + (" (normalized)" if normalize else ""))
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label({True: "Fraction of true class", "true": "Fraction of true class",
                      "pred": "Fraction of predicted class", "all": "Fraction of trials"}
                     .get(normalize, "Count"))
    return ax
