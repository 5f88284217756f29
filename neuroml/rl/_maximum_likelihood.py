"""The batched maximum-likelihood search behind :class:`~neuroml.rl.choice.QLearning`.

All subjects x all restarts are one optimisation: each (subject, restart) problem is a
row of a ``(problem, parameter)`` tensor of unconstrained values, mapped into each
parameter's bounds by a sigmoid (:func:`natural`). The problems are independent, so the
summed negative log-likelihood's gradient and Hessian separate. For every model without
``alpha_neg`` the values are linear recurrences and the exact gradient and Hessian come
from forward-mode recursions in one pass over the trials
(:func:`neuroml.rl._q_derivatives.nll_derivatives`); with ``alpha_neg`` autograd runs
through the trial recursion of :func:`~neuroml.rl.q_learning.q_learning` and the Hessian
comes from differences of gradients evaluated in the same batched call. Each problem
takes its own damped Newton steps, with its own damping and convergence test
(:func:`neuroml.rl._newton.minimize`); problems that have converged, that met another
restart of their subject, or that cannot reach their subject's best leave the batch, so
no subject waits for another.
"""

from __future__ import annotations

import numpy as np
import torch

from .._parallel import available_threads, run_blocks, threads_for
from ..device import to_numpy
from ._newton import LIMIT, minimize
from ._q_derivatives import nll_derivatives
from .q_learning import _run

__all__ = ["fit_subjects", "natural", "split_parameters"]

_SCREEN = 4       # candidates screened per restart
_SPREAD = 4.0     # candidates uniform over [-4, 4] before the sigmoid: 1.8 % to 98.2 % of a range
# With three or more parameters a restart is pruned as hopeless only once its gradient is
# this small: on the 97 humans, pruning earlier left 2-3 subjects per extended model up to
# 26 NLL above SciPy's grid fit; two-parameter fits lost nothing to early pruning.
_SETTLED = 0.1
# Batches of at most this many (problem x trial) elements cost a round's fixed overhead
# more than its arithmetic: their rounds try several step lengths at once.
_SEARCH = 2**11


def _over_blocks(block, n: int, step: int, dim: int = 0) -> tuple:
    """``block(a)`` for ``a = 0, step, 2 step, ... < n``, each a tuple of tensors (or None),
    concatenated along ``dim``. Several blocks run in parallel pool threads (torch releases
    the GIL in its operations); a GPU gets one."""
    starts = list(range(0, n, step))
    if len(starts) == 1:
        return block(0)
    out = run_blocks(block, starts)
    return tuple(None if parts[0] is None else torch.cat(parts, dim) for parts in zip(*out))


def _diverse_best(cand: torch.Tensor, score: torch.Tensor, R: int, delta: float):
    """Indices ``(n, R)`` of ``R`` of each subject's candidates ``(n, C, P)``: greedily the
    lowest ``score`` among those at least ``delta`` away from every one taken (the lowest
    of the rest when none is that far)."""
    n, C, _ = cand.shape
    taken = torch.zeros(n, C, dtype=torch.bool, device=cand.device)
    near = torch.full((n, C), torch.inf, dtype=cand.dtype, device=cand.device)
    rows = torch.arange(n, device=cand.device)
    picks = []
    for _ in range(R):
        far = (near >= delta) & ~taken
        key = torch.where(far, score, torch.where(taken, torch.inf, score + 1e300))
        j = torch.argmin(key, dim=1)
        picks.append(j)
        taken[rows, j] = True
        dist = (cand - cand[rows, j][:, None, :]).norm(dim=2)
        near = torch.minimum(near, dist)
    return torch.stack(picks, 1)


def _latin_hypercube(n: int, C: int, P: int, rng) -> np.ndarray:
    """``(n, C, P)`` points, each subject's ``C`` stratified in every coordinate, uniform
    in ``[-_SPREAD, _SPREAD]``."""
    strata = np.argsort(rng.random((n, C, P)), axis=1)
    return _SPREAD * (2 * (strata + rng.random((n, C, P))) / C - 1)


def split_parameters(values: torch.Tensor, columns) -> dict:
    """Parameter dict for the learner from ``(batch, column)`` natural values."""
    params, bias = {}, []
    for j, c in enumerate(columns):
        if c.startswith("bias_"):
            bias.append(values[..., j])
        else:
            params[c] = values[..., j]
    if bias:
        params["bias"] = torch.stack(bias, -1)
    return params


def natural(x, lo, hi, fixed):
    """Natural values ``lo + (hi - lo) sigmoid(x)``; a coordinate fixed at the upper
    limit (a constant-choice subject's beta) is exactly ``hi``."""
    v = lo + (hi - lo) * torch.sigmoid(x)
    return torch.where(fixed & (x >= LIMIT), hi.expand_as(x), v)


def fit_subjects(trials, columns, lo: np.ndarray, hi: np.ndarray, fixed: np.ndarray, *,
                 q0: float, n_options: int, n_starts: int, max_iter: int, tol: float, rng):
    """Every subject's maximum-likelihood parameters, all subjects x restarts in one batch.

    Parameters
    ----------
    trials : the prepared trials of :func:`~neuroml.rl.q_learning._prepare`, (subject, trial)
        on the device the fit runs on.
    columns : tuple of str
        The parameter columns (see :class:`~neuroml.rl.choice.QLearning`).
    lo, hi : ndarray of shape (n_parameters,)
        Each parameter's bounds.
    fixed : ndarray of bool, shape (n_subjects, n_parameters)
        Parameters held at a bound: at ``hi`` where ``hi > lo`` (a constant-choice
        subject's beta), else at the value ``lo == hi``.
    q0, n_options, n_starts, max_iter, tol :
        As :class:`~neuroml.rl.choice.QLearning`'s parameters.
    rng : numpy.random.Generator
        Draws the restarts' candidates.

    Returns
    -------
    values : ndarray of shape (n_subjects, n_parameters)
        The best restart's parameters, in natural units.
    nll : ndarray of shape (n_subjects,)
    n_iter, converged : ndarray of shape (n_subjects,)
        Evaluations of the best restart, and whether it converged.
    """
    dev, dt, K = trials.onehot.device, torch.float64, int(n_options)
    S, R, P = int(fixed.shape[0]), int(n_starts), len(columns)
    lo_t, hi_t = (torch.as_tensor(v, dtype=dt, device=dev) for v in (lo, hi))
    fixed_t = torch.as_tensor(fixed, device=dev)
    # CPU: blocks of problems whose per-trial tensors stay small (~64 KB: the recursion
    # is thousands of small operations, and larger fresh buffers cost page faults);
    # GPU: as many as fit a budget of ~1 GB per stored (option, problem, trial) tensor.
    chunk = 2**12 if dev.type == "cpu" else max(1, 2**27 // max(1, trials.onehot.shape[0]))

    def nll(x, subj, grad=True):
        """NLL (and gradient) at ``x`` (J, m, P) of the problems of subjects ``subj``."""
        step = max(1, chunk // (x.shape[0] * K))

        def block(a):
            sa = subj[a:a + step]
            xa = x[:, a:a + step].detach().requires_grad_(grad)
            with torch.set_grad_enabled(grad):
                vals = natural(xa, lo_t, hi_t, fixed_t[sa])
                fa = _run(trials.take(sa), split_parameters(vals, columns), q0, K,
                          full=False)
            ga = torch.autograd.grad(fa.sum(), xa)[0] if grad else None
            return fa.detach(), ga

        return _over_blocks(block, x.shape[1], step, dim=1)

    def nll_exact(x, subj, derivatives=True):
        """NLL, gradient and Hessian at ``x`` (m, P) (unconstrained) of the problems of
        subjects ``subj``, by forward-mode recursions (models without alpha_neg)."""
        # CPU: as nll; GPU: up to 2**24 (trial, option, problem) elements in a block of
        # 64 trials (nll_derivatives' smallest)
        step = max(1, chunk // (2 * K) if dev.type == "cpu" else 2**18 // K)
        if dev.type == "cpu" and x.shape[0] >= 256:  # at least one block per thread
            step = min(step, -(-x.shape[0] // available_threads()))
        width = hi_t - lo_t

        def block(a):
            sa = subj[a:a + step]
            xa = x[a:a + step]
            f, g, H = nll_derivatives(trials.take(sa), natural(xa, lo_t, hi_t, fixed_t[sa]),
                                      columns, q0, K, derivatives=derivatives)
            if not derivatives:
                return f, None, None
            s = torch.sigmoid(xa)
            d1 = width * s * (1 - s)  # d theta / dx, and its derivative below
            H = H * d1[:, :, None] * d1[:, None, :] + torch.diag_embed(g * d1 * (1 - 2 * s))
            return f, g * d1, H

        return _over_blocks(block, x.shape[0], step)

    # restarts: of _SCREEN * n_starts Latin-hypercube candidates per subject (uniform in
    # the unconstrained space over [-_SPREAD, _SPREAD]), the lowest-NLL ones that lie
    # apart from each other (a local optimum near a bound has its own basin)
    C = _SCREEN * R
    cand = torch.as_tensor(_latin_hypercube(S, C, P, rng), dtype=dt, device=dev)
    cand = torch.where(fixed_t[:, None, :], torch.where(torch.as_tensor(hi > lo, device=dev),
                                                        LIMIT, 0.0), cand)
    with threads_for(0.0, dev):  # thousands of small operations: one thread is fastest
        exact = "alpha_neg" not in columns  # a linear recursion: exact Hessians
        owner = torch.arange(S, device=dev).repeat_interleave(C)
        screen = (nll_exact(cand.reshape(S * C, P), owner, derivatives=False)[0] if exact
                  else nll(cand.reshape(1, S * C, P), owner, grad=False)[0][0])
        screen = torch.where(torch.isfinite(screen), screen, torch.inf).reshape(S, C)
        pick = _diverse_best(cand, screen, R, 1.5 * _SPREAD / R ** (1 / P))
        x0 = torch.gather(cand, 1, pick[:, :, None].expand(S, R, P)).reshape(S * R, P)
        free = ~fixed_t.repeat_interleave(R, 0)
        x, f, n_iter, conv = minimize(
            (lambda x, index: nll_exact(x, index // R)) if exact else
            (lambda x, index: nll(x, index // R)), x0, free, max_iter, tol, group=R,
            hessian=exact, settled=_SETTLED if P >= 3 else float("inf"),
            search=_SEARCH // trials.onehot.shape[0])
    f = torch.where(torch.isfinite(f), f, torch.full_like(f, np.inf)).reshape(S, R)
    best = torch.argmin(f, dim=1)
    rows = torch.arange(S, device=dev) * R + best
    with torch.no_grad():
        vals = to_numpy(natural(x[rows], lo_t, hi_t, fixed_t))
    nll = to_numpy(f[torch.arange(S, device=dev), best])
    return vals, nll, to_numpy(n_iter[rows]), to_numpy(conv[rows])
