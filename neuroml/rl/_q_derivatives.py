"""Exact gradient and Hessian of the Q-learning negative log-likelihood in one pass.

For every model without ``alpha_neg`` the values and the choice kernel are linear
recurrences, ``Q(t + 1) = a(t) Q(t) + b(t)`` with ``a`` and ``b`` linear in the learning
parameters (``alpha``, ``forget``; ``perseveration_rate`` for the kernel). Their
derivatives are linear recurrences with the same ``a`` (forward-mode differentiation):

    D_i(t + 1) = a(t) D_i(t) + da/di(t) Q(t) + db/di(t)
    E_ij(t + 1) = a(t) E_ij(t) + da/di(t) D_j(t) + da/dj(t) D_i(t)

(``D_i = dQ/di``, ``E_ij = d2Q/di dj``; ``a`` and ``b`` have no second derivatives), each
run by :func:`~neuroml.rl.q_learning.linear_scan`. The logits
``l = beta Q + bias + perseveration CK`` are then differentiated in closed form, and the
softmax log-likelihood's gradient and Hessian follow:

    d log P(c) / di          = sum_k (onehot_k - p_k) dl_k/di
    d2 log P(c) / di dj      = sum_k (onehot_k - p_k) d2l_k/di dj - Cov_p(dl/di, dl/dj)

This replaces autograd through the recursion plus a finite-difference Hessian (one
forward and one backward recursion for each of ``1 + P`` points) by ``1 + L + L(L+1)/2``
forward recursions for ``L`` learning parameters (3 for the base model), and no
autograd graph at all.
"""

from __future__ import annotations

import torch

from .q_learning import _Trials, kernel_steps, linear_scan, value_steps

__all__ = ["nll_derivatives"]

_VALUE_RATES = ("alpha", "forget")


def _scan(a: torch.Tensor, b: torch.Tensor, h0, carry: bool = True):
    """The states of one block of trials and (``carry``: else None) the state after its
    last trial."""
    h = linear_scan(a, b, h0)
    return h, torch.addcmul(b[-1], a[-1], h[-1]) if carry else None


def nll_derivatives(trials: _Trials, theta: torch.Tensor, columns: tuple[str, ...], q0: float,
                    n_options: int, block: int | None = None, derivatives: bool = True):
    """Negative log-likelihood, gradient and Hessian in natural units.

    The trials are taken ``block`` at a time, the recursions' last states carried from
    block to block, so that every intermediate is small (cache-resident, and memory the
    allocator reuses) whatever the number of trials and problems.

    Parameters
    ----------
    trials : _Trials
        The choices and rewards of ``n`` problems (``onehot`` of shape (trial, option, n)).
    theta : torch.Tensor of shape (n, P)
        Natural parameter values, one column per name in ``columns`` (QLearning's columns:
        ``alpha``, ``beta``, ``forget``, ``bias`` or ``bias_1 .. bias_{K-1}``,
        ``perseveration``, ``perseveration_rate``; not ``alpha_neg``).
    columns : tuple of str
    q0 : float
    n_options : int
    block : int or None, default=None
        Trials per block; None: about 2**17 (trial, option, problem) elements per block on
        the CPU (cache-sized), 2**24 on a GPU, at least 64 trials.
    derivatives : bool, default=True
        False: the negative log-likelihood only (``g`` and ``H`` are None).

    Returns
    -------
    f : torch.Tensor of shape (n,)
    g : torch.Tensor of shape (n, P)
    H : torch.Tensor of shape (n, P, P)
    """
    if "alpha_neg" in columns:
        raise ValueError("nll_derivatives: alpha_neg makes the recursion nonlinear.")
    n, P = theta.shape
    if block is None:  # CPU: cache-sized blocks; GPU: few blocks (each costs kernel launches)
        budget = 2**17 if theta.device.type == "cpu" else 2**24
        block = max(64, budget // max(1, n_options * n))
    like = dict(dtype=theta.dtype, device=theta.device)
    col = {c: j for j, c in enumerate(columns)}
    par = {c: theta[:, j] for c, j in col.items()}
    rates = [c for c in _VALUE_RATES if c in par] if derivatives else []
    pairs = [(ci, cj) for i, ci in enumerate(rates) for cj in rates[i:]]
    pers = "perseveration" in par
    biases = ["bias"] if "bias" in par else [c for c in columns if c.startswith("bias_")]
    offsets, units = None, {}
    for k, c in enumerate(biases, start=1):  # option k's logit moves with bias_k
        units[c] = torch.zeros(n_options, 1, **like)
        units[c][k] = 1.0
        offsets = units[c] * par[c] if offsets is None else offsets + units[c] * par[c]
    # the recursions' states before the next block: values, their first and second
    # derivatives by the value learning rates, the kernel and its two derivatives
    Q = torch.full((n_options, n), float(q0), **like)
    D = {c: torch.zeros_like(Q) for c in rates}
    E = {pair: torch.zeros_like(Q) for pair in pairs}
    CK = D_ck = E_ck = torch.zeros_like(Q)
    f = torch.zeros(n, **like)
    g = torch.zeros(n, P, **like)
    H = torch.zeros(n, P, P, **like)
    beta = par["beta"]
    n_trials = trials.onehot.shape[0]
    for t0 in range(0, n_trials, block):
        carry = t0 + block < n_trials  # another block follows
        onehot = trials.onehot[t0:t0 + block]  # (t, K, n)
        answered = trials.answered[t0:t0 + block, None]
        reward = trials.reward[t0:t0 + block, None]
        a, b = value_steps(onehot, reward, answered, par["alpha"], par.get("forget"), q0)
        slope = {"alpha": -onehot}  # d a / d rate
        if "forget" in par:
            unchosen = answered - onehot
            slope["forget"] = -unchosen
        values, Q = _scan(a, b, Q, carry)
        forcing = {}
        if "alpha" in rates:
            forcing["alpha"] = onehot * (reward - values)
        if "forget" in rates:
            forcing["forget"] = unchosen * (q0 - values)
        dl = {"beta": values}  # d logits / d parameter, broadcastable to (t, K, n)
        d2l = {}               # the nonzero second derivatives of the logits
        first = {}
        for c in rates:
            first[c], D[c] = _scan(a, forcing[c], D[c], carry)
            dl[c] = beta * first[c]
            d2l[(c, "beta")] = first[c]
        for ci, cj in pairs:
            cross = (2 * slope[ci] * first[ci] if ci == cj
                     else slope[ci] * first[cj] + slope[cj] * first[ci])
            second, E[(ci, cj)] = _scan(a, cross, E[(ci, cj)], carry)
            d2l[(ci, cj)] = beta * second
        logits = beta * values if offsets is None else beta * values + offsets
        if pers:  # the choice kernel: a = 1 - rate answered, b = rate onehot
            rate, weight = par["perseveration_rate"], par["perseveration"]
            a_ck, b_ck = kernel_steps(onehot, answered, rate)
            a_ck = a_ck.expand_as(onehot)
            kernel, CK = _scan(a_ck, b_ck, CK, carry)
            logits = logits + weight * kernel
            if derivatives:
                d_kernel, D_ck = _scan(a_ck, onehot - answered * kernel, D_ck, carry)
                e_kernel, E_ck = _scan(a_ck, -2 * answered * d_kernel, E_ck, carry)
                dl["perseveration"] = kernel
                dl["perseveration_rate"] = weight * d_kernel
                d2l[("perseveration", "perseveration_rate")] = d_kernel
                d2l[("perseveration_rate", "perseveration_rate")] = weight * e_kernel
        dl.update(units)
        if n_options == 2:  # everything through the logit difference l1 - l0, per trial
            _two_options(logits, onehot[:, 1], answered[:, 0], dl, d2l, col, f, g, H,
                         derivatives)
        else:
            _many_options(logits, onehot, answered, dl, d2l, col, f, g, H, derivatives)
    return (f, g, H) if derivatives else (f, None, None)


def _accumulate(g, H, col, dl, d2l, weighted, covariance) -> None:
    """Add one block's terms to ``g`` and ``H`` (the negative log-likelihood's): ``g`` gets
    ``-weighted(dl_c)`` (the logit derivatives weighted by the residuals, summed); ``H``
    gets the covariance of the logit derivatives under p minus the residual-weighted
    second derivatives, ``covariance(ci, cj) - weighted(d2l_ij)``, filled symmetrically."""
    for c, d in dl.items():
        g[:, col[c]] -= weighted(d)
    names = list(dl)
    for i, ci in enumerate(names):
        for cj in names[i:]:
            h = covariance(ci, cj)
            second = d2l.get((ci, cj), d2l.get((cj, ci)))
            if second is not None:
                h = h - weighted(second)
            H[:, col[ci], col[cj]] += h
            if ci != cj:
                H[:, col[cj], col[ci]] += h


def _many_options(logits, onehot, answered, dl, d2l, col, f, g, H, derivatives: bool):
    """Accumulate ``f``, ``g``, ``H`` of one block of trials for any number of options:
    ``-log P(c) = -log_softmax(l)_c``, its gradient ``-sum_k (onehot_k - p_k) dl_k`` and
    Hessian ``Cov_p(dl, dl) - sum_k (onehot_k - p_k) d2l_k``."""
    log_p = torch.log_softmax(logits, dim=1)
    f -= (onehot * log_p).sum((0, 1))
    if not derivatives:
        return
    p = log_p.exp() * answered
    resid = onehot - p  # zero on unanswered trials
    mean = {c: (p * d).sum(1) for c, d in dl.items()}  # (t, n)
    _accumulate(g, H, col, dl, d2l, lambda d: (resid * d).sum((0, 1)),
                lambda ci, cj: ((p * dl[ci] * dl[cj]).sum(1) - mean[ci] * mean[cj]).sum(0))


def _difference(d: torch.Tensor) -> torch.Tensor:
    """``d[:, 1] - d[:, 0]`` of a (t, 2, n) tensor, or of a bias unit (2, 1)."""
    return d[1] - d[0] if d.ndim == 2 else d[:, 1] - d[:, 0]


def _two_options(logits, chose_1, answered, dl, d2l, col, f, g, H, derivatives: bool):
    """Accumulate ``f``, ``g``, ``H`` of one block of trials for two options: with
    ``d = l1 - l0`` and ``p1 = sigmoid(d)``, ``-log P(c) = softplus(-/+ d)``, its gradient
    ``-(onehot_1 - p1) dd`` and Hessian ``p1 p0 dd dd^T - (onehot_1 - p1) d2d``."""
    d = logits[:, 1] - logits[:, 0]  # (t, n)
    f += (torch.nn.functional.softplus(d * (1 - 2 * chose_1)) * answered).sum(0)
    if not derivatives:
        return
    p1 = torch.sigmoid(d)
    resid = chose_1 - p1 * answered  # zero on unanswered trials
    weight = p1 * (1 - p1) * answered
    diff = {c: _difference(v) for c, v in dl.items()}
    _accumulate(g, H, col, dl, d2l, lambda v: (resid * _difference(v)).sum(0),
                lambda ci, cj: (weight * diff[ci] * diff[cj]).sum(0))
