"""Pure, batched learners: Rescorla-Wagner, TD(lambda) and distributional TD.

Plain torch functions. A leading batch axis (or several) holds subjects, cells,
restarts or parameter sets: ``alpha``, ``gamma`` ... may be scalars or tensors of the
batch shape (e.g. ``(batch,)``), inputs may carry the batch axes or be shared by all
batch members, and everything broadcasts. The only Python loop is the recursion over
trials or time steps, which is inherent; never one over subjects, cells or parameter sets.

Precision and device follow the first tensor input (float32 stays float32, anything
else is float64); NumPy inputs give float64 tensors on the CPU.

Conventions (the same everywhere in :mod:`neuroml.rl`):

- Rescorla-Wagner, per trial ``n``: ``V_n = w . x_n``, ``delta_n = r_n - V_n``,
  ``w <- w + alpha delta_n x_n``.
- TD(lambda), per time step ``t`` of a trial: ``V(t) = w . x(t)``;
  ``delta(t) = r(t) + gamma V(t) - V(t-1)``; ``w <- w + alpha delta(t) e(t-1)``;
  ``e(t) = gamma lambda e(t-1) + x(t)``. Both values in ``delta(t)`` use the weights
  before the update at ``t`` (as in Ludvig, Sutton & Kehoe's simulation code), so
  ``V(t-1)`` in ``delta(t)`` already includes the update made at ``t-1``. Each trial
  starts afresh: ``V(-1) = 0`` and ``e(-1) = 0``, so ``delta(0) = r(0) + gamma V(0)`` and
  the first step changes no weight. A trial ends at its last bin: there is no transition
  out of it (pad trials with empty bins when the value should fall back to zero inside
  the trial).
- Distributional TD (Dabney et al. 2020), per reward sample ``r_k`` and cell ``i``:
  ``delta = r_k - V_i``; ``V_i <- V_i + alpha tau_i delta`` when ``delta > 0`` and
  ``V_i + alpha (1 - tau_i) delta`` otherwise (expectile cells), or the same with
  ``sign(delta)`` in place of ``delta`` (quantile cells). At convergence ``V_i`` is the
  ``tau_i``-expectile (quantile) of the reward distribution.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..device import to_numpy
from ..errors import ParameterError

__all__ = [
    "rescorla_wagner",
    "td_learning",
    "distributional_td",
    "RescorlaWagnerResult",
    "TDResult",
    "DistributionalTDResult",
]


class RescorlaWagnerResult(NamedTuple):
    """What :func:`rescorla_wagner` returns.

    Attributes
    ----------
    values : torch.Tensor of shape (*batch, trial)
        The prediction ``V_n = w . x_n`` on each trial, before that trial's update.
    rpe : torch.Tensor of shape (*batch, trial)
        The prediction error ``r_n - V_n``.
    weights : torch.Tensor of shape (*batch, cue)
        The weights after the last trial.
    weights_history : torch.Tensor of shape (*batch, trial, cue)
        The weights after each trial's update.
    """

    values: torch.Tensor
    rpe: torch.Tensor
    weights: torch.Tensor
    weights_history: torch.Tensor


class TDResult(NamedTuple):
    """What :func:`td_learning` returns.

    Attributes
    ----------
    values : torch.Tensor of shape (*batch, trial, time)
        ``V(t) = w . x(t)`` with the weights before the update at ``t``.
    rpe : torch.Tensor of shape (*batch, trial, time)
        ``delta(t)``; ``rpe[..., n, t]`` is the TD error of bin ``t`` of trial ``n``.
    weights : torch.Tensor of shape (*batch, feature)
        The weights after the last time step.
    weights_history : torch.Tensor of shape (*batch, trial, feature)
        The weights at the end of each trial.
    """

    values: torch.Tensor
    rpe: torch.Tensor
    weights: torch.Tensor
    weights_history: torch.Tensor


class DistributionalTDResult(NamedTuple):
    """What :func:`distributional_td` returns.

    Attributes
    ----------
    values : torch.Tensor of shape (*batch, cell)
        Each cell's value after the last update.
    history : torch.Tensor of shape (*batch, record, cell)
        The values after ``steps[j]`` updates (``steps[0] = 0``: the initial values).
    steps : torch.Tensor of shape (record,), int64
        Updates done at each record: ``0, record_every, 2 record_every, ...`` and the
        last update.
    """

    values: torch.Tensor
    history: torch.Tensor
    steps: torch.Tensor


# ---------------------------------------------------------------------- helpers
def _reference(*args) -> tuple[torch.device, torch.dtype]:
    """Device and precision of the first tensor among ``args`` (CPU, float64 without)."""
    for a in args:
        if isinstance(a, torch.Tensor):
            dtype = a.dtype if a.dtype in (torch.float32, torch.float64) else torch.float64
            return a.device, dtype
    return torch.device("cpu"), torch.float64


def _tensor(x, name: str, device, dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    try:
        return torch.as_tensor(to_numpy(x).astype(float), dtype=dtype, device=device)
    except (TypeError, ValueError):
        raise ParameterError(
            f"The '{name}' argument must be numeric (a number, array or tensor); got "
            f"{type(x).__name__}."
        ) from None


def _check_ndim(t: torch.Tensor, name: str, min_ndim: int, what: str) -> None:
    if t.ndim < min_ndim:
        raise ParameterError(
            f"The '{name}' argument must have shape {what}; got shape {tuple(t.shape)}."
        )


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ParameterError(f"The '{name}' argument contains NaN or infinity.")


def _check_unit_interval(t: torch.Tensor, name: str, owner: str) -> None:
    """Raise unless every entry of the rate ``t`` is finite and in [0, 1]."""
    ok = torch.isfinite(t) & (t >= 0) & (t <= 1)
    if not bool(ok.all()):
        bad = to_numpy(t)[~to_numpy(ok)]
        raise ParameterError(
            f"The '{name}' argument of {owner} must lie in [0, 1] (every entry, when it is "
            f"a tensor of the batch shape). Got {bad[:5].tolist()}"
            f"{' ...' if bad.size > 5 else ''} instead."
        )


def _batch_shape(owner: str, **shapes) -> torch.Size:
    try:
        return torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        listed = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
        raise ParameterError(
            f"{owner}: the batch axes of the inputs do not broadcast ({listed})."
        ) from None


# ---------------------------------------------------------------------- learners
def rescorla_wagner(cues, rewards, alpha, v0=0.0) -> RescorlaWagnerResult:
    """Rescorla-Wagner learning with compound cues, batched.

    On trial ``n``: ``V_n = w . x_n``; ``delta_n = r_n - V_n``; ``w <- w + alpha
    delta_n x_n``. Only the cues present on a trial (non-zero ``x``) change their weight.

    Parameters
    ----------
    cues : array-like or torch.Tensor of shape (*batch, trial, cue)
        Cue presence (0/1) or intensity ``x_n`` on each trial.
    rewards : array-like or torch.Tensor of shape (*batch, trial)
        Reward ``r_n`` on each trial.
    alpha : float or torch.Tensor of the batch shape
        Learning rate in [0, 1] (e.g. one per parameter set, shape ``(batch,)``).
    v0 : float or array-like of shape (*batch, cue), default=0.0
        Initial weights (associative strengths).

    Returns
    -------
    RescorlaWagnerResult
        ``values``, ``rpe`` ``(*batch, trial)``; ``weights`` ``(*batch, cue)``;
        ``weights_history`` ``(*batch, trial, cue)``.

    Examples
    --------
    >>> import torch
    >>> out = rescorla_wagner(torch.ones(3, 1, dtype=torch.float64), torch.ones(3), 0.5)
    >>> out.values.tolist()
    [0.0, 0.5, 0.75]
    """
    device, dtype = _reference(cues, rewards)
    x = _tensor(cues, "cues", device, dtype)
    r = _tensor(rewards, "rewards", device, dtype)
    a = _tensor(alpha, "alpha", device, dtype)
    _check_unit_interval(a, "alpha", "rescorla_wagner")
    w0 = _tensor(v0, "v0", device, dtype)
    _check_ndim(x, "cues", 2, "(..., trial, cue)")
    _check_ndim(r, "rewards", 1, "(..., trial)")
    if x.shape[-2] != r.shape[-1]:
        raise ParameterError(
            f"rescorla_wagner: cues have {x.shape[-2]} trials (shape {tuple(x.shape)}) but "
            f"rewards have {r.shape[-1]} (shape {tuple(r.shape)})."
        )
    _check_finite(x, "cues")
    _check_finite(r, "rewards")
    n_trials, n_cues = x.shape[-2:]
    batch = _batch_shape("rescorla_wagner", cues=x.shape[:-2], rewards=r.shape[:-1],
                         alpha=a.shape, v0=w0.shape[:-1])
    w = w0.expand(*batch, n_cues)
    a = a.expand(batch)[..., None]
    values, history = [], []
    for n in range(n_trials):
        xn = x[..., n, :]
        values.append((w * xn).sum(-1).expand(batch))
        w = w + a * (r[..., n] - values[-1])[..., None] * xn
        history.append(w)
    if n_trials == 0:
        empty = torch.zeros(*batch, 0, dtype=dtype, device=device)
        return RescorlaWagnerResult(empty, empty, w, empty[..., None].expand(*batch, 0, n_cues))
    v = torch.stack(values, dim=-1)
    return RescorlaWagnerResult(v, r.expand(*batch, n_trials) - v, w,
                                torch.stack(history, dim=-2))


def td_learning(features, rewards, alpha, gamma, lam, w0=None) -> TDResult:
    """TD(lambda) with accumulating eligibility traces over trials of time bins, batched.

    For each trial, for ``t = 0 .. time-1`` (``V(-1) = 0``, ``e(-1) = 0``)::

        V(t)     = w . x(t)
        delta(t) = r(t) + gamma V(t) - V(t-1)
        w       <- w + alpha delta(t) e(t-1)
        e(t)     = gamma lambda e(t-1) + x(t)

    Both values in ``delta(t)`` use the weights before the update at ``t`` (so
    ``V(t-1)`` is recomputed after the update at ``t-1``, as in Ludvig, Sutton & Kehoe's
    code); traces and ``V(-1)`` reset at every trial start, so ``delta(0) = r(0) + gamma
    V(0)`` and the first bin changes no weight; there is no transition out of a trial's
    last bin. ``lam = 0`` is TD(0): ``w <- w + alpha delta(t) x(t-1)``.

    Parameters
    ----------
    features : torch.Tensor or array-like of shape (*batch, trial, time, feature)
        ``x(t)``, e.g. from :func:`~neuroml.rl.features.complete_serial_compound`.
    rewards : torch.Tensor or array-like of shape (*batch, trial, time)
        ``r(t)`` on the same grid.
    alpha, gamma, lam : float or torch.Tensor of the batch shape
        Learning rate, discount and trace decay ``lambda``, each in [0, 1].
    w0 : array-like of shape (*batch, feature), default=None
        Initial weights; None: zeros.

    Returns
    -------
    TDResult
        ``values``, ``rpe`` ``(*batch, trial, time)``; ``weights`` ``(*batch, feature)``;
        ``weights_history`` ``(*batch, trial, feature)`` (weights at each trial's end).
    """
    device, dtype = _reference(features, rewards)
    x = _tensor(features, "features", device, dtype)
    r = _tensor(rewards, "rewards", device, dtype)
    _check_ndim(x, "features", 3, "(..., trial, time, feature)")
    _check_ndim(r, "rewards", 2, "(..., trial, time)")
    if x.shape[-3:-1] != r.shape[-2:]:
        raise ParameterError(
            "td_learning: features and rewards are on different (trial, time) grids: "
            f"features {tuple(x.shape)} (trial, time, feature), rewards {tuple(r.shape)}."
        )
    _check_finite(x, "features")
    _check_finite(r, "rewards")
    a, g, lm = (_tensor(p, n, device, dtype) for p, n in
                ((alpha, "alpha"), (gamma, "gamma"), (lam, "lam")))
    for t, n in ((a, "alpha"), (g, "gamma"), (lm, "lam")):
        _check_unit_interval(t, n, "td_learning")
    n_trials, n_time, n_feat = x.shape[-3:]
    w = torch.zeros(n_feat, dtype=dtype, device=device) if w0 is None else \
        _tensor(w0, "w0", device, dtype)
    batch = _batch_shape("td_learning", features=x.shape[:-3], rewards=r.shape[:-2],
                         alpha=a.shape, gamma=g.shape, lam=lm.shape, w0=w.shape[:-1])
    w = w.expand(*batch, n_feat)
    a, g = a.expand(batch), g.expand(batch)
    gl = (g * lm.expand(batch))[..., None]
    values, rpes, history = [], [], []
    zero = torch.zeros(batch, dtype=dtype, device=device)
    for n in range(n_trials):
        e = torch.zeros(*batch, n_feat, dtype=dtype, device=device)
        v_prev = zero
        for t in range(n_time):
            xt = x[..., n, t, :]
            v = (w * xt).sum(-1)
            delta = r[..., n, t] + g * v - v_prev
            w = w + (a * delta)[..., None] * e
            e = gl * e + xt
            v_prev = (w * xt).sum(-1)
            values.append(v.expand(batch))
            rpes.append(delta)
        history.append(w)
    shape = (*batch, n_trials, n_time)
    if n_trials == 0 or n_time == 0:
        empty = torch.zeros(shape, dtype=dtype, device=device)
        hist = torch.stack(history, -2) if history else torch.zeros(*batch, 0, n_feat,
                                                                    dtype=dtype, device=device)
        return TDResult(empty, empty, w, hist)
    return TDResult(torch.stack(values, -1).reshape(shape), torch.stack(rpes, -1).reshape(shape),
                    w, torch.stack(history, -2))


def distributional_td(rewards, taus, alpha, kind: str = "expectile", v0=0.0, *,
                      record_every: int = 1) -> DistributionalTDResult:
    """Distributional TD for immediate rewards: a population of asymmetric learners.

    Cell ``i`` learns from each reward sample ``r_k`` with ``delta = r_k - V_i`` and
    learning rates ``alpha+ = alpha tau_i`` (``delta > 0``), ``alpha- = alpha (1 - tau_i)``
    (``delta < 0``)::

        expectile:  V_i <- V_i + alpha+- * delta
        quantile:   V_i <- V_i + alpha+- * sign(delta)

    The expectile rule's fixed point is the ``tau_i``-expectile of the reward
    distribution, the quantile rule's the ``tau_i``-quantile (Dabney et al. 2020); with a
    small ``alpha`` the cells hover around them.

    The recursion runs in place on preallocated buffers under ``torch.no_grad()`` (no
    gradient is tracked): four small tensor operations per sample.

    Parameters
    ----------
    rewards : torch.Tensor or array-like of shape (*batch, step)
        Reward samples, presented in order.
    taus : array-like or torch.Tensor of shape (cell,)
        Each cell's asymmetry ``tau_i`` in (0, 1).
    alpha : float or torch.Tensor broadcastable to (*batch, cell)
        Learning rate: in [0, 1] for expectile cells (a larger one overshoots the reward
        that moved it); any finite value >= 0 for quantile cells, whose step is in reward
        units.
    kind : {"expectile", "quantile"}, default="expectile"
    v0 : float or array-like broadcastable to (*batch, cell), default=0.0
        Initial values.
    record_every : int, default=1
        Keep the values every ``record_every`` updates in ``history`` (and after the last).

    Returns
    -------
    DistributionalTDResult
        ``values`` ``(*batch, cell)``, ``history`` ``(*batch, record, cell)``, ``steps``.
    """
    if kind not in ("expectile", "quantile"):
        raise ParameterError(
            "The 'kind' parameter of distributional_td must be a str among {'expectile', "
            f"'quantile'}}. Got {kind!r} instead."
        )
    if not isinstance(record_every, int) or isinstance(record_every, bool) or record_every < 1:
        raise ParameterError(
            "The 'record_every' parameter of distributional_td must be an int in the range "
            f"[1, inf). Got {record_every!r} instead."
        )
    device, dtype = _reference(rewards, taus)
    r = _tensor(rewards, "rewards", device, dtype)
    tau = _tensor(taus, "taus", device, dtype)
    _check_ndim(r, "rewards", 1, "(..., step)")
    if tau.ndim != 1 or tau.numel() == 0:
        raise ParameterError(
            f"The 'taus' argument must be a non-empty 1-D array; got shape {tuple(tau.shape)}."
        )
    _check_finite(r, "rewards")
    if not bool(((tau > 0) & (tau < 1)).all()):
        raise ParameterError(
            f"The 'taus' argument must lie in the open interval (0, 1); got {to_numpy(tau)}."
        )
    a = _tensor(alpha, "alpha", device, dtype)
    if kind == "expectile":
        _check_unit_interval(a, "alpha", "distributional_td")
    elif not bool((torch.isfinite(a) & (a >= 0)).all()):
        raise ParameterError("The 'alpha' argument of distributional_td must be finite and "
                             f">= 0 for quantile cells. Got {to_numpy(a).ravel()[:5].tolist()}.")
    start = _tensor(v0, "v0", device, dtype)
    n_steps = r.shape[-1]
    batch = _batch_shape("distributional_td", rewards=r.shape[:-1], alpha=a.shape[:-1],
                         v0=start.shape[:-1])
    shape = (*batch, tau.numel())
    steps = list(range(0, n_steps + 1, record_every))
    if steps[-1] != n_steps:
        steps.append(n_steps)
    with torch.no_grad():
        # rate = c1 + c2 sign(delta) is alpha+ when delta > 0 and alpha- when delta < 0, so
        # one step is value += rate * delta (expectile) or rate * sign(delta) (quantile):
        # four small operations per sample, on preallocated buffers.
        a_pos = (a * tau).expand(shape)
        a_neg = (a * (1 - tau)).expand(shape)
        c1 = ((a_pos + a_neg) / 2).contiguous()
        c2 = ((a_pos - a_neg) / 2).contiguous()
        value = start.expand(shape).clone()
        history = torch.empty(*shape[:-1], len(steps), shape[-1], dtype=dtype, device=device)
        history[..., 0, :] = value
        rk = r.expand(*batch, n_steps)[..., None].unbind(-2)  # n_steps views of (*batch, 1)
        delta = torch.empty(shape, dtype=dtype, device=device)
        sign = torch.empty(shape, dtype=dtype, device=device)
        rate = torch.empty(shape, dtype=dtype, device=device)
        moved = delta if kind == "expectile" else sign
        j = 1
        for k in range(n_steps):
            torch.sub(rk[k], value, out=delta)
            torch.sign(delta, out=sign)
            torch.addcmul(c1, c2, sign, out=rate)
            value.addcmul_(rate, moved)
            if k + 1 == steps[j]:
                history[..., j, :] = value
                j += 1
    return DistributionalTDResult(value, history,
                                  torch.tensor(steps, dtype=torch.int64, device=device))
