"""Figures for network training: loss curves from an estimator's ``history_``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from ..errors import NotFittedError, ParameterError
from ._common import get_axes

__all__ = ["plot_training_curves"]


def plot_training_curves(history, *, terms: Sequence[str] | None = None,
                         log: bool | str = "auto", best: bool = True,
                         ax: Axes | None = None) -> Axes:
    """Training and validation loss per epoch (solid: training, dashed: validation).

    Parameters
    ----------
    history : pandas.DataFrame or estimator
        A ``history_`` table (columns ``epoch``, ``train_loss``, ``val_loss`` and
        optionally ``train_<term>`` / ``val_<term>`` pairs such as ``train_kl``), or a
        fitted network estimator that has ``history_``. ``val_loss`` may be all NaN
        (no validation set): only the training curve is drawn then.
    terms : sequence of str, default=None
        Extra loss terms to draw besides the total loss (``"kl"`` for the
        ``train_kl`` / ``val_kl`` columns); all terms in the table when None, none
        for ``()``. Each term gets its own colour.
    log : bool or "auto", default="auto"
        Logarithmic y-axis; ``"auto"`` uses one when every value drawn is positive
        and they span more than two decades.
    best : bool, default=True
        Mark the epoch with the lowest validation loss (training loss without
        validation) with a dotted vertical line.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.

    Returns
    -------
    ax : matplotlib.axes.Axes
        One line per curve in ``ax.lines`` (plus the best-epoch line).
    """
    owner = "plot_training_curves"
    if not isinstance(history, pd.DataFrame):
        if hasattr(history, "get_params") and not hasattr(history, "history_"):
            raise NotFittedError(
                f"{owner} got a {type(history).__name__} without 'history_': it is not fitted "
                "or is not a network estimator trained by neuroml.training.Trainer."
            )
        history = getattr(history, "history_", history)
    if not isinstance(history, pd.DataFrame) or "train_loss" not in history.columns:
        got = list(history.columns) if isinstance(history, pd.DataFrame) else type(history).__name__
        raise ParameterError(
            f"The 'history' parameter of {owner} must be a history_ DataFrame with "
            f"'epoch', 'train_loss' and 'val_loss' columns, or an estimator with history_. "
            f"Got {got} instead."
        )
    if len(history) == 0:
        raise ParameterError(f"The 'history' parameter of {owner} has no epochs.")
    epochs = (history["epoch"].to_numpy() if "epoch" in history.columns
              else np.arange(1, len(history) + 1))
    available = [c[len("train_"):] for c in history.columns
                 if c.startswith("train_") and c != "train_loss"]
    if terms is None:
        terms = available
    unknown = [t for t in terms if t not in available]
    if unknown:
        raise ParameterError(
            f"The 'terms' parameter of {owner} names {unknown}, which the history does not "
            f"have; available terms: {available}."
        )
    ax = get_axes(ax, figsize=(5.5, 3.8), owner=owner)
    drawn = []
    for i, term in enumerate(["loss", *terms]):
        color = f"C{i}"
        name = "loss" if term == "loss" else term
        for split, style in (("train", "-"), ("val", "--")):
            col = f"{split}_{term}"
            if col not in history.columns:
                continue
            y = history[col].to_numpy(dtype=np.float64)
            if not np.isfinite(y).any():
                continue
            label = f"{'training' if split == 'train' else 'validation'} {name}"
            ax.plot(epochs, y, color=color, linestyle=style, linewidth=1.6,
                    marker="o" if len(epochs) <= 30 else None, markersize=3, label=label)
            drawn.append(y[np.isfinite(y)])
    values = np.concatenate(drawn)
    if log == "auto":
        log = bool(np.all(values > 0) and values.max() / values.min() > 100)
    if log:
        ax.set_yscale("log")
    if best:
        val = history["val_loss"].to_numpy(dtype=np.float64) if "val_loss" in history else None
        monitored = val if val is not None and np.isfinite(val).any() else \
            history["train_loss"].to_numpy(dtype=np.float64)
        i_best = int(np.nanargmin(monitored))
        ax.axvline(epochs[i_best], color="0.4", linestyle=":", linewidth=1,
                   label=f"best epoch ({epochs[i_best]})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss" + (" (log scale)" if log else ""))
    ax.set_title("Training curves")
    ax.legend(frameon=False, fontsize="small")
    ax.grid(alpha=0.3)
    return ax
