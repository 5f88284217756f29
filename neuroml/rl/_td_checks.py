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
    """With ``gamma = 1``: do the weights grow without bound over these trials?

    Over one pass through the trials, TD(lambda) changes the weights by about
    ``alpha (b - A w)`` per trial, with ``A = mean_n sum_t e(t-1) (x(t-1) - x(t))^T`` and
    ``b = mean_n sum_t e(t-1) r(t)`` (the mean over the ``n`` trials; small ``alpha``).
    With a transition out of the last bin to a value of 0 (``A`` gaining
    ``e(T-1) x(T-1)^T``) episodic TD would be stable; without it, features still on at
    the last bin can leave ``I - alpha A`` without a contraction: a ``"presence"``
    feature on to the end gains ``alpha`` x the reward that follows it on every trial,
    and the microstimuli of a stimulus late in the trial can grow exponentially. CSC
    features are safe: the feature of the last bin is never updated (``e`` of a last bin
    is never used) and every other lag is tied to the next.

    The check follows the expected weights ``w_k = w_{k-1} + alpha (b - A w_{k-1})`` from
    ``w_0 = 0`` over the ``n`` trials (by squaring the affine map) and reports growth when
    ``I - alpha A`` has an eigenvalue of modulus at least 1 (no equilibrium it contracts
    to) and the largest value ``|x(t) . w|`` after ``n`` trials is above twice the largest
    reward and at least 1.5 times what it was after ``n / 2`` trials. So a stimulus that
    no reward follows (``b = 0``: the weights stay 0) or a neutral direction that nothing
    drives raises nothing, and only growth visible within these trials is reported.

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
    if active.size > 400:  # log2(n) products of (F + 1)^2 matrices: too slow for a check
        return None
    xs = xs[..., active]
    F = active.size
    rs = np.zeros((first.size, T))
    np.add.at(rs, inverse.ravel(), r)
    A, b = np.zeros((F, F)), np.zeros(F)
    e = np.zeros((first.size, F))
    for t in range(1, T):
        e = lam * e + xs[:, t - 1]
        A += (count[:, None] * e).T @ (xs[:, t - 1] - xs[:, t])
        b += e.T @ rs[:, t]
    A, b = A / n, b / n
    step = np.eye(F + 1)  # the affine map w -> w + alpha (b - A w), on (w, 1)
    step[:F, :F] -= alpha * A
    step[:F, F] = alpha * b
    if np.abs(np.linalg.eigvals(step[:F, :F])).max() < 1 - 1e-12:
        return None  # a contraction: the expected weights converge
    with np.errstate(all="ignore"):
        half = np.linalg.matrix_power(step, max(n // 2, 1))
        full = half @ half @ (step if n % 2 else np.eye(F + 1))
        v_half = float(np.abs(xs @ half[:F, F]).max())
        v_full = float(np.abs(xs @ full[:F, F]).max())
    scale = max(float(np.abs(r).max()), 1e-300)
    if not (v_full > 2 * scale and (not np.isfinite(v_full) or v_full >= 1.5 * v_half)):
        return None
    per_stimulus = x.shape[-1] // s.shape[-1]
    stimuli = np.zeros(s.shape[-1], dtype=bool)
    stimuli[np.unique(np.flatnonzero(last_on) // per_stimulus)] = True
    return (f"the expected values grow from {v_half:.3g} after {max(n // 2, 1)} trials to "
            f"{v_full:.3g} after {n} (the largest reward: {scale:.3g}), with no equilibrium "
            "to settle at", stimuli)


def first_nonfinite(*arrays: np.ndarray) -> int | None:
    """Index of the first trial (axis 0) with a NaN or infinity in any array, else None."""
    ok = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return None if ok.all() else int(np.flatnonzero(~ok)[0])
