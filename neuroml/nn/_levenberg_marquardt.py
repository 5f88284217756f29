"""The batched Levenberg-Marquardt solver of :class:`~neuroml.nn.parametric.ParametricRegressor`.

Every (neuron, restart) row takes damped Gauss-Newton steps
``(J^T J + lambda diag(J^T J)) delta = J^T r`` with its own damping ``lambda`` (Nielsen's
update), all rows' ``k x k`` systems solved in one batched call; a row stops when the
relative decrease of its sum of squares (actual and predicted) or its relative step falls
below ``tol`` (MINPACK's ``ftol`` / ``xtol`` tests) and then leaves the batch.
"""

from __future__ import annotations

import math
import sys
import time

import pandas as pd
import torch

from ._parametric_models import Model

__all__ = ["History", "levenberg_marquardt"]

_F64 = torch.float64


class History:
    """Per-iteration records of a batched solver (the columns of
    :class:`~neuroml.training.Trainer`'s history: epoch, train_loss, val_loss (NaN: no
    validation split), n_active rows, seconds), printed to stderr when ``verbose``."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.rows: dict[str, list] = {k: [] for k in ("epoch", "train_loss", "val_loss",
                                                      "n_active", "seconds")}
        self.t0 = time.perf_counter()

    def record(self, it: int, loss: float, n_active: int) -> None:
        """One iteration: its mean loss per sample and the rows still active."""
        for key, value in zip(self.rows, (it, loss, math.nan, int(n_active),
                                          time.perf_counter() - self.t0)):
            self.rows[key].append(value)
        if self.verbose:
            print(f"iteration {it}: {int(n_active)} rows active, mean loss {loss:.6g}",
                  file=sys.stderr)

    def __len__(self) -> int:
        return len(self.rows["epoch"])

    def frame(self) -> pd.DataFrame:
        """The records as a DataFrame, one row per iteration."""
        return pd.DataFrame(self.rows)


def levenberg_marquardt(model: Model, x, Y, sw, within, U0, transform, max_iter: int,
                         tol: float, verbose) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                       History]:
    """Batched Levenberg-Marquardt over the rows of ``U0`` ``(B, k)``, targets ``Y`` ``(B, m)``.

    ``within`` ``(B,)`` is the part of each row's sum of squares that merged repeats
    remove (the stopping test is relative to the whole sum, as MINPACK's). Returns the
    final ``U``, each row's weighted sum of squares on the distinct ``x``, whether it
    converged, and the :class:`History`. One host synchronisation per iteration.
    """
    B, k = U0.shape
    dev = U0.device
    tiny = torch.finfo(_F64).tiny
    U, cost_all = U0.clone(), torch.zeros(B, dtype=_F64, device=dev)
    conv_all = torch.zeros(B, dtype=torch.bool, device=dev)
    total_w = float(Y.shape[1]) if sw is None else float((sw * sw).sum())
    # one (B, k + 1, m) buffer, reused by every evaluation (fresh multi-megabyte tensors
    # each iteration cost more in page faults than the arithmetic): rows 0..k-1 the
    # Jacobian, row k the residuals, so that one batched product A A^T gives J^T J, J^T r
    # and r^T r together
    buffer = U0.new_empty((B, k + 1, Y.shape[1]))

    def evaluate(u, Ya):
        # Gauss-Newton pieces on the unconstrained scale: the chain rule through the
        # bounds transform scales H and g (k x k per row), not the (k x m) Jacobian.
        theta, dtheta = transform.forward(u)
        A = buffer[:u.shape[0]]
        f, _ = model.value_and_jac(x, theta, out=A)
        torch.sub(Ya, f, out=f)
        if sw is not None:
            A.mul_(sw)
        M = torch.bmm(A, A.mT)
        H, g, cost = M[:, :k, :k], M[:, :k, k], M[:, k, k]
        if dtheta is not None:
            H = H * (dtheta[:, :, None] * dtheta[:, None, :])
            g = g * dtheta
        return cost, H, g, theta

    active = torch.arange(B, device=dev)
    u, Ya, wa = U0.clone(), Y, within
    cost, H, g, theta = evaluate(u, Ya)
    floor = tol * tol * (cost + wa)  # an exact fit: the sum of squares all but gone
    cost_all.copy_(cost)
    lam = torch.full_like(cost, 1e-3)  # relative to diag(J^T J) (Marquardt's scaling)
    nu = torch.full_like(cost, 2.0)
    history = History(verbose)
    for it in range(1, max_iter + 1):
        diag = H.diagonal(dim1=1, dim2=2)
        D = torch.maximum(diag, 1e-12 * diag.amax(1, keepdim=True)).clamp_min(tiny)
        delta, info = torch.linalg.solve_ex(H + torch.diag_embed(lam[:, None] * D), g)
        ok = (info == 0) & torch.isfinite(delta).all(1)
        delta = torch.where(ok[:, None], delta, 0.0)
        u_new = u + delta
        cost_n, H_n, g_n, theta_n = evaluate(u_new, Ya)
        pred = torch.linalg.vecdot(delta, g + lam[:, None] * D * delta)
        actual = cost - cost_n
        accept = ok & (actual > 0)  # False for a NaN cost_n
        limit = tol * (cost + wa)
        # MINPACK's xtol test, on both scales: a parameter pressing against a bound
        # moves less and less in its natural units while its unconstrained value runs off
        # (squared norms: one product each, cheaper than vector_norm on small rows)
        sq = torch.linalg.vecdot
        step_u = sq(delta, delta) <= (tol * (sq(u, u).sqrt() + tol)) ** 2
        moved = theta_n - theta
        step_theta = sq(moved, moved) <= (tol * (sq(theta, theta).sqrt() + tol)) ** 2
        done = (ok & (((actual.abs() <= limit) & (pred <= limit)) | step_u | step_theta)) \
            | (cost_n + wa <= floor) | (lam > 1e16)
        u = torch.where(accept[:, None], u_new, u)
        theta = torch.where(accept[:, None], theta_n, theta)
        cost = torch.where(accept, cost_n, cost)
        H = torch.where(accept[:, None, None], H_n, H)
        g = torch.where(accept[:, None], g_n, g)
        rho = actual / pred.clamp_min(tiny)
        lam = torch.where(accept, lam * (1 - (2 * rho - 1) ** 3).clamp_min(1 / 3), lam * nu)
        nu = torch.where(accept, 2.0, nu * 2)
        cost_all[active] = cost
        n_done, mean_cost = torch.stack([done.sum().to(_F64), cost_all.sum()]).tolist()
        history.record(it, mean_cost / (B * total_w), active.numel())
        if n_done:
            finished = active[done]
            U[finished] = u[done]
            conv_all[finished] = True
            if n_done == active.numel():
                active = active[:0]
                break
            keep = (~done).nonzero()[:, 0]
            active, u, theta, Ya = active[keep], u[keep], theta[keep], Ya[keep]
            wa, floor = wa[keep], floor[keep]
            cost, H, g, lam, nu = cost[keep], H[keep], g[keep], lam[keep], nu[keep]
    if active.numel():
        U[active] = u
    return U, cost_all, conv_all, history
