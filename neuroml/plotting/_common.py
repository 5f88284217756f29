"""Shared plumbing of the plotting functions: figures without pyplot, colours, labels.

Figures are ``matplotlib.figure.Figure`` objects with an Agg canvas attached, made
without :mod:`matplotlib.pyplot`, so plotting never touches pyplot's global state
(current figure, figure manager, interactive backends) and ``fig.savefig`` works
headless. Nothing here closes a figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import ParameterError

__all__ = ["new_figure", "get_axes", "group_colors", "time_label", "require_dims"]


def new_figure(figsize: tuple[float, float] | None = None) -> Figure:
    """A new Figure with constrained layout and an Agg canvas (no pyplot involved)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def get_axes(ax: Axes | None = None, *, figsize: tuple[float, float] | None = None,
             projection: str | None = None, owner: str = "plot") -> Axes:
    """``ax`` itself, or the Axes of a new figure when ``ax`` is None.

    Parameters
    ----------
    ax : matplotlib.axes.Axes or None
    figsize : (float, float), default=None
        Size of a new figure in inches.
    projection : str, default=None
        ``"3d"`` for a 3-D Axes; a given ``ax`` must then be 3-D too.
    owner : str
        The calling function, named in error messages.
    """
    if ax is None:
        return new_figure(figsize).add_subplot(projection=projection)
    if not isinstance(ax, Axes):
        raise ParameterError(
            f"The 'ax' parameter of {owner} must be a matplotlib Axes or None. "
            f"Got {type(ax).__name__} instead."
        )
    if projection == "3d" and getattr(ax, "name", None) != "3d":
        raise ParameterError(
            f"{owner} draws in 3-D: the 'ax' parameter must be a 3-D Axes "
            "(fig.add_subplot(projection='3d')). Got a 2-D Axes instead."
        )
    return ax


def group_colors(n: int, colors=None, cmap: str | None = None) -> list:
    """``n`` distinct colours: ``colors`` if given, tab10 up to 10, else a colormap."""
    if colors is not None:
        colors = list(colors)
        if len(colors) < n:
            raise ParameterError(
                f"The 'colors' parameter needs one colour per group ({n}). "
                f"Got {len(colors)} instead."
            )
        return colors[:n]
    from matplotlib import colormaps

    if cmap is None and n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    cm = colormaps[cmap or "viridis"]
    return [cm(x) for x in np.linspace(0.0, 0.95 if cmap is None else 1.0, max(n, 1))][:n]


def time_label(attrs: dict | None, dim: str = "time") -> str:
    """``"Time from <event> (s)"`` when the data were aligned to an event, else ``"Time (s)"``."""
    align = (attrs or {}).get("align_to")
    word = "Time" if dim == "time" else dim.replace("_", " ").capitalize()
    return f"{word} from {align} (s)" if align else f"{word} (s)"


def require_dims(da, required: Sequence[str], owner: str, name: str,
                 optional: Sequence[str] = ()) -> xr.DataArray:
    """Check that ``da`` is a DataArray with ``required`` dims (plus ``optional`` ones)."""
    if not isinstance(da, xr.DataArray):
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be an xarray DataArray with dims "
            f"{tuple(required)}. Got {type(da).__name__} instead."
        )
    missing = [d for d in required if d not in da.dims]
    extra = [d for d in da.dims if d not in required and d not in optional]
    if missing or extra:
        allowed = tuple(required) + tuple(f"[{d}]" for d in optional)
        raise ParameterError(
            f"The '{name}' parameter of {owner} must have dims {allowed}. "
            f"Got dims {da.dims} instead."
        )
    return da


def group_trials(da: xr.DataArray, by: str | None, owner: str):
    """``[(label, sub-DataArray), ...]`` over the ``trial`` dim, by a trial coordinate."""
    if by is None:
        return [(None, da)]
    if by not in da.coords or da[by].dims != ("trial",):
        trial_coords = [c for c in da.coords if da[c].dims == ("trial",) and c != "trial"]
        raise ParameterError(
            f"The 'by' parameter of {owner} must be a trial coordinate of the data. "
            f"Got {by!r}; trial coordinates: {trial_coords}."
        )
    values = da[by].values
    labels = list(dict.fromkeys(values.tolist()))
    try:
        labels = sorted(labels)
    except TypeError:
        pass
    return [(lab, da.isel(trial=np.flatnonzero(values == lab))) for lab in labels]


def mark_event(ax: Axes, times: np.ndarray, at: float = 0.0) -> None:
    """A dotted vertical line at the alignment event when it lies in the time range."""
    if times.size and times.min() <= at <= times.max():
        ax.axvline(at, color="0.5", linestyle=":", linewidth=1, zorder=0)
