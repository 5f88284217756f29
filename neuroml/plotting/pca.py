"""Figures for PCA: explained variance, and condition-averaged latent trajectories."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ..errors import ParameterError
from ._common import get_axes, group_colors, group_trials

__all__ = ["plot_explained_variance", "plot_trajectories"]


def plot_explained_variance(pca_or_ratios, *, n_components: int | None = None,
                            cumulative: bool = True, threshold: float | None = None,
                            ax: Axes | None = None, color=None) -> Axes:
    """Bar chart of the variance explained by each component, with the cumulative sum.

    Parameters
    ----------
    pca_or_ratios : PCA or array-like of shape (n_components,)
        A fitted estimator with ``explained_variance_ratio_`` (``neuroml.PCA``,
        scikit-learn's PCA ...) or the ratios themselves (fractions in [0, 1]).
    n_components : int, default=None
        Show only the first ``n_components``; all when None.
    cumulative : bool, default=True
        Draw the cumulative explained variance as a line with markers.
    threshold : float, default=None
        A fraction in (0, 1] drawn as a dashed horizontal line (e.g. 0.9).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure is made when None.
    color : color, default=None
        Colour of the bars (the first colour of the cycle when None).

    Returns
    -------
    ax : matplotlib.axes.Axes
        One bar per component (``ax.patches``), the cumulative line (``ax.lines``).
    """
    ratios = getattr(pca_or_ratios, "explained_variance_ratio_", pca_or_ratios)
    ratios = np.asarray(ratios, dtype=np.float64).ravel()
    if ratios.size == 0 or not np.all(np.isfinite(ratios)) or np.any(ratios < 0):
        raise ParameterError(
            "plot_explained_variance needs a fitted PCA or non-negative, finite explained "
            f"variance ratios. Got {ratios[:5].tolist()}{' ...' if ratios.size > 5 else ''}."
        )
    if n_components is not None:
        ratios = ratios[: int(n_components)]
    ax = get_axes(ax, figsize=(5.5, 3.8), owner="plot_explained_variance")
    x = np.arange(1, ratios.size + 1)
    ax.bar(x, ratios, color=color or "C0", alpha=0.8, label="Per component")
    top = max(float(ratios.max()), 1e-12)
    if cumulative:
        cum = np.cumsum(ratios)
        ax.plot(x, cum, color="C3", marker="o", markersize=3.5 if x.size <= 40 else 0,
                linewidth=1.5, label="Cumulative")
        top = max(top, float(cum[-1]))
    if threshold is not None:
        ax.axhline(threshold, color="0.4", linestyle="--", linewidth=1,
                   label=f"{threshold:.0%} of variance")
        top = max(top, float(threshold))
    ax.set_ylim(0, min(1.0, top * 1.08) if top <= 1.0 else top * 1.08)
    ax.set_xlim(0.4, ratios.size + 0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlabel("Principal component")
    ax.set_ylabel("Explained variance")
    ax.set_title("Explained variance")
    ax.legend(frameon=False, loc="center right")
    ax.grid(axis="y", alpha=0.3)
    return ax


def _component_label(dim: str, coord) -> str:
    if dim == "component":
        try:
            return f"PC{int(coord) + 1}"
        except (TypeError, ValueError):
            return str(coord)
    try:
        return f"{dim.capitalize()} {int(coord) + 1}"
    except (TypeError, ValueError):
        return f"{dim} {coord}"


def plot_trajectories(latents: xr.DataArray, *, by: str | None = "condition",
                      dims: Sequence[int] = (0, 1), ax: Axes | None = None, colors=None,
                      cmap: str | None = None, linewidth: float = 1.8,
                      start_marker: str | None = "o", end_marker: str | None = None,
                      event_time: float | None = 0.0, legend: bool = True) -> Axes:
    """Condition-averaged trajectories in a 2-D or 3-D latent space.

    Trials are averaged per value of the trial coordinate ``by`` and each condition's
    mean trajectory over ``time`` is drawn in its own colour, with a marker where it
    starts (the first time bin) and, optionally, where it ends and at the alignment
    event.

    Parameters
    ----------
    latents : xarray.DataArray, dims ("trial", "time", feature) or ("time", feature)
        E.g. ``PCA(3).fit_transform(rec.epochs(...))``: the feature dimension (the
        last one, ``component`` or ``latent``) holds the latent coordinates; the
        ``trial`` dimension carries the trial table's columns as coordinates.
    by : str or None, default="condition"
        Trial coordinate to group by; None averages all trials into one trajectory.
    dims : sequence of 2 or 3 int, default=(0, 1)
        Positions along the feature dimension to plot; three give a 3-D plot.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into (3-D Axes for three ``dims``); a new figure when None.
    colors : sequence of colors, default=None
        One colour per condition (tab10, or ``cmap`` for more than 10, when None).
    cmap : str, default=None
        Colormap name for the conditions (e.g. ``"twilight"`` for reach directions).
    linewidth : float, default=1.8
    start_marker, end_marker : str or None, default="o", None
        Matplotlib markers at the first and last time bins (None: no marker).
    event_time : float or None, default=0.0
        Time (in the ``time`` coordinate) marked with a small black dot on each
        trajectory at the nearest time bin, e.g. the alignment event (named after
        ``latents.attrs["align_to"]`` in the legend); skipped when outside the time range.
    legend : bool, default=True
        A legend of the conditions (titled ``by``) and the markers.

    Returns
    -------
    ax : matplotlib.axes.Axes (3-D Axes for three ``dims``)
        One line per condition in ``ax.lines``.
    """
    owner = "plot_trajectories"
    if not isinstance(latents, xr.DataArray) or latents.ndim not in (2, 3) or \
            "time" not in latents.dims or latents.dims[-1] in ("trial", "time"):
        dims_got = latents.dims if isinstance(latents, xr.DataArray) else type(latents).__name__
        raise ParameterError(
            f"The 'latents' parameter of {owner} must be a DataArray with dims "
            f"('trial', 'time', 'component') or ('time', 'component'). Got {dims_got} instead."
        )
    if latents.ndim == 3 and latents.dims[:2] != ("trial", "time"):
        latents = latents.transpose("trial", "time", latents.dims[-1])
    feature = latents.dims[-1]
    dims = [int(d) for d in dims]
    n_feat = latents.sizes[feature]
    if len(dims) not in (2, 3) or any(d < 0 or d >= n_feat for d in dims):
        raise ParameterError(
            f"The 'dims' parameter of {owner} must be 2 or 3 positions in "
            f"[0, {n_feat - 1}] along '{feature}'. Got {tuple(dims)} instead."
        )
    three_d = len(dims) == 3
    ax = get_axes(ax, figsize=(6.5, 5.0) if three_d else (5.5, 4.5),
                  projection="3d" if three_d else None, owner=owner)

    if latents.ndim == 2:
        groups = [(None, latents)]
    else:
        groups = group_trials(latents, by, owner)
    palette = group_colors(len(groups), colors, cmap)
    times = latents["time"].values
    event_idx = None
    if event_time is not None and times.size and times.min() <= event_time <= times.max():
        event_idx = int(np.argmin(np.abs(times - event_time)))
    handles = []
    for (label, sub), color in zip(groups, palette):
        mean = sub.mean("trial") if "trial" in sub.dims else sub
        xyz = mean.isel({feature: dims}).transpose("time", feature).values
        name = "all trials" if label is None else str(label)
        (line,) = ax.plot(*xyz.T, color=color, linewidth=linewidth, label=name)
        handles.append(line)
        if start_marker:
            ax.plot(*xyz[:1].T, marker=start_marker, color=color, markersize=6,
                    markeredgecolor="white", markeredgewidth=0.8, linestyle="none")
        if end_marker:
            ax.plot(*xyz[-1:].T, marker=end_marker, color=color, markersize=6,
                    markeredgecolor="white", markeredgewidth=0.8, linestyle="none")
        if event_idx is not None:
            ax.plot(*xyz[event_idx:event_idx + 1].T, marker="o", color="black",
                    markersize=3, linestyle="none")
    coords = latents[feature].values
    labels = [_component_label(feature, coords[d]) for d in dims]
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    if three_d:
        ax.set_zlabel(labels[2], labelpad=10)
        ax.tick_params(labelsize="small")
    title = "Trajectories" + (f" by {by}" if by is not None and latents.ndim == 3 else "")
    ax.set_title(title)
    if legend:
        extra = []
        if start_marker:
            extra.append(Line2D([], [], marker=start_marker, color="0.3", linestyle="none",
                                label=f"start ({times[0]:g} s)"))
        if end_marker:
            extra.append(Line2D([], [], marker=end_marker, color="0.3", linestyle="none",
                                label=f"end ({times[-1]:g} s)"))
        if event_idx is not None:
            event = latents.attrs.get("align_to", "t")
            extra.append(Line2D([], [], marker="o", color="black", markersize=3,
                                linestyle="none",
                                label=f"{event} = {event_time:g} s" if event == "t"
                                else f"{event} ({event_time:g} s)"))
        show = handles if len(handles) <= 12 else handles[:12]
        ax.legend(handles=show + extra, title=by if len(groups) > 1 else None,
                  frameon=False, fontsize="small", loc="upper left",
                  bbox_to_anchor=(1.02, 1.0) if not three_d else (1.15, 1.0))
    if not three_d:
        ax.grid(alpha=0.3)
    return ax
