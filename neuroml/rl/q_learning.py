"""Q-learning for choices between options (a bandit), as a pure, batched torch function.

The base model is model 3 of Wilson & Collins (2019, eLife 8:e49547, "Ten simple rules
for the computational modeling of behavioral data"): values start at ``q0``; on each
answered trial the chosen option's value moves towards the reward,
``Q[c] <- Q[c] + alpha (r - Q[c])``, the others stay; the choice probabilities are
``softmax(beta Q)``. Optional terms (each used only when its parameter is given):

- ``alpha_neg``: a separate learning rate for negative prediction errors (``alpha`` is
  used when ``r - Q[c] >= 0``, ``alpha_neg`` when it is negative).
- ``forget``: on answered trials the unchosen values decay towards ``q0``,
  ``Q[u] <- Q[u] + forget (q0 - Q[u])``.
- ``bias``: a fixed preference added to the logits: for two options one number added
  to option 1's logit; for ``K`` options ``K - 1`` numbers for options ``1 .. K-1``
  (option 0 is the reference).
- ``perseveration`` and ``perseveration_rate``: the choice kernel of Wilson & Collins'
  model 5: ``CK`` starts at 0; on answered trials ``CK <- CK + perseveration_rate
  (onehot(c) - CK)``; ``perseveration`` is its weight in the logits.

So on trial ``t`` (values before the trial's update)::

    logits(t) = beta Q(t) + bias + perseveration CK(t)
    P(c_t)    = softmax(logits(t))[c_t]
    delta(t)  = r(t) - Q(t)[c_t]                      (the reward-prediction error)

A trial without a response (a negative choice) changes nothing and contributes nothing
to the likelihood. All batch members (subjects, restarts, parameter sets) run at once;
the only Python loop is the recursion over trials. Precision and device follow the
first tensor among the inputs (float32 stays float32, anything else is float64); NumPy
input gives float64 tensors on the CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..device import to_numpy
from ..errors import ParameterError

__all__ = ["q_learning", "QLearningResult", "PARAMETER_NAMES", "PARAMETER_DOMAINS"]

#: Every parameter a Q-learning model may have, in the order fitted tables list them.
PARAMETER_NAMES = ("alpha", "alpha_neg", "beta", "forget", "bias", "perseveration",
                   "perseveration_rate")
#: The values each parameter may take, ``(low, high)`` inclusive (any finite number
#: where a side is infinite): learning and decay rates are fractions, ``beta`` is not
#: negative (a negative inverse temperature would avoid the better option).
PARAMETER_DOMAINS = {"alpha": (0.0, 1.0), "alpha_neg": (0.0, 1.0), "beta": (0.0, np.inf),
                     "forget": (0.0, 1.0), "bias": (-np.inf, np.inf),
                     "perseveration": (-np.inf, np.inf), "perseveration_rate": (0.0, 1.0)}


class QLearningResult(NamedTuple):
    """What :func:`q_learning` returns.

    Attributes
    ----------
    values : torch.Tensor of shape (*batch, trial, option)
        ``Q(t)``: the values on each trial, before that trial's update.
    rpe : torch.Tensor of shape (*batch, trial)
        ``delta(t) = r(t) - Q(t)[c_t]``; 0 on trials without a response.
    log_prob : torch.Tensor of shape (*batch, trial, option)
        Log choice probabilities ``log softmax(logits(t))`` (defined on every trial).
    log_likelihood : torch.Tensor of shape (*batch, trial)
        ``log P(c_t)``, 0 on trials without a response; ``-log_likelihood.sum(-1)`` is
        the negative log-likelihood.
    kernel : torch.Tensor of shape (*batch, trial, option)
        The choice kernel ``CK(t)`` before each trial's update (zeros without
        perseveration).
    """

    values: torch.Tensor
    rpe: torch.Tensor
    log_prob: torch.Tensor
    log_likelihood: torch.Tensor
    kernel: torch.Tensor


class _Trials(NamedTuple):
    """Choices and rewards laid out for the recursion: trial axis first, then the option
    axis, the batch axis last (element-wise operations on contiguous rows, reductions
    over options as outer reductions)."""

    onehot: torch.Tensor    # (trial, option, batch); all zero on trials without a response
    reward: torch.Tensor    # (trial, batch); 0 on trials without a response
    answered: torch.Tensor  # (trial, batch); 1.0 where there was a response
    choice: torch.Tensor    # (batch, trial) int64, -1 where there was no response

    def take(self, index) -> _Trials:
        """The trials of batch members ``index`` (a tensor, or a slice for views)."""
        return _Trials(self.onehot[:, :, index], self.reward[:, index],
                       self.answered[:, index], self.choice[index])


def _prepare(choices: torch.Tensor, rewards: torch.Tensor, n_options: int) -> _Trials:
    """Lay out ``(batch, trial)`` choices (int64, negative: no response) and rewards
    (anything, NaN included, where unanswered) for :func:`_run`."""
    answered = choices >= 0
    choice = torch.where(answered, choices, -1)
    options = torch.arange(n_options, device=choices.device)
    onehot = (choice.t()[:, None, :] == options[None, :, None]).to(rewards.dtype)
    zero = torch.zeros((), dtype=rewards.dtype, device=rewards.device)
    reward = torch.where(answered, rewards, zero).t().contiguous()
    return _Trials(onehot.contiguous(), reward, answered.t().to(rewards.dtype).contiguous(),
                   choice)


def _bias_offsets(bias: torch.Tensor | None, n_options: int) -> torch.Tensor | None:
    """``(option, *lead)`` logit offsets from ``bias`` of shape ``lead`` (two options) or
    ``(*lead, K-1)``; option 0 gets 0."""
    if bias is None:
        return None
    b = bias[None] if n_options == 2 else torch.movedim(bias, -1, 0)
    return torch.cat([torch.zeros_like(b[:1]), b], dim=0)


def _logits(Q, CK, params: dict, n_options: int) -> torch.Tensor:
    """``beta Q + bias + perseveration CK`` for ``Q`` of shape ``(option, *lead)`` or
    ``(trial, option, *lead)``, parameters of shape ``lead`` (broadcast from the right)."""
    out = params["beta"] * Q
    bias = _bias_offsets(params.get("bias"), n_options)
    if bias is not None:
        out = out + bias
    if params.get("perseveration") is not None:
        out = out + params["perseveration"] * CK
    return out


def _step(Q, CK, onehot, reward, answered, params: dict, q0: float):
    """One trial's update of the values ``Q`` and choice kernel ``CK`` (``(option, *lead)``).

    ``onehot`` ``(option, ..., batch)`` (zeros without a response), ``reward`` and
    ``answered`` ``(batch,)``; parameters of shape ``lead``, whose last axis is the batch.
    """
    delta = reward - Q
    lr = params["alpha"]
    if params.get("alpha_neg") is not None:
        lr = torch.where(delta < 0, params["alpha_neg"], lr)
    Q = torch.addcmul(Q, lr * onehot, delta)
    if params.get("forget") is not None:
        Q = Q + params["forget"] * (answered - onehot) * (q0 - Q)
    if CK is not None:
        CK = CK + params["perseveration_rate"] * (onehot - answered * CK)
    return Q, CK


def _lead_shape(params: dict, batch: int, n_options: int) -> torch.Size:
    shapes = [(batch,)] + [v.shape[:-1] if k == "bias" and n_options > 2 else v.shape
                           for k, v in params.items() if v is not None]
    return torch.broadcast_shapes(*shapes)


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0) -> torch.Tensor:
    """``h[0] = h0``, ``h[t + 1] = a[t] * h[t] + b[t]`` for ``t < T - 1`` (``a``, ``b`` and
    ``h0`` broadcast to the shape of ``h``, trial axis first; ``a[T - 1]`` and ``b[T - 1]``
    are not used), without autograd.

    A recursive-doubling scan: consecutive pairs of steps combine into one step
    (``a' = a[2j + 1] a[2j]``, ``b' = a[2j + 1] b[2j] + b[2j + 1]``), the even states are
    the scan of the combined steps, and each odd state is one step from its even
    neighbour. About ``2 log2(T)`` vectorised operations per level of halving instead of
    ``T`` sequential ones (each level does half the previous level's work); the last 16
    steps run one by one.
    """
    shape = a.shape if a.shape == b.shape else torch.broadcast_shapes(a.shape, b.shape)
    h = b.new_empty(shape)
    h[0] = h0
    if shape[0] > 1:
        _scan_into(h, a[:-1].expand(shape[0] - 1, *shape[1:]),
                   b[:-1].expand(shape[0] - 1, *shape[1:]))
    return h


def _scan_into(h: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """Fill ``h[1:]`` from ``h[0]`` and the ``len(h) - 1`` steps ``a``, ``b``."""
    steps = a.shape[0]
    if steps <= 16:
        hs = h.unbind(0)  # the per-step views made at once, not one indexing call each
        for a_t, b_t, h_t, h_next in zip(a.unbind(0), b.unbind(0), hs[:-1], hs[1:]):
            torch.addcmul(b_t, a_t, h_t, out=h_next)
        return
    pairs = steps // 2
    a0, b0 = a[0::2], b[0::2]
    a1, b1 = a[1::2][:pairs], b[1::2][:pairs]
    even = h[0::2]  # h[0], h[2], ..., h[2 pairs]: the scan of the combined steps
    _scan_into(even, a1 * a0[:pairs], torch.addcmul(b1, a1, b0[:pairs]))
    odd = h[1::2]
    torch.addcmul(b0[:odd.shape[0]], a0[:odd.shape[0]], even[:odd.shape[0]], out=odd)


class _LinearRecurrence(torch.autograd.Function):
    """States ``h[0] = h0``, ``h[t + 1] = a[t] * h[t] + b[t]`` for ``t < T - 1``, as one
    autograd node: the forward pass is :func:`linear_scan`, the backward pass the adjoint
    recursion ``lam[t] = g[t] + a[t] * lam[t + 1]``, the same scan reversed (autograd
    through the loop would record several nodes per step and replay them one by one). The
    backward pass is differentiable itself (Hessians through :func:`q_learning`)."""

    @staticmethod
    def forward(ctx, a, b, h0):
        h = linear_scan(a, b, h0)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, grad):
        a, h = ctx.saved_tensors
        # lam[t] = dL/dh[t], a linear recurrence backwards in time (the same scan on the
        # reversed steps, itself a _LinearRecurrence so that second derivatives exist), in
        # rows 0..T-1 of a buffer whose row T is zero, so that the gradient of b (lam[t + 1],
        # and 0 for the unused last step) is a view of it
        rest = h.shape[1:]
        steps = torch.cat([a[:-1].flip(0).expand(len(a) - 1, *rest), a[-1:].expand(1, *rest)])
        reverse = _LinearRecurrence.apply(steps, torch.cat([grad[:-1].flip(0), grad[-1:]]),
                                          grad[-1])
        lam = torch.cat([reverse.flip(0), torch.zeros_like(grad[:1])])
        grad_a = lam[1:] * h if ctx.needs_input_grad[0] else None
        grad_b = lam[1:] if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, lam[0] if ctx.needs_input_grad[2] else None


def value_steps(onehot, reward, answered, alpha, forget, q0: float):
    """The steps ``a``, ``b`` of the values' recurrence ``Q(t + 1) = a(t) Q(t) + b(t)``
    (models without ``alpha_neg``): the chosen option moves by ``alpha`` towards the
    reward, ``a = 1 - alpha onehot``, ``b = alpha onehot r``; with ``forget`` (None: none)
    the unchosen options of answered trials decay towards ``q0``, ``a -= forget
    unchosen``, ``b += forget q0 unchosen``. Arguments broadcast, trial axis first."""
    step = alpha * onehot
    a, b = 1 - step, step * reward
    if forget is not None:
        decay = forget * (answered - onehot)
        a, b = a - decay, b + q0 * decay
    return a, b


def kernel_steps(onehot, answered, rate):
    """The steps of the choice kernel's recurrence: on answered trials it decays by
    ``rate`` towards the one-hot choice, ``a = 1 - rate answered``, ``b = rate onehot``."""
    return 1 - rate * answered, rate * onehot


def _linear_states(trials: _Trials, params: dict, q0: float, n_options: int, lead):
    """Values and choice kernel ``(trial, option, *lead)`` of the models without
    ``alpha_neg``: every update is linear in the values, ``Q(t + 1) = a(t) Q(t) + b(t)``
    with ``a`` and ``b`` known from the parameters and the trials, so the whole
    recursion is one :class:`_LinearRecurrence` (values and kernel side by side)."""
    n_trials, _, batch = trials.onehot.shape
    ones = [1] * (len(lead) - 1)
    onehot = trials.onehot.reshape(n_trials, n_options, *ones, batch)
    answered = trials.answered.reshape(n_trials, 1, *ones, batch)
    a, b = value_steps(onehot, trials.reward.reshape(n_trials, 1, *ones, batch), answered,
                       params["alpha"], params.get("forget"), q0)  # (trial, option, *lead)
    h0 = torch.full((n_options, *lead), float(q0), dtype=a.dtype, device=a.device)
    if params.get("perseveration") is None:
        return _LinearRecurrence.apply(a, b, h0), None
    a_ck, b_ck = kernel_steps(onehot, answered, params["perseveration_rate"])
    h = _LinearRecurrence.apply(torch.cat([a, a_ck.expand_as(a)], 1), torch.cat([b, b_ck], 1),
                                torch.cat([h0, torch.zeros_like(h0)]))
    return h[:, :n_options], h[:, n_options:]


def _nonlinear_states(trials: _Trials, params: dict, q0: float, n_options: int, lead):
    """Values and choice kernel ``(trial, option, *lead)``, one :func:`_step` per trial."""
    n_trials, _, batch = trials.onehot.shape
    ones = [1] * (len(lead) - 1)
    ref = trials.reward
    Q = torch.full((n_options, *lead), float(q0), dtype=ref.dtype, device=ref.device)
    CK = torch.zeros_like(Q) if params.get("perseveration") is not None else None
    qs, cks = [], []
    for t in range(n_trials):
        qs.append(Q)
        if CK is not None:
            cks.append(CK)
        Q, CK = _step(Q, CK, trials.onehot[t].reshape(n_options, *ones, batch), trials.reward[t],
                      trials.answered[t], params, q0)
    # trial axis first: the gradient of each step's values is then a contiguous slice
    return torch.stack(qs), (torch.stack(cks) if CK is not None else None)


def _run(trials: _Trials, params: dict, q0: float, n_options: int, *,
         full: bool = True) -> QLearningResult | torch.Tensor:
    """The recursion over trials (see :func:`q_learning`).

    ``params`` holds tensors of one shape ``lead`` (``bias``: ``(*lead, K-1)``, or
    ``lead`` for two options) whose last axis broadcasts against the trials' batch
    axis, e.g. ``(batch,)`` or ``(copies, batch)``. Returns a :class:`QLearningResult`
    with outputs of shape ``(*lead, trial, ...)``, or with ``full=False`` only the
    negative log-likelihood ``(*lead,)``.
    """
    n_trials, _, batch = trials.onehot.shape
    ref = trials.reward
    params = {k: v for k, v in params.items() if v is not None}
    lead = _lead_shape(params, batch, n_options)
    ones = [1] * (len(lead) - 1)
    pers = "perseveration" in params
    if n_trials == 0:
        values = torch.zeros(0, n_options, *lead, dtype=ref.dtype, device=ref.device)
        kernel = torch.zeros_like(values) if pers else None
    elif "alpha_neg" in params:  # the learning rate depends on the sign of delta
        values, kernel = _nonlinear_states(trials, params, q0, n_options, lead)
    else:
        values, kernel = _linear_states(trials, params, q0, n_options, lead)
    logits = _logits(values, kernel, params, n_options)
    onehot = trials.onehot.reshape(n_trials, n_options, *ones, batch)
    answered = trials.answered.reshape(n_trials, *ones, batch)
    if not full and n_options == 2:
        # log P(c) = -softplus(l_other - l_c): one difference instead of a logsumexp;
        # an unanswered trial (no option chosen) gets the sign of option 0 and weight 0
        sign = 1 - 2 * onehot[:, 1]
        lost = torch.nn.functional.softplus((logits[:, 1] - logits[:, 0]) * sign)
        return (lost * answered).sum(0)
    lse = torch.logsumexp(logits, dim=1)
    log_lik = ((logits * onehot).sum(1) - lse) * answered
    if not full:
        return -log_lik.sum(0)
    rpe = (trials.reward.reshape(n_trials, *ones, batch) - (values * onehot).sum(1)) * answered
    if kernel is None:
        kernel = torch.zeros_like(values)
    batch_first = [*range(2, 2 + len(lead)), 0, 1]
    return QLearningResult(values.permute(batch_first), rpe.movedim(0, -1),
                           (logits - lse[:, None]).permute(batch_first),
                           log_lik.movedim(0, -1), kernel.permute(batch_first))


def _as_tensor(x, name: str, device, dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    try:
        return torch.as_tensor(to_numpy(x).astype(float), dtype=dtype, device=device)
    except (TypeError, ValueError):
        raise ParameterError(f"The '{name}' argument must be numeric (a number, array or "
                             f"tensor); got {type(x).__name__}.") from None


def q_learning(choices, rewards, alpha, beta, *, q0: float = 0.5, alpha_neg=None, forget=None,
               bias=None, perseveration=None, perseveration_rate=None,
               n_options: int | None = None) -> QLearningResult:
    """Run Q-learning over trials of choices and rewards, batched (see the module docstring).

    Parameters
    ----------
    choices : array-like or torch.Tensor of shape (*batch, trial)
        The option chosen on each trial, an integer in ``0 .. n_options - 1``; a negative
        value or NaN marks a trial without a response (no update, no likelihood).
    rewards : array-like or torch.Tensor of shape (*batch, trial)
        The reward of the chosen option on each trial (ignored, NaN allowed, on trials
        without a response).
    alpha, beta : float or torch.Tensor of the batch shape
        Learning rate and inverse temperature.
    q0 : float, default=0.5
        The initial value of every option (and the value ``forget`` decays towards).
    alpha_neg, forget, perseveration, perseveration_rate : float or torch.Tensor of the batch shape, default=None
        Optional terms; None leaves the term out (``perseveration_rate`` is required with
        ``perseveration``).
    bias : float or torch.Tensor of shape (*batch,) or (*batch, n_options - 1), default=None
        Logit offsets of options ``1 .. n_options - 1`` (one number for two options).
    n_options : int, default=None
        Number of options ``K``; None: ``max(choices) + 1``, at least 2.

    Returns
    -------
    QLearningResult
        ``values``, ``log_prob``, ``kernel`` ``(*batch, trial, option)``; ``rpe`` and
        ``log_likelihood`` ``(*batch, trial)``. Differentiable with respect to tensor
        parameters (autograd runs through the recursion).

    Examples
    --------
    >>> import torch
    >>> out = q_learning([0, 0, 1], [1.0, 0.0, 1.0], alpha=0.5, beta=2.0)
    >>> out.values[:, 0].tolist()
    [0.5, 0.75, 0.375]
    >>> out.rpe.tolist()
    [0.5, -0.75, 0.5]
    """
    device, dtype = torch.device("cpu"), torch.float64
    for x in (choices, rewards, alpha, beta):
        if isinstance(x, torch.Tensor):
            device = x.device
            dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float64
            break
    c = _as_tensor(choices, "choices", device, dtype)
    r = _as_tensor(rewards, "rewards", device, dtype)
    if c.ndim < 1 or c.shape != r.shape:
        raise ParameterError(f"q_learning: 'choices' {tuple(c.shape)} and 'rewards' "
                             f"{tuple(r.shape)} must have the same shape (*batch, trial).")
    answered = torch.isfinite(c) & (c >= 0)
    if bool((answered & (c != torch.round(c))).any()):
        raise ParameterError("The 'choices' argument must hold integer option indices "
                             "(negative or NaN for no response).")
    if not bool(torch.isfinite(r[answered]).all()):
        raise ParameterError("The 'rewards' argument contains NaN or infinity on trials "
                             "with a response.")
    ci = torch.where(answered, c, -1.0).to(torch.int64)
    top = int(ci.max()) + 1 if ci.numel() else 0
    K = max(2, top) if n_options is None else int(n_options)
    if top > K:
        raise ParameterError(f"The 'choices' argument holds option {top - 1}, outside 0..{K - 1} "
                             f"(n_options={K}).")
    if perseveration is not None and perseveration_rate is None:
        raise ParameterError("q_learning: 'perseveration_rate' is required with 'perseveration'.")
    raw = {"alpha": alpha, "beta": beta, "alpha_neg": alpha_neg, "forget": forget,
           "perseveration": perseveration,
           "perseveration_rate": perseveration_rate if perseveration is not None else None}
    given = {k: _as_tensor(v, k, device, dtype) for k, v in raw.items() if v is not None}
    bias_t = None if bias is None else _as_tensor(bias, "bias", device, dtype)
    batch_shape = c.shape[:-1]
    shapes = [batch_shape, *(v.shape for v in given.values())]
    if bias_t is not None:
        shapes.append(bias_t.shape[:-1] if K > 2 else bias_t.shape)
    try:
        batch_shape = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        raise ParameterError("q_learning: the batch shapes of the inputs and parameters do not "
                             "broadcast.") from None
    n = int(torch.tensor(batch_shape).prod()) if len(batch_shape) else 1
    params = {k: v.expand(batch_shape).reshape(n) for k, v in given.items()}
    if bias_t is not None:
        tail = (K - 1,) if K > 2 else ()
        params["bias"] = bias_t.expand((*batch_shape, *tail)).reshape(n, *tail)
    n_trials = c.shape[-1]
    trials = _prepare(ci.expand(*batch_shape, n_trials).reshape(n, n_trials),
                      r.expand(*batch_shape, n_trials).reshape(n, n_trials), K)
    out = _run(trials, params, q0, K)
    return QLearningResult(*(x.reshape(*batch_shape, *x.shape[1:]) for x in out))
