"""Figures for reinforcement-learning models: RPEs, choices, dopamine reversal points.

- :func:`plot_rpe_heatmap`: a TD model's RPE over trials x time (the RPE moving from
  the reward to the cue over learning).
- :func:`plot_choice_probability`: a choice model's P(choice) over trials with the
  choices, rewards and reward-probability blocks.
- :func:`plot_reversal_points`: reversal point against asymmetry (Dabney et al. 2020).
- :func:`plot_reward_distribution`: a decoded reward distribution against the true one.
- :func:`plot_parameter_recovery`: true against fitted parameters of simulated agents.
- :func:`plot_rpe_response`: a neural signal around the outcome, by RPE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from ..errors import ParameterError
from ._common import get_axes, new_figure, require_dims, time_label

__all__ = ["plot_rpe_heatmap", "plot_choice_probability", "plot_reversal_points",
           "plot_reward_distribution", "plot_parameter_recovery", "plot_rpe_response"]


def _edges(centres: np.ndarray) -> np.ndarray:
    c = np.asarray(centres, dtype=np.float64)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[:-1] + c[1:]) / 2
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def plot_rpe_heatmap(rpe, *, events: dict | None = None, ax: Axes | None = None,
                     cmap: str = "RdBu_r", vlim: float | None = None, colorbar: bool = True,
                     title: str = "Reward-prediction error over learning") -> Axes:
    """Reward-prediction error over trials (rows) x time (columns).

    Parameters
    ----------
    rpe : xarray.DataArray of shape (trial, time), ndarray, or a fitted TDModel
        ``TDModel.rpe_`` (or the model itself). With integer ``time`` coordinates the
        axis is labelled in bins, with float ones in seconds.
    events : dict of str to float, default=None
        Times to mark with a dashed vertical line and a label, e.g.
        ``{"cue": 5, "reward": 20}`` (in the units of ``time``).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure when None.
    cmap : str, default="RdBu_r"
        Diverging colormap, centred at 0.
    vlim : float, default=None
        The colour scale spans ``[-vlim, vlim]``; ``max |rpe|`` when None.
    colorbar : bool, default=True
    title : str, default="Reward-prediction error over learning"

    Returns
    -------
    ax : matplotlib.axes.Axes
        The map is ``ax.images[0]``; trial 0 is the top row.
    """
    owner = "plot_rpe_heatmap"
    rpe = getattr(rpe, "rpe_", rpe)
    if not isinstance(rpe, xr.DataArray):
        arr = np.asarray(rpe, dtype=np.float64)
        if arr.ndim != 2:
            raise ParameterError(f"The 'rpe' parameter of {owner} must be (trial, time). Got "
                                 f"shape {arr.shape} instead.")
        rpe = xr.DataArray(arr, dims=("trial", "time"))
    rpe = require_dims(rpe, ["trial", "time"], owner, "rpe").transpose("trial", "time")
    values = np.asarray(rpe.values, dtype=np.float64)
    times = np.asarray(rpe["time"].values if "time" in rpe.coords else np.arange(values.shape[1]))
    trials = np.asarray(rpe["trial"].values if "trial" in rpe.coords
                        else np.arange(values.shape[0]))
    ax = get_axes(ax, figsize=(6.0, 4.2), owner=owner)
    lim = float(vlim) if vlim is not None else max(float(np.nanmax(np.abs(values))), 1e-12)
    te = _edges(times.astype(np.float64))
    tr = _edges(np.arange(values.shape[0], dtype=np.float64))
    im = ax.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest",
                   norm=TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim),
                   extent=(te[0], te[-1], tr[-1], tr[0]))
    if trials.dtype.kind in "iu" and values.shape[0] > 1:
        ticks = ax.get_yticks()
        ticks = ticks[(ticks >= 0) & (ticks < values.shape[0])]
        ax.set_yticks(ticks, [str(trials[int(t)]) for t in ticks])
    for name, t in (events or {}).items():
        # faint, so that the event's own column (often the strongest) stays readable
        ax.axvline(float(t), color="k", linestyle="--", linewidth=0.7, alpha=0.3)
        ax.annotate(str(name), (float(t), 1.0), xycoords=("data", "axes fraction"),
                    xytext=(0, 2), textcoords="offset points", fontsize="small", ha="center")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.9).set_label("RPE \u03b4(t)")
    is_bins = times.dtype.kind in "iu"
    ax.set_xlabel("Time bin" if is_bins else time_label(rpe.attrs))
    ax.set_ylabel("Trial")
    ax.set_title(title, pad=16 if events else 6)
    return ax


def _reward_shares(trials: pd.DataFrame, reward_probabilities) -> np.ndarray | None:
    if reward_probabilities is None:
        cols = sorted(c for c in trials.columns if str(c).startswith("p_reward_"))
        if not cols:
            cols = [c for c in ("reward_probabilityL", "reward_probabilityR")
                    if c in trials.columns]
        if len(cols) < 2:
            return None
        reward_probabilities = trials[cols].to_numpy(dtype=np.float64)
    p = np.asarray(reward_probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != len(trials):
        raise ParameterError("The 'reward_probabilities' parameter of plot_choice_probability "
                             f"must be (n_trials, n_options) with n_trials={len(trials)}. Got "
                             f"shape {p.shape} instead.")
    return p


def plot_choice_probability(trials: pd.DataFrame, *, proba=None, option: int = 1,
                            reward_probabilities=None, smooth: int | None = 10,
                            labels=None, ax: Axes | None = None) -> Axes:
    """A choice model's P(option) over trials, with the choices, rewards and blocks.

    Choices of ``option`` are ticks above the plot, other choices ticks below (long and
    dark when rewarded, short and light when not); trials without a response are
    marked at the bottom. With reward probabilities, the share of ``option``'s
    probability (``p[option] / sum(p)``, the matching-law target) is drawn as a step
    line and each block change as a faint vertical line.

    Parameters
    ----------
    trials : DataFrame, one row per trial
        Columns ``choice`` (int, negative: no response) and ``reward``, e.g.
        ``QLearning.values(...)`` or :func:`~neuroml.rl.choice_data.choices_from_trials`.
        ``p_<option>`` columns give the model's probabilities when ``proba`` is None;
        ``p_reward_<k>`` (``QLearning.simulate``) or ``reward_probabilityL``/``R`` (AIND)
        columns the reward probabilities.
    proba : array-like of shape (n_trials, n_options) or (n_trials,), default=None
        The model's choice probabilities (``QLearning.predict_proba``), or P(option).
    option : int, default=1
        The option whose probability is drawn.
    reward_probabilities : array-like of shape (n_trials, n_options), default=None
        Reward probability of each option on each trial; from the columns when None.
    smooth : int, default=10
        Also draw the fraction of answered trials choosing ``option`` in a centred
        running window of this many trials; None: not drawn.
    labels : sequence of str, default=None
        Option names (e.g. ``("left", "right")``).
    ax : matplotlib.axes.Axes, default=None

    Returns
    -------
    ax : matplotlib.axes.Axes
        ``ax.lines[0]`` is the model's probability (when given); the choice ticks are
        ``LineCollection`` objects in ``ax.collections``.
    """
    owner = "plot_choice_probability"
    if not isinstance(trials, pd.DataFrame) or not {"choice", "reward"} <= set(trials.columns):
        raise ParameterError(f"The 'trials' parameter of {owner} must be a DataFrame with "
                             "'choice' and 'reward' columns.")
    choice = trials["choice"].to_numpy(dtype=np.float64)
    reward = trials["reward"].to_numpy(dtype=np.float64)
    n = choice.size
    x = np.arange(n)
    name = str(labels[option]) if labels is not None else f"option {option}"
    if proba is None and f"p_{option}" in trials.columns:
        proba = trials[f"p_{option}"].to_numpy(dtype=np.float64)
    ax = get_axes(ax, figsize=(10.0, 3.6), owner=owner)
    if proba is not None:
        p = np.asarray(proba, dtype=np.float64)
        p = p[:, option] if p.ndim == 2 else p
        if p.shape != (n,):
            raise ParameterError(f"The 'proba' parameter of {owner} needs one row per trial "
                                 f"({n}). Got shape {np.shape(proba)} instead.")
        ax.plot(x, p, color="C0", linewidth=1.5, label=f"model P({name})")
    answered = choice >= 0
    if smooth:
        k = np.ones(int(smooth))
        num = np.convolve(np.where(answered, choice == option, 0.0), k, "same")
        den = np.convolve(answered.astype(float), k, "same")
        with np.errstate(invalid="ignore", divide="ignore"):
            ax.plot(x, num / den, color="C1", linewidth=1, alpha=0.9,
                    label=f"choices of {name} ({int(smooth)}-trial mean)")
    shares = _reward_shares(trials, reward_probabilities)
    if shares is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            share = shares[:, option] / shares.sum(1)
        ax.step(x, share, where="mid", color="0.25", linestyle="--", linewidth=1.2,
                label=f"reward-probability share of {name}")
        for b in np.flatnonzero(np.any(np.diff(shares, axis=0) != 0, axis=1)) + 0.5:
            ax.axvline(b, color="0.6", linewidth=0.6, alpha=0.6, zorder=0)
    hit, other, rew = answered & (choice == option), answered & (choice != option), reward > 0
    for sel, base, sign in ((hit, 1.03, 1), (other, -0.03, -1)):
        for mask, length, color in ((sel & rew, 0.12, "k"), (sel & ~rew, 0.06, "0.6")):
            if mask.any():
                ax.vlines(x[mask], base, base + sign * length, color=color, linewidth=0.8)
    if (~answered).any():
        ax.plot(x[~answered], np.full(int((~answered).sum()), -0.22), "|", color="C3",
                markersize=5, label="no response")
    ax.vlines([], 0, 0, color="k", linewidth=0.8, label="rewarded choice (long tick)")
    ax.vlines([], 0, 0, color="0.6", linewidth=0.8, label="unrewarded choice (short tick)")
    ax.set_ylim(-0.27, 1.2)
    ax.set_yticks([0, 0.5, 1])
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("Trial")
    ax.set_ylabel(f"P({name})")
    others = (str(labels[1 - option]) if labels is not None and len(labels) == 2 and
              option in (0, 1) else "the other options")
    ax.set_title(f"Choices of {name} above, of {others} below")
    ax.legend(frameon=False, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_reversal_points(result: pd.DataFrame, *, split: int = 0, distribution=None,
                         ax: Axes | None = None, color=None) -> Axes:
    """Reversal point against asymmetry ``tau`` across cells, with their correlation.

    Parameters
    ----------
    result : DataFrame
        The output of :func:`~neuroml.rl.reversal.reversal_point_analysis`. Cells with
        a finite ``tau`` in [0, 1] are drawn (as :func:`reversal_correlation` uses).
    split : int, default=0
        The split drawn when ``result`` holds several (its mean ``r`` over splits is
        given in the legend too).
    distribution : (values, probabilities), default=None
        A reward distribution whose expectiles are drawn as a curve against ``tau``
        (distributional TD's prediction for the reversal points).
    ax : matplotlib.axes.Axes, default=None
    color : color, default=None

    Returns
    -------
    ax : matplotlib.axes.Axes
        The cells are ``ax.collections[0]``; ``r`` (Pearson, on the utility axis as in
        the paper; :func:`reversal_correlation`) is in the title.
    """
    from ..rl.distributional import expectiles
    from ..rl.reversal import reversal_correlation

    owner = "plot_reversal_points"
    need = {"reversal_point", "reversal_utility", "tau"}
    if not isinstance(result, pd.DataFrame) or not need <= set(result.columns):
        raise ParameterError(f"The 'result' parameter of {owner} must be the DataFrame of "
                             f"reversal_point_analysis (columns {sorted(need)}).")
    try:
        corr = reversal_correlation(result)
    except ParameterError:  # no split has 3 usable cells: the cells are drawn, r is NaN
        keys = (result.index.get_level_values("split").unique()
                if isinstance(result.index, pd.MultiIndex) else [0])
        corr = pd.DataFrame({"r": np.nan, "p_value": np.nan, "n_cells": 0},
                            index=pd.Index(keys, name="split"))
    part = result
    if isinstance(result.index, pd.MultiIndex):
        if split not in corr.index:
            raise ParameterError(f"The 'split' parameter of {owner} must be one of the splits "
                                 f"0..{len(corr) - 1}. Got {split!r} instead.")
        part = result.xs(split, level="split")
    tau = part["tau"].to_numpy(np.float64)
    rp = part["reversal_point"].to_numpy(np.float64)
    ok = np.isfinite(tau) & np.isfinite(rp) & (tau >= 0) & (tau <= 1)
    ax = get_axes(ax, figsize=(4.8, 4.2), owner=owner)
    ax.scatter(tau[ok], rp[ok], s=22, color=color or "C0", edgecolor="k", linewidth=0.4,
               label=f"cells (n = {int(ok.sum())})", zorder=3)
    if ok.sum() >= 2 and np.ptp(tau[ok]) > 0:
        slope, icpt = np.polyfit(tau[ok], rp[ok], 1)
        xs = np.array([tau[ok].min(), tau[ok].max()])
        ax.plot(xs, icpt + slope * xs, color=color or "C0", linewidth=1.2, label="least squares")
    if distribution is not None:
        grid = np.linspace(0.02, 0.98, 97)
        ax.plot(grid, expectiles(distribution[0], distribution[1], grid), color="0.3",
                linestyle="--", linewidth=1.2, label="expectiles of the rewards")
    row = corr.loc[split] if split in corr.index else corr.iloc[0]
    if len(corr) > 1:
        ax.plot([], [], " ", label=f"mean r over {len(corr)} splits: {corr['r'].mean():.2f}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("Asymmetry \u03c4 = s+ / (s+ + s\u2212)")
    ax.set_ylabel("Reversal point (reward units)")
    ax.set_title(f"r = {row['r']:.2f}, p = {row['p_value']:.2g}")
    ax.legend(frameon=False, fontsize="small", loc="upper left")
    ax.grid(alpha=0.3)
    return ax


def _smoothed(points, weights, grid, h):
    z = (grid[:, None] - points[None, :]) / h
    return (np.exp(-0.5 * z**2) * weights[None, :]).sum(1) / (h * np.sqrt(2 * np.pi))


def plot_reward_distribution(samples, *, values=None, probabilities=None,
                             bandwidth: float | None = None, ax: Axes | None = None,
                             color=None) -> Axes:
    """A decoded reward distribution (smoothed samples) against the true one.

    Both are drawn as densities smoothed with the same Gaussian kernel, so their shapes
    compare directly; the true distribution's values are also marked along the bottom.

    Parameters
    ----------
    samples : array-like of shape (n_samples,)
        Decoded samples, e.g. from :func:`~neuroml.rl.imputation.decode_reward_distribution`.
    values : array-like of shape (n_values,), default=None
        The true distribution: its values (reward magnitudes), or samples of it.
    probabilities : array-like of shape (n_values,), default=None
        Probabilities of ``values``; equal weights when None.
    bandwidth : float, default=None
        Kernel standard deviation; Silverman's rule on ``samples`` when None.
    ax : matplotlib.axes.Axes, default=None
    color : color, default=None

    Returns
    -------
    ax : matplotlib.axes.Axes
        ``ax.lines[0]`` is the decoded density, ``ax.lines[1]`` the true one.
    """
    owner = "plot_reward_distribution"
    z = np.asarray(samples, dtype=np.float64).ravel()
    if z.size < 2 or not np.all(np.isfinite(z)):
        raise ParameterError(f"The 'samples' parameter of {owner} must hold at least 2 finite "
                             "values.")
    h = bandwidth or 1.06 * max(float(np.std(z)), 1e-12) * z.size ** -0.2
    lo, hi = float(z.min()), float(z.max())
    v = w = None
    if values is not None:
        v = np.asarray(values, dtype=np.float64).ravel()
        w = np.full(v.size, 1 / v.size) if probabilities is None else \
            np.asarray(probabilities, dtype=np.float64).ravel() / np.sum(probabilities)
        if w.shape != v.shape:
            raise ParameterError(f"The 'probabilities' parameter of {owner} needs one entry "
                                 f"per value ({v.size}). Got {w.size} instead.")
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    grid = np.linspace(lo - 3 * h, hi + 3 * h, 400)
    ax = get_axes(ax, figsize=(5.5, 3.6), owner=owner)
    dens = _smoothed(z, np.full(z.size, 1 / z.size), grid, h)
    ax.plot(grid, dens, color=color or "C0", linewidth=1.8, label="decoded")
    ax.fill_between(grid, dens, color=color or "C0", alpha=0.2, linewidth=0)
    if v is not None:
        ax.plot(grid, _smoothed(v, w, grid, h), color="0.2", linestyle="--", linewidth=1.5,
                label="true (same smoothing)")
        ax.plot(v, np.zeros(v.size), "|", color="0.2", markersize=10, label="true values")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("Reward")
    ax.set_ylabel("Density")
    ax.set_title("Reward distribution")
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_parameter_recovery(true, fitted, *, parameters=None, log=("beta",),
                            axes=None) -> np.ndarray:
    """True against fitted parameters of simulated agents, one panel per parameter.

    Parameters
    ----------
    true : DataFrame or dict of array-like
        The parameters the agents were simulated with, a column per parameter.
    fitted : DataFrame
        The fitted parameters (e.g. ``QLearning.params_``), one row per agent in the
        same order (or with the same index) as ``true``.
    parameters : sequence of str, default=None
        Parameters to draw; those in both tables when None.
    log : sequence of str, default=("beta",)
        Parameters drawn on log axes, their ``r`` computed on the logs.
    axes : array-like of Axes, default=None
        One Axes per parameter; a new figure with a row of panels when None.

    Returns
    -------
    axes : ndarray of Axes, shape (n_parameters,)
        Each with the agents (``ax.collections[0]``), the identity line (``ax.lines[0]``)
        and ``r`` (Pearson) in its title.
    """
    owner = "plot_parameter_recovery"
    true = pd.DataFrame(true)
    fitted = pd.DataFrame(fitted)
    if len(true) != len(fitted):
        raise ParameterError(f"{owner}: 'true' has {len(true)} agents but 'fitted' has "
                             f"{len(fitted)}.")
    if not true.index.equals(fitted.index) and set(true.index) == set(fitted.index):
        fitted = fitted.loc[true.index]
    names = list(parameters) if parameters is not None else \
        [c for c in true.columns if c in fitted.columns]
    missing = [p for p in names if p not in true.columns or p not in fitted.columns]
    if not names or missing:
        raise ParameterError(f"{owner}: parameters {missing or names} are not columns of both "
                             f"tables (true: {list(true.columns)}, fitted: "
                             f"{list(fitted.columns)}).")
    if axes is None:
        fig = new_figure((3.3 * len(names), 3.4))
        axes = np.atleast_1d(fig.subplots(1, len(names), squeeze=False)[0])
    axes = np.asarray(axes, dtype=object).ravel()
    if axes.size < len(names):
        raise ParameterError(f"The 'axes' parameter of {owner} needs {len(names)} Axes. Got "
                             f"{axes.size} instead.")
    for ax, name in zip(axes, names):
        t = true[name].to_numpy(np.float64)
        f = fitted[name].to_numpy(np.float64)
        is_log = name in log
        ok = np.isfinite(t) & np.isfinite(f) & ((t > 0) & (f > 0) if is_log else True)
        a, b = (np.log(t[ok]), np.log(f[ok])) if is_log else (t[ok], f[ok])
        r = float(np.corrcoef(a, b)[0, 1]) if ok.sum() > 2 and np.ptp(a) and np.ptp(b) else np.nan
        lo, hi = min(t[ok].min(), f[ok].min()), max(t[ok].max(), f[ok].max())
        ax.plot([lo, hi], [lo, hi], color="0.4", linestyle="--", linewidth=1, label="identity")
        ax.scatter(t[ok], f[ok], s=12, alpha=0.7, color="C0", edgecolor="none")
        if is_log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"fitted {name}")
        ax.set_title(f"{name}: r{' (log)' if is_log else ''} = {r:.2f}, n = {int(ok.sum())}")
        ax.grid(alpha=0.3)
    return axes[: len(names)]


def plot_rpe_response(signal, rpe, *, n_groups: int = 3, ax: Axes | None = None,
                      ylabel: str | None = None) -> Axes:
    """Mean signal around the outcome for trials grouped by their RPE (quantiles).

    Parameters
    ----------
    signal : xarray.DataArray of shape (trial, time) or (trial, time, unit|channel)
        Aligned to the outcome (e.g. ``Recording.epochs``); a third dim is averaged.
    rpe : array-like of shape (n_trials,) or str
        One RPE per trial, or the name of a trial coordinate of ``signal``; NaN trials
        are left out.
    n_groups : int, default=3
        Trials are split at the RPE's quantiles into this many groups.
    ax : matplotlib.axes.Axes, default=None
    ylabel : str, default=None
        Y-axis label; the signal's name (and ``attrs["units"]``) when None.

    Returns
    -------
    ax : matplotlib.axes.Axes
        One line per group in ``ax.lines`` (most negative RPE first), each with a
        +- s.e.m. band.
    """
    owner = "plot_rpe_response"
    signal = require_dims(signal, ["trial", "time"], owner, "signal",
                          optional=[d for d in signal.dims if d not in ("trial", "time")][:1]
                          if isinstance(signal, xr.DataArray) else ())
    x = np.asarray(signal[rpe].values if isinstance(rpe, str) else rpe, dtype=np.float64)
    extra = [d for d in signal.dims if d not in ("trial", "time")]
    y = signal.mean(extra) if extra else signal
    y = np.asarray(y.transpose("trial", "time").values, dtype=np.float64)
    if x.shape != (y.shape[0],):
        raise ParameterError(f"The 'rpe' parameter of {owner} needs one value per trial "
                             f"({y.shape[0]}). Got shape {x.shape} instead.")
    ok = np.isfinite(x)
    if ok.sum() < n_groups:
        raise ParameterError(f"{owner}: only {int(ok.sum())} trials have a finite RPE.")
    edges = np.quantile(x[ok], np.linspace(0, 1, int(n_groups) + 1))
    group = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_groups - 1)
    times = np.asarray(signal["time"].values, dtype=np.float64)
    from matplotlib import colormaps

    cmap = colormaps["coolwarm"]
    ax = get_axes(ax, figsize=(5.5, 3.8), owner=owner)
    for g in range(int(n_groups)):
        rows = y[ok & (group == g)]
        m = np.nanmean(rows, 0)
        se = np.nanstd(rows, 0, ddof=1) / np.sqrt(max(rows.shape[0], 1)) if rows.shape[0] > 1 \
            else np.zeros_like(m)
        u = g / max(n_groups - 1, 1)
        c = tuple(np.asarray(cmap(u)[:3]) * (0.5 + 0.5 * abs(2 * u - 1)))  # darker middle
        ax.plot(times, m, color=c, linewidth=1.6,
                label=f"RPE {edges[g]:.2f} to {edges[g + 1]:.2f} ({rows.shape[0]} trials)")
        ax.fill_between(times, m - se, m + se, color=c, alpha=0.25, linewidth=0)
    if times.min() <= 0 <= times.max():
        ax.axvline(0, color="0.5", linestyle=":", linewidth=1, zorder=0)
    unit = signal.attrs.get("units") or signal.attrs.get("scale")
    ax.set_xlabel(time_label(signal.attrs))
    ax.set_ylabel(ylabel or (f"{signal.name or 'signal'}" + (f" ({unit})" if unit else "")))
    ax.set_title("Response by reward-prediction error")
    ax.legend(frameon=False, fontsize="x-small")
    ax.grid(alpha=0.3)
    return ax
