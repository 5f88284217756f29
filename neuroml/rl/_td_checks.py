"""What the Pavlovian estimators check (:mod:`neuroml.rl.td`): their input grids and their
learning.

- ``trial_grid``: stimuli and rewards as ``(trial, time[, stimulus])`` arrays on one
  grid, with the coordinates a DataArray input carries, or a clear error.
- ``first_nonfinite``: where a fit diverged (values or RPEs NaN or infinite).
- ``without_equilibrium``: with ``gamma = 1``, whether the expected TD update leaves
  some weights without a bound (features still on at a trial's last bin).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..device import to_numpy
from ..errors import ParameterError

__all__ = ["check_finite", "first_nonfinite", "numeric", "ordered", "trial_grid",
           "without_equilibrium"]


def numeric(x, name: str) -> np.ndarray:
    try:
        return np.asarray(to_numpy(x), dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(
            f"The '{name}' argument must be numeric; got {type(x).__name__}."
        ) from None


def ordered(da: xr.DataArray, name: str, leading: tuple[str, ...]) -> xr.DataArray:
    """``da`` with the dims in ``leading`` first (when it names them all)."""
    if all(d in da.dims for d in leading):
        return da.transpose(*leading, ...)
    if len(leading) == 2:
        raise ParameterError(
            f"The '{name}' DataArray must have dims 'trial' and 'time' (and, for stimuli, "
            f"one stimulus dim); got dims {da.dims}."
        )
    return da


def kept_coords(da: xr.DataArray, dims: tuple[str, ...]) -> dict:
    """Coordinates of ``da`` that lie along ``dims`` only (non-dimension ones included)."""
    return {k: (c.dims, c.values) for k, c in da.coords.items() if set(c.dims) <= set(dims)}


def check_finite(values: np.ndarray, name: str, owner: str) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = ~finite.reshape(values.shape[0], -1).all(axis=1) if values.ndim > 1 else ~finite
    raise ParameterError(
        f"The '{name}' argument of {owner}.fit contains NaN or infinity in {int(bad.sum())} of "
        f"{bad.size} trials (the first: trial index {int(np.flatnonzero(bad)[0])}); every "
        "trial needs finite values."
    )


def trial_grid(stimuli, rewards, owner: str):
    """Stimuli ``(trial, time, stimulus)`` and rewards ``(trial, time)`` on one grid.

    Returns NumPy arrays and the ``(trial, time)`` coordinates to put on the outputs.
    """
    dims = ("trial", "time")
    coords: dict = {}
    s_desc = r_desc = ""
    if isinstance(stimuli, xr.DataArray):
        stimuli = ordered(stimuli, "stimuli", dims)
        coords.update(kept_coords(stimuli, dims))
        s_desc = f" (dims {stimuli.dims})"
    if isinstance(rewards, xr.DataArray):
        rewards = ordered(rewards, "rewards", dims)
        r_desc = f" (dims {rewards.dims})"
    s = numeric(stimuli, "stimuli")
    r = numeric(rewards, "rewards")
    if s.ndim not in (2, 3):
        raise ParameterError(
            f"{owner} expects 'stimuli' of shape (trial, time) or (trial, time, stimulus); "
            f"got shape {s.shape}{s_desc}."
        )
    if r.ndim != 2:
        raise ParameterError(
            f"{owner} expects 'rewards' of shape (trial, time); got shape {r.shape}{r_desc}."
        )
    if s.shape[:2] != r.shape:
        raise ParameterError(
            f"stimuli and rewards must be on the same (trial, time) grid: stimuli has shape "
            f"{s.shape}{s_desc}, rewards has shape {r.shape}{r_desc}."
        )
    if isinstance(rewards, xr.DataArray):
        for dim in dims:
            if dim in coords and dim in rewards.coords:
                a, b = np.asarray(coords[dim][1]), rewards.coords[dim].values
                if not (a.shape == b.shape and (np.array_equal(a, b) or (
                        a.dtype.kind in "fc" and b.dtype.kind in "fc" and np.allclose(a, b)))):
                    raise ParameterError(
                        f"stimuli and rewards must be on the same (trial, time) grid: their "
                        f"'{dim}' coordinates differ (stimuli {a[:5]}..., rewards {b[:5]}...)."
                    )
        for key, value in kept_coords(rewards, dims).items():
            coords.setdefault(key, value)
    check_finite(s, "stimuli", owner)
    check_finite(r, "rewards", owner)
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ParameterError(
            f"{owner}.fit needs at least one trial and one time bin; got stimuli and rewards "
            f"with {s.shape[0]} trials of {s.shape[1]} bins{s_desc}."
        )
    coords.setdefault("trial", ("trial", np.arange(s.shape[0])))
    coords.setdefault("time", ("time", np.arange(s.shape[1])))
    return (s if s.ndim == 3 else s[..., None]), r, coords


def without_equilibrium(s: np.ndarray, x: torch.Tensor, r: np.ndarray, lam: float,
                         alpha: float) -> tuple[str, np.ndarray] | None:
    """With ``gamma = 1``: does the expected TD update leave the weights without a bound?

    Over one pass through the trials, TD(lambda) changes the weights by about
    ``alpha n (b - A w)`` with ``A = mean_n sum_t e(t-1) (x(t-1) - x(t))^T`` and
    ``b = mean_n sum_t e(t-1) r(t)`` (``n`` trials, small ``alpha``). With a transition
    out of the last bin to a value of 0 (``A`` gaining ``e(T-1) x(T-1)^T``) episodic TD
    would be stable; without it, features still on at the last bin can leave ``A``
    singular or not positive stable. Then the weights have no equilibrium: a direction
    ``u`` with ``u^T A = 0`` but ``u^T b != 0`` drifts linearly (a ``"presence"`` feature on
    to the end: ``A = 0``, ``b`` = the reward that follows it, so the cue's RPE gains
    ``alpha`` x reward per trial), and an eigenvalue of ``A`` with a negative real part
    grows exponentially (microstimuli of a stimulus late in the trial, e.g. the reward's
    own trace). CSC features are safe: the feature of the last bin is never updated
    (``e`` of a last bin is never used), its row of ``A`` and its entry of ``b`` are 0,
    and every other lag is tied to the next. Only growth visible within these trials is reported:
    a drift above the largest reward or an amplification above two (tiny negative
    eigenvalues of near-constant microstimulus combinations would need far more trials).

    Returns
    -------
    None, or (what happens, bool per stimulus: on at a trial's last bin).
    """
    last_on = to_numpy(x[:, -1] != 0).any(0)
    n, T, F = x.shape
    if not last_on.any() or T < 2:
        return None  # a proper episode: every feature is off when the trial ends
    _, first, inverse, count = np.unique(s.reshape(n, -1), axis=0, return_index=True,
                                         return_inverse=True, return_counts=True)
    xs = to_numpy(x[torch.as_tensor(first, device=x.device)])  # one trial per stimulus pattern
    active = np.flatnonzero(xs.any(axis=(0, 1)))
    if active.size > 1500:  # eigenvalues of a large matrix: too slow for a check
        return None
    xs = xs[..., active]
    rs = np.zeros((first.size, T))
    np.add.at(rs, inverse.ravel(), r)
    A, b = np.zeros((active.size, active.size)), np.zeros(active.size)
    e = np.zeros((first.size, active.size))
    for t in range(1, T):
        e = lam * e + xs[:, t - 1]
        A += (count[:, None] * e).T @ (xs[:, t - 1] - xs[:, t])
        b += e.T @ rs[:, t]
    A, b = A / n, b / n
    U, S, _ = np.linalg.svd(A)
    null = U[:, S <= 1e-9 * max(S.max(), 1e-300)]
    drift = float(np.abs(null.T @ b).max()) if null.size else 0.0
    scale = max(float(np.abs(r).max()), 1e-300)
    per_stimulus = x.shape[-1] // s.shape[-1]
    stimuli = np.zeros(s.shape[-1], dtype=bool)
    stimuli[np.unique(np.flatnonzero(last_on) // per_stimulus)] = True
    if alpha * n * drift > scale:
        return (f"some of their weights drift by about {alpha * drift:.3g} per trial "
                f"({alpha * n * drift:.3g} over these {n} trials)", stimuli)
    eig = np.linalg.eigvals(A)
    rate = float(-eig.real.min())
    if rate > 1e-9 * max(float(np.abs(eig).max()), 1e-300) and alpha * n * rate > np.log(2):
        return (f"learning is unstable: a combination of their weights grows about "
                f"{np.exp(min(alpha * n * rate, 700)):.3g}-fold over these {n} trials", stimuli)
    return None


def first_nonfinite(*arrays: np.ndarray) -> int | None:
    """Index of the first trial (axis 0) with a NaN or infinity in any array, else None."""
    ok = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return None if ok.all() else int(np.flatnonzero(~ok)[0])
