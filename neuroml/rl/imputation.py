"""Dabney et al.'s imputation: samples of a distribution from its expectiles.

The last step of the distributional analysis of dopamine responses
(:mod:`neuroml.rl.dopamine`): the reversal points of the cells, at their asymmetries, are
expectiles of the reward distribution the population has learned; the distribution
they imply is recovered as samples that have exactly those expectiles.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._validation import Interval, check_param, check_same_index, check_vector
from ..device import seed_from
from ..errors import ParameterError

__all__ = ["decode_reward_distribution"]


def _residuals(z, e, t):
    """Expectile conditions ``mean_j |tau_i - 1(z_j <= e_i)| (z_j - e_i)`` per problem."""
    d = z[:, None, :] - e[None, :, None]  # (restarts, taus, samples)
    w = np.abs(t[None, :, None] - (d <= 0))
    return (w * d).mean(-1), w


def decode_reward_distribution(reversal_points, taus, *, n_samples=None, n_restarts=100,
                               bounds=None, max_iter=200, tol=1e-3,
                               random_state=None) -> np.ndarray:
    """Samples of the reward distribution whose expectiles are ``reversal_points``.

    Dabney et al.'s imputation: find samples ``z`` whose ``tau_i``-expectiles equal the
    given values ``e_i``, i.e. that solve every expectile's first-order condition
    ``mean_j |tau_i - 1(z_j <= e_i)| (z_j - e_i) = 0``, from random starts (uniform
    between the smallest and largest value), and pool the solutions of the restarts.
    The paper's code solves this with Levenberg-Marquardt (``scipy.optimize.root``,
    ``method="lm"``) one start at a time; here all restarts take damped Gauss-Newton
    (Levenberg-Marquardt) steps together as one batch of small linear solves. The
    conditions are piecewise linear in ``z``, so a handful of steps reach them exactly.
    Because they are linear in the distribution, the pooled samples satisfy them too.

    Parameters
    ----------
    reversal_points : array-like of shape (n_cells,)
        The expectile values (e.g. reversal points in reward units).
    taus : array-like of shape (n_cells,)
        Their asymmetries, in (0, 1). Paired with ``reversal_points`` by position; two
        pandas Series must share their index.
    n_samples : int, default=None
        Samples per restart; ``n_cells`` when None (as the paper's code).
    n_restarts : int, default=100
        Independent random starts whose solutions are pooled.
    bounds : (float, float), default=None
        Keep samples within these values (the paper's main decoding keeps them within the
        task's reward range; steps are clipped to it); unbounded when None.
    max_iter : int, default=200
        Levenberg-Marquardt steps.
    tol : float, default=1e-3
        A restart is kept when the root mean square of its conditions is at most ``tol``
        times the spread (max - min) of ``reversal_points``. The conditions are
        piecewise linear with local minima (samples bunched in a few of the intervals
        between the values), so restarts end at small, nonzero residuals, as with the
        paper's solver; at 1e-3 the pooled samples' expectiles are within about 1 % of
        the spread of the targets (0.06 uL of 12.4 for 18 expectiles of the
        seven-magnitude distribution), their mean within 0.1 %.
    random_state : int, RandomState, Generator or None, default=None

    Returns
    -------
    samples : ndarray of shape (n_kept * n_samples,)
        The pooled samples of the kept restarts, sorted. When none meets ``tol`` (no
        distribution has exactly these expectiles, as with noisy estimates that do not
        increase with ``tau``, or ``bounds`` are too tight) the restarts whose residual
        is within twice the best are pooled, with a ``RuntimeWarning``.

    Examples
    --------
    >>> e = np.array([0.25, 0.5, 0.75])      # expectiles of a fair coin on {0, 1}
    >>> z = decode_reward_distribution(e, [0.25, 0.5, 0.75], n_samples=10, random_state=0)
    >>> round(float(z.mean()), 4)
    0.5
    """
    owner = "decode_reward_distribution"
    check_same_index({"reversal_points": reversal_points, "taus": taus}, owner)
    e = check_vector(reversal_points, "reversal_points", owner, per="cell", scalar=True)
    t = check_vector(taus, "taus", owner, per="cell", scalar=True)
    if e.size != t.size or e.size == 0 or not np.all(np.isfinite(e)):
        raise ParameterError(
            f"{owner}: 'reversal_points' must be finite, non-empty and as long as 'taus'; "
            f"got {e.size} values ({int(np.sum(~np.isfinite(e)))} not finite) for {t.size} "
            "taus. Drop the cells whose asymmetry is undefined.")
    if not np.all((t > 0) & (t < 1)):
        raise ParameterError(f"The 'taus' parameter of {owner} must lie in (0, 1). Got "
                             f"{t[~((t > 0) & (t < 1))].tolist()}.")
    check_param("n_samples", n_samples, [None, Interval(numbers.Integral, 1, None)], owner)
    check_param("n_restarts", n_restarts, [Interval(numbers.Integral, 1, None)], owner)
    check_param("max_iter", max_iter, [Interval(numbers.Integral, 1, None)], owner)
    check_param("tol", tol, [Interval(numbers.Real, 0, None, "neither")], owner)
    check_param("random_state", random_state, ["random_state"], owner)
    n = e.size if n_samples is None else int(n_samples)
    lo, hi = float(e.min()), float(e.max())
    box = (-np.inf, np.inf)
    if bounds is not None:
        try:
            box = (float(bounds[0]), float(bounds[1]))
        except (TypeError, ValueError, IndexError):
            box = (np.nan, np.nan)
        if not box[0] < box[1]:
            raise ParameterError(f"The 'bounds' parameter of {owner} must be (low, high) with "
                                 f"low < high, or None. Got {bounds!r}.")
        lo, hi = max(lo, box[0]), min(hi, box[1])
    rng = np.random.default_rng(seed_from(random_state))
    z = rng.uniform(lo, hi, size=(n_restarts, n)) if hi > lo else np.full((n_restarts, n), lo)
    scale = max(float(np.ptp(e)), float(np.abs(e).max()) * 1e-3, 1e-12)
    target = (tol * scale) ** 2 * e.size
    g, w = _residuals(z, e, t)
    cost = (g**2).sum(1)
    damping = np.full(n_restarts, 1e-3)
    eye = np.eye(e.size)
    for _ in range(int(max_iter)):
        active = cost > target
        if not active.any():
            break
        J = w[active] / n  # (r, taus, samples): d condition_i / d z_j
        JJ = J @ J.transpose(0, 2, 1)
        ridge = damping[active, None, None] * (np.trace(JJ, axis1=1, axis2=2)[:, None, None]
                                                / e.size + 1e-30) * eye
        step = -np.einsum("rij,ri->rj", J, np.linalg.solve(JJ + ridge, g[active][..., None])[..., 0])
        trial = np.clip(z[active] + step, *box)
        g_new, w_new = _residuals(trial, e, t)
        cost_new = (g_new**2).sum(1)
        better = cost_new < cost[active]
        idx = np.flatnonzero(active)
        take = idx[better]
        z[take], g[take], w[take], cost[take] = trial[better], g_new[better], w_new[better], \
            cost_new[better]
        damping[take] = np.maximum(damping[take] * 0.3, 1e-12)
        damping[idx[~better]] *= 10.0
    if cost.min() > target:
        rms = np.sqrt(cost.min() / e.size) / scale
        warnings.warn(
            f"{owner}: no restart met tol={tol} (best root mean square condition {rms:.3g} "
            "of the spread of the values); returning the restarts within twice the best. "
            "No distribution has exactly these expectiles (e.g. they do not increase with "
            "tau, as noisy estimates may not), or the bounds are too tight.",
            RuntimeWarning, stacklevel=2)
    keep = cost <= max(target, 4.0 * cost.min())  # rms within twice the best
    return np.sort(z[keep].ravel())
