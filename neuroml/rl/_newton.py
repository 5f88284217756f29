"""A batched damped-Newton minimiser of many independent smooth problems at once.

Used by :class:`~neuroml.rl.choice.QLearning`: every (subject, restart) problem is a row
of one ``(problem, parameter)`` tensor; each takes its own Levenberg-Marquardt-damped
Newton steps with its own convergence test, and leaves the batch when it has converged,
met a better restart of its subject, or cannot reach its subject's best.
"""

from __future__ import annotations

import torch

__all__ = ["minimize", "LIMIT"]

_MAX_STEP = 5.0   # largest step of one unconstrained coordinate per iteration
LIMIT = 30.0     # unconstrained values stay in [-30, 30] (sigmoid within 1e-13 of a bound)
_FD = 1e-5        # finite-difference step of the Hessian (from exact gradients)
_MERGE = 0.2      # restarts of one subject this close (unconstrained units) merge
_LENGTHS = (1.0, 2.0, 4.0, 8.0, 0.5, 0.25)  # step lengths tried at once by small batches
_HOPELESS = 1.0   # a restart predicted to stay this far (NLL) above its subject's best stops


def minimize(fun, x0: torch.Tensor, free: torch.Tensor, max_iter: int, tol: float,
              group: int = 1, hessian: bool = False, settled: float = float("inf"),
              search: int = 0):
    """Minimise ``n`` independent smooth functions at once, each by its own damped Newton.

    Each round evaluates, for every active problem, the value and gradient at its trial
    point and at that point moved by ``_FD`` along each free coordinate (one batched call
    of ``fun``): the gradient differences give the Hessian (or ``fun`` gives the exact
    Hessian, ``hessian=True``), so an accepted point comes with its Newton step ready.
    The step is ``-(|H| + mu I)^-1 g`` (``|H|``: the Hessian with its eigenvalues made
    positive), capped at ``_MAX_STEP``; ``mu`` is a Levenberg-Marquardt damping per
    problem, decreased after good steps and increased after rejected ones. While at
    most ``search`` problems are active (a batch so small that a call costs its fixed
    overhead, not its arithmetic), each round evaluates the step at every length of
    ``_LENGTHS`` in one call and keeps the lowest value: a line search in parallel,
    which crosses flat valleys and a sigmoid's tail (where a Newton step moves about one
    unit) in fewer rounds. A problem has converged when its largest gradient component
    is at most ``tol`` or its next Newton step promises less than ``1e-4 tol`` (the NLL is then
    within rounding of its optimum). It also stops when no step decreases it any more,
    after ``max_iter`` rounds, when it comes within ``_MERGE`` of a better problem of
    its group (restarts of one subject that met in one basin: one of them goes on), or
    when even twice the decrease its Newton model predicts would leave it more than
    ``_HOPELESS`` above the best of its group (a restart in a worse basin).

    Parameters
    ----------
    fun : callable ``(x (J, m, P), index (m,)) -> (f (J, m), g (J, m, P))``
        Values and gradients of problems ``index`` at ``J`` points each; with
        ``hessian=True``, ``(x (m, P), index) -> (f (m,), g (m, P), H (m, P, P))``: exact
        Hessians, and no finite differences.
    x0 : torch.Tensor of shape (n, P)
    free : torch.Tensor of shape (n, P), bool
        Coordinates that move (fixed ones keep their ``x0`` value).
    max_iter : int
    tol : float
    group : int, default=1
        Consecutive problems in groups of this size are restarts of one subject.
    settled : float, default=inf
        A restart is judged hopeless only once its largest gradient component is at most
        ``settled`` (far from its optimum the Newton model's prediction can be myopic: in a
        long valley a restart goes much further than twice what it predicts).
    search : int, default=0
        While at most this many problems are active, each round tries the step at every
        length of ``_LENGTHS`` in one call of ``fun`` and keeps the lowest value.

    Returns
    -------
    x (n, P), f (n,), n_iter (n,) int, converged (n,) bool
    """
    n, P = x0.shape
    dev, dt = x0.device, x0.dtype
    freef = free.to(dt)
    coords = torch.nonzero(free.any(0)).flatten()
    shift = torch.zeros(coords.numel(), P, dtype=dt, device=dev)
    shift[torch.arange(coords.numel(), device=dev), coords] = _FD

    def evaluate(x, index):
        fr = freef[index]
        if hessian:
            f, g, H = fun(x, index)
            g = g * fr
        else:
            f, g = fun(torch.cat([x[None], x[None] + shift[:, None, :]]), index)
            g = g * fr
            H = torch.zeros(x.shape[0], P, P, dtype=dt, device=dev)
            H[:, coords, :] = ((g[1:] - g[:1]) / _FD).transpose(0, 1)
            f, g = f[0], g[0]
        H = 0.5 * (H + H.transpose(1, 2)) * fr[:, :, None] * fr[:, None, :]
        return f, g, H + torch.diag_embed(1 - fr)

    def newton(g, H, damp):
        lam, V = torch.linalg.eigh(H)
        lam = lam.abs()
        lam = lam + damp[:, None] * lam.amax(1, keepdim=True) + 1e-12
        d = -(V @ ((V.transpose(1, 2) @ g[:, :, None])[..., 0] / lam)[:, :, None])[..., 0]
        pred = 0.5 * ((V.transpose(1, 2) @ g[:, :, None])[..., 0] ** 2 / lam).sum(1)
        big = d.abs().amax(1)
        scale = (_MAX_STEP / big.clamp(min=1e-300)).clamp(max=1.0)
        return d * scale[:, None], pred * scale

    everyone = torch.arange(n, device=dev)
    x = x0.clone()
    f, g, H = evaluate(x, everyone)
    damp = torch.full((n,), 1e-3, dtype=dt, device=dev)
    d, pred = newton(g, H, damp)
    n_iter = torch.ones(n, dtype=torch.int64, device=dev)
    converged = (g.abs().amax(1) <= tol) | (pred <= 1e-4 * tol)
    active = ~converged & torch.isfinite(f) & (n_iter < max_iter)  # max_iter=1: the start only
    if group > 1:
        active &= ~(_hopeless(f, pred, everyone // group, f, group) & (g.abs().amax(1) <= settled))
    # the active problems' state, compacted when some of them stop
    idx = torch.nonzero(active).flatten()
    xa, fa, ga, Ha, da, pa, dampa, na = (v[idx] for v in (x, f, g, H, d, pred, damp, n_iter))
    while idx.numel():
        if idx.numel() <= search:  # overhead-bound: every length of the step at once
            x_try, f_try, g_try, H_try = _best_length(evaluate, xa, da, idx)
        else:
            x_try = (xa + da).clamp(-LIMIT, LIMIT)
            f_try, g_try, H_try = evaluate(x_try, idx)
        na = na + 1
        gain = fa - f_try
        ok = torch.isfinite(f_try) & (gain >= 1e-4 * pa) & (gain > 0)
        ratio = gain / pa.clamp(min=1e-300)
        dampa = torch.where(ok, torch.where(ratio > 0.75, dampa / 4, torch.where(
            ratio < 0.25, dampa * 2, dampa)).clamp(min=1e-8), (dampa * 8).clamp(min=1e-2))
        xa = torch.where(ok[:, None], x_try, xa)
        fa = torch.where(ok, f_try, fa)
        ga = torch.where(ok[:, None], g_try, ga)
        Ha = torch.where(ok[:, None, None], H_try, Ha)
        da, pa = newton(ga, Ha, dampa)
        conv = ok & ((ga.abs().amax(1) <= tol) | (pa <= 1e-4 * tol))
        stop = conv | (da.abs().amax(1) < 1e-12) | (na >= max_iter)
        if group > 1:
            x[idx], f[idx] = xa, fa
            active[idx] = ~stop
            owner = idx // group
            # on the CPU, skipped unless some subject has two restarts left (on a GPU the
            # check would cost a synchronisation more than the comparisons do)
            if dev.type != "cpu" or bool((owner[1:] == owner[:-1]).any()):
                stop |= _merged(x, f, active, group)[idx]
            stop |= _hopeless(fa, pa, owner, f, group) & (ga.abs().amax(1) <= settled)
        if stop.any():
            out = idx[stop]
            x[out], f[out], n_iter[out], converged[out] = xa[stop], fa[stop], na[stop], conv[stop]
            active[out] = False
            keep = ~stop
            idx = idx[keep]
            xa, fa, ga, Ha, da, pa, dampa, na = (v[keep] for v in (xa, fa, ga, Ha, da, pa,
                                                                   dampa, na))
    return x, f, n_iter, converged


def _best_length(evaluate, x, d, index):
    """The trial point, value, gradient and Hessian of the best of the steps ``d`` scaled by
    each of ``_LENGTHS`` from ``x`` (one call of ``evaluate`` for all)."""
    m, P = x.shape
    lengths = torch.tensor(_LENGTHS, dtype=x.dtype, device=x.device)
    x_all = (x + lengths[:, None, None] * d).clamp(-LIMIT, LIMIT).reshape(-1, P)
    f, g, H = evaluate(x_all, index.repeat(len(_LENGTHS)))
    f = torch.where(torch.isfinite(f), f, torch.inf).reshape(-1, m)
    best = torch.argmin(f, 0) * m + torch.arange(m, device=x.device)
    return x_all[best], f.reshape(-1)[best], g[best], H[best]


def _merged(x: torch.Tensor, f: torch.Tensor, active: torch.Tensor, group: int):
    """Active problems within ``_MERGE`` (largest coordinate difference; or within 1 % of
    every parameter's range) of an active problem of their group with a lower value (ties:
    the later one)."""
    xs, fs, act = (v.reshape(-1, group, *v.shape[1:]) for v in (x, f, active))
    us = torch.sigmoid(xs)  # in a sigmoid's tail x may differ where the parameters do not
    close = (((xs[:, :, None, :] - xs[:, None, :, :]).abs().amax(-1) < _MERGE)
             | ((us[:, :, None, :] - us[:, None, :, :]).abs().amax(-1) < 1e-2))
    later = torch.arange(group, device=x.device)
    worse = (fs[:, :, None] > fs[:, None, :]) | ((fs[:, :, None] == fs[:, None, :])
                                                 & (later[:, None] > later[None, :]))
    beaten = (close & worse & act[:, :, None] & act[:, None, :]).any(2)
    return beaten.reshape(-1)


def _hopeless(fa: torch.Tensor, pa: torch.Tensor, owner: torch.Tensor, f: torch.Tensor,
              group: int):
    """Problems (values ``fa``, Newton forecasts ``pa``, groups ``owner``) whose own
    Newton model, even doubled, leaves them more than ``_HOPELESS`` above the best value
    ``f`` of any problem in their group (a restart in a worse basin)."""
    best = torch.where(torch.isfinite(f), f, torch.inf).reshape(-1, group).amin(1)
    return fa - 2 * pa > best[owner] + _HOPELESS
