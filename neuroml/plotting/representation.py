"""Figures for representation learning: latent spaces, latent traversals, ELBO terms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..errors import NotFittedError, ParameterError
from ._common import get_axes, group_colors, new_figure

__all__ = ["plot_latents", "plot_traversal", "plot_elbo_terms"]

#: Most distinct labels drawn with a legend of discrete colours.
_MAX_LEGEND = 12


def _latent_values(latents, owner: str) -> tuple[np.ndarray, tuple[int, ...], list[str]]:
    """(n_points, n_latents) values, the leading (sample) shape, and axis labels."""
    if isinstance(latents, xr.DataArray):
        feature = latents.dims[-1]
        coords = latents[feature].values if feature in latents.coords else \
            np.arange(latents.sizes[feature])
        labels = [f"{feature.capitalize()} {c}" for c in coords]
        values = np.asarray(latents.values)
    else:
        if hasattr(latents, "detach"):  # a tensor, on any device (torch imported only then)
            from ..device import to_numpy

            latents = to_numpy(latents)
        values = np.asarray(latents)
        labels = [f"Latent {i}" for i in range(values.shape[-1])] if values.ndim else []
    if values.ndim not in (2, 3) or values.dtype.kind not in "biuf":
        raise ParameterError(
            f"The 'latents' parameter of {owner} must be numeric with shape (n_samples, "
            f"n_latents) or (trial, time, n_latents). Got shape {values.shape} instead."
        )
    lead = values.shape[:-1]
    return values.reshape(-1, values.shape[-1]).astype(np.float64), lead, labels


def _color_values(latents, color_by, lead: tuple[int, ...], owner: str):
    """Per-point values to colour by, and a label for the legend / colorbar."""
    if color_by is None:
        return None, None
    name = None
    if isinstance(color_by, str):
        if not isinstance(latents, xr.DataArray) or color_by not in latents.coords:
            coords = [c for c in latents.coords if c != latents.dims[-1]] \
                if isinstance(latents, xr.DataArray) else []
            raise ParameterError(
                f"The 'color_by' parameter of {owner} names {color_by!r}, which is not a "
                f"coordinate of the latents; coordinates: {coords}. Pass an array instead."
            )
        name = color_by
        coord = latents[color_by]
        sample_dims = latents.dims[:-1]
        if any(d not in sample_dims for d in coord.dims):
            raise ParameterError(
                f"The 'color_by' coordinate {color_by!r} of {owner} runs along {coord.dims}; "
                f"it must run along the sample dims {sample_dims}."
            )
        values = coord.broadcast_like(latents.isel({latents.dims[-1]: 0}, drop=True))
        values = np.asarray(values.transpose(*sample_dims).values)
    else:
        if isinstance(color_by, xr.DataArray):
            name = color_by.name
        values = np.asarray(color_by.values if isinstance(color_by, xr.DataArray) else color_by)
    if values.shape == lead:
        pass
    elif len(lead) == 2 and values.shape == lead[:1]:
        values = np.repeat(values[:, None], lead[1], axis=1)  # one value per trial
    else:
        raise ParameterError(
            f"The 'color_by' values of {owner} have shape {values.shape}; expected one per "
            f"point {lead}" + (f" or one per trial ({lead[0]},)" if len(lead) == 2 else "") + "."
        )
    return values.ravel(), name


def _colorbar_label(latents, name: str) -> str:
    if name == "time" and isinstance(latents, xr.DataArray):
        align = latents.attrs.get("align_to")
        return f"Time from {align} (s)" if align else "Time (s)"
    return name


def plot_latents(latents, *, color_by=None, dims: Sequence[int] = (0, 1),
                 ax: Axes | None = None, discrete: bool | None = None,
                 cmap: str | None = None, colors=None, size: float | None = None,
                 alpha: float | None = None, legend: bool = True) -> Axes:
    """Points of a latent space (2-D or 3-D), coloured by a behavioural variable.

    Parameters
    ----------
    latents : DataArray or array-like, shape (n_samples, n_latents) or (trial, time, n_latents)
        E.g. ``VAE(...).fit(X).transform(X)``. Every time bin of every trial is a point.
    color_by : str, array-like or None, default=None
        A coordinate of ``latents`` (``"condition"``, ``"direction"``, ``"time"`` ...)
        or values per point (the latents' sample shape) or per trial ``(trial,)``.
        None draws every point in one colour.
    dims : sequence of 2 or 3 int, default=(0, 1)
        Latent indices on the axes; three give a 3-D plot.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into (a 3-D Axes for three ``dims``); a new figure when None.
    discrete : bool, default=None
        Colour by category (one colour per value, with a legend) or by a continuous
        colormap (with a colorbar). None: discrete for integer, bool and string
        values, continuous for floats.
    cmap : str, default=None
        Colormap; "viridis" for continuous values, tab10 (or a sampled colormap for
        more than 10 categories) for discrete ones. Use "twilight" for angles.
    colors : sequence of colors, default=None
        One colour per category (discrete only).
    size : float, default=None
        Marker area in points²; from the number of points when None.
    alpha : float, default=None
        Marker opacity; from the number of points when None.
    legend : bool, default=True
        Legend of the categories, or a colorbar for continuous values.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The scatter is ``ax.collections[0]``.
    """
    owner = "plot_latents"
    values, lead, labels = _latent_values(latents, owner)
    dims = [int(d) for d in dims]
    k = values.shape[1]
    if len(dims) not in (2, 3) or len(set(dims)) != len(dims) or any(not 0 <= d < k for d in dims):
        raise ParameterError(
            f"The 'dims' parameter of {owner} must be 2 or 3 distinct latent indices in "
            f"[0, {k - 1}]. Got {tuple(dims)} instead."
        )
    three_d = len(dims) == 3
    ax = get_axes(ax, figsize=(6.0, 5.0) if three_d else (5.5, 4.5),
                  projection="3d" if three_d else None, owner=owner)
    cvals, cname = _color_values(latents, color_by, lead, owner)
    n = values.shape[0]
    size = size if size is not None else float(np.clip(300.0 / np.sqrt(max(n, 1)), 2.0, 30.0))
    alpha = alpha if alpha is not None else float(np.clip(25.0 / np.sqrt(max(n, 1)), 0.4, 0.9))
    extra = {"depthshade": False} if three_d else {}
    xyz = values[:, dims].T
    if cvals is None:
        ax.scatter(*xyz, s=size, alpha=alpha, color=colors[0] if colors else "C0",
                   linewidths=0, **extra)
    else:
        if discrete is None:
            discrete = cvals.dtype.kind in "biuOSU"
        if discrete:
            cats = list(dict.fromkeys(cvals.tolist()))
            try:
                cats = sorted(cats)
            except TypeError:
                pass
            palette = group_colors(len(cats), colors, cmap)
            index = {c: i for i, c in enumerate(cats)}
            rgba = np.asarray([palette[index[v]] for v in cvals.tolist()], dtype=object)
            order = np.random.default_rng(0).permutation(n)  # no category drawn on top
            ax.scatter(*xyz[:, order], s=size, alpha=alpha, c=list(rgba[order]), linewidths=0,
                       **extra)
            if legend:
                handles = [Line2D([], [], marker="o", linestyle="none", color=palette[i],
                                  label=str(c)) for i, c in enumerate(cats[:_MAX_LEGEND])]
                if len(cats) > _MAX_LEGEND:
                    handles.append(Line2D([], [], linestyle="none",
                                          label=f"... {len(cats) - _MAX_LEGEND} more"))
                if three_d:  # inside the box: a 3-D Axes' outside is not laid out
                    ax.legend(handles=handles, title=cname, frameon=False, fontsize="small",
                              loc="upper left", ncols=1 + len(handles) // 10)
                else:
                    ax.legend(handles=handles, title=cname, frameon=False, fontsize="small",
                              loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            c = cvals.astype(np.float64)
            finite = c[np.isfinite(c)]
            if finite.size == 0:
                raise ParameterError(f"The 'color_by' values of {owner} are all NaN.")
            sc = ax.scatter(*xyz, s=size, alpha=alpha, c=c, cmap=cmap or "viridis",
                            norm=Normalize(finite.min(), finite.max()), linewidths=0, **extra)
            if legend:
                cb = ax.figure.colorbar(sc, ax=ax, shrink=0.8, pad=0.12 if three_d else 0.02)
                cb.solids.set_alpha(1.0)
                if cname:
                    cb.set_label(_colorbar_label(latents, cname))
    ax.set_xlabel(labels[dims[0]])
    ax.set_ylabel(labels[dims[1]])
    if three_d:
        ax.set_zlabel(labels[dims[2]], labelpad=8)
        ax.tick_params(labelsize="small")
    else:
        ax.grid(alpha=0.3)
    ax.set_title("Latent space" + (f" by {cname}" if cname else ""))
    return ax


def _axes_list(ax, n: int, owner: str, figsize) -> list[Axes]:
    """``n`` Axes: from a new figure (one row), or the given Axes / sequence of Axes."""
    if ax is None:
        fig = new_figure(figsize)
        return list(np.atleast_1d(fig.subplots(1, n, squeeze=False)[0]))
    axes = [ax] if isinstance(ax, Axes) else list(ax) if isinstance(ax, Sequence | np.ndarray) \
        else None
    if axes is None or len(axes) != n or not all(isinstance(a, Axes) for a in axes):
        raise ParameterError(
            f"The 'ax' parameter of {owner} must be None or {n} matplotlib Axes (one per "
            f"panel). Got {ax!r} instead."
        )
    return axes


def plot_traversal(traversal: xr.DataArray, *, features=None, center: bool = True,
                   sort: bool = False, cmap: str | None = None,
                   ax: Axes | Sequence[Axes] | None = None) -> np.ndarray:
    """Grid of decoded outputs along each traversed latent axis.

    One panel per traversed latent: the decoded output of every feature (rows) at each
    traversal value (columns), as an image sharing one colour scale.

    Parameters
    ----------
    traversal : xarray.DataArray, dims ("dim", "value", feature)
        The output of :func:`neuroml.representation.latent_traversal`.
    features : array-like, default=None
        Labels (or positions) of the features to show; all when None.
    center : bool, default=True
        Show each feature's change from its mean over the traversal values (a diverging
        colormap centred on 0), so small and large outputs are comparable; the raw
        outputs when False.
    sort : bool, default=False
        Order the rows of each panel by the traversal value at which the feature peaks.
    cmap : str, default=None
        "RdBu_r" when ``center`` else "viridis".
    ax : Axes or sequence of Axes, default=None
        One Axes per traversed latent; a new figure (one row of panels) when None.

    Returns
    -------
    axes : ndarray of matplotlib.axes.Axes
        One per traversed latent; each has one image (``ax.images[0]``).
    """
    owner = "plot_traversal"
    if not isinstance(traversal, xr.DataArray) or traversal.ndim != 3 or \
            traversal.dims[:2] != ("dim", "value"):
        got = traversal.dims if isinstance(traversal, xr.DataArray) else type(traversal).__name__
        raise ParameterError(
            f"The 'traversal' parameter of {owner} must be the DataArray returned by "
            f"latent_traversal, with dims ('dim', 'value', feature). Got {got} instead."
        )
    feature = traversal.dims[2]
    if features is not None:
        wanted = np.asarray(features).ravel()
        if feature in traversal.coords and np.isin(wanted, traversal[feature].values).all():
            traversal = traversal.sel({feature: wanted})
        else:
            try:
                traversal = traversal.isel({feature: wanted.astype(int)})
            except (IndexError, ValueError):
                raise ParameterError(
                    f"The 'features' parameter of {owner} must list labels or positions "
                    f"along '{feature}'. Got {wanted[:10].tolist()} instead."
                ) from None
    data = np.asarray(traversal.values, dtype=np.float64)
    if center:
        data = data - data.mean(axis=1, keepdims=True)
    n_dims, n_values, n_feat = data.shape
    axes = _axes_list(ax, n_dims, owner, (min(3.2 * n_dims + 1.2, 16.0), 4.0))
    lim = float(np.nanmax(np.abs(data))) if center else None
    vmin, vmax = (-lim, lim) if center else (float(np.nanmin(data)), float(np.nanmax(data)))
    if vmin == vmax:
        vmin, vmax = vmin - 1.0, vmax + 1.0
    values = traversal["value"].values
    edges = np.r_[values[0] - (values[1] - values[0]) / 2 if n_values > 1 else values[0] - 0.5,
                  (values[:-1] + values[1:]) / 2,
                  values[-1] + (values[-1] - values[-2]) / 2 if n_values > 1 else values[0] + 0.5]
    labels = traversal[feature].values if feature in traversal.coords else np.arange(n_feat)
    image = None
    for i, a in enumerate(axes):
        panel = data[i].T  # (feature, value)
        rows = np.argsort(np.argmax(panel, axis=1), kind="stable") if sort else np.arange(n_feat)
        image = a.pcolormesh(edges, np.arange(n_feat + 1), panel[rows], cmap=cmap or
                             ("RdBu_r" if center else "viridis"), vmin=vmin, vmax=vmax,
                             shading="flat", rasterized=True)
        a.set_ylim(n_feat, 0)
        a.set_xlabel("Offset (latent s.d.)")
        a.set_title(f"Latent {traversal['dim'].values[i]}")
        if n_feat <= 20:  # each panel's own labels when sorted (orders differ)
            a.set_yticks(np.arange(n_feat) + 0.5, [str(v) for v in labels[rows]],
                         fontsize="small")
        elif sort:
            a.set_yticks([])
        else:
            a.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        if i == 0:
            a.set_ylabel(feature.capitalize() + (" (sorted by peak)" if sort else ""))
        elif not sort:
            a.tick_params(labelleft=False)
    fig = axes[0].figure
    cb = fig.colorbar(image, ax=list(axes), shrink=0.85, pad=0.02)
    cb.set_label("Change from mean output" if center else "Decoded output")
    return np.asarray(axes, dtype=object)


def plot_elbo_terms(history, *, ax: Sequence[Axes] | None = None) -> np.ndarray:
    """The two terms of a VAE's loss per epoch: reconstruction and KL divergence.

    Left: the expected negative log-likelihood ``E_q[-log p(x | z)]``; right:
    ``KL(q(z | x) || p(z))`` (nats per sample; solid: training, dashed: validation).
    The ELBO is minus their sum. The total loss is drawn by
    :func:`neuroml.plotting.plot_training_curves`.

    Parameters
    ----------
    history : pandas.DataFrame or fitted VAE
        A ``history_`` with ``train_recon``, ``train_kl`` (and ``val_recon``,
        ``val_kl`` when there was a validation set), or an estimator that has one.
    ax : sequence of 2 Axes, default=None
        Axes for the two panels; a new figure when None.

    Returns
    -------
    axes : ndarray of 2 matplotlib.axes.Axes
        Reconstruction panel, then KL panel; one line per curve in ``ax.lines``.
    """
    owner = "plot_elbo_terms"
    if not isinstance(history, pd.DataFrame):
        if hasattr(history, "get_params") and not hasattr(history, "history_"):
            raise NotFittedError(f"{owner} got an unfitted {type(history).__name__}; fit it first.")
        history = getattr(history, "history_", history)
    needed = ("train_recon", "train_kl")
    if not isinstance(history, pd.DataFrame) or any(c not in history.columns for c in needed):
        got = list(history.columns) if isinstance(history, pd.DataFrame) else type(history).__name__
        raise ParameterError(
            f"The 'history' parameter of {owner} must be a VAE's history_ with columns "
            f"{needed} (and 'val_recon', 'val_kl'). Got {got} instead."
        )
    if len(history) == 0:
        raise ParameterError(f"The 'history' parameter of {owner} has no epochs.")
    axes = _axes_list(ax, 2, owner, (9.0, 3.6))
    epochs = history["epoch"].to_numpy() if "epoch" in history.columns else \
        np.arange(1, len(history) + 1)
    titles = {"recon": "Reconstruction  E[-log p(x|z)]", "kl": "KL(q(z|x) || p(z))"}
    for a, (term, color) in zip(axes, (("recon", "C0"), ("kl", "C3"))):
        for split, style in (("train", "-"), ("val", "--")):
            col = f"{split}_{term}"
            if col not in history.columns:
                continue
            y = history[col].to_numpy(dtype=np.float64)
            if not np.isfinite(y).any():
                continue
            a.plot(epochs, y, color=color, linestyle=style, linewidth=1.6,
                   marker="o" if len(epochs) <= 30 else None, markersize=3,
                   label="training" if split == "train" else "validation")
        a.set_title(titles[term])
        a.set_xlabel("Epoch")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.grid(alpha=0.3)
        a.legend(frameon=False, fontsize="small")
    axes[0].set_ylabel("nats per sample")
    return np.asarray(axes, dtype=object)
