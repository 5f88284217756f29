"""Simulated bandits, and the choices and rewards of many subjects stacked for a fit.

- :func:`block_probabilities` makes reward probabilities that change in blocks, and
  :func:`simulate_bandit` runs batched Q-learning agents on them.
- ``_stack_subjects`` checks per-trial choices, rewards and subject labels and lays them
  out as a padded ``(subject, trial)`` batch for :class:`~neuroml.rl.choice.QLearning`.

Recorded bandit data come in through :mod:`neuroml.rl.choice_data`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .._validation import check_same_index, check_vector, plain
from ..device import to_numpy
from ..errors import ParameterError
from .q_learning import PARAMETER_DOMAINS, _logits, _step

__all__ = ["block_probabilities", "simulate_bandit", "BanditSimulation"]


def _whole(value) -> int | None:
    """``value`` as an int when it is a whole number (``50`` or ``50.0``, not ``True``)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    return int(value) if np.isfinite(value) and float(value).is_integer() else None


def _count(value, name: str, where: str) -> int:
    """``value`` as an int >= 1, else a ParameterError naming ``name``."""
    whole = _whole(value)
    if whole is None or whole < 1:
        raise ParameterError(f"{where}: '{name}' must be an integer >= 1; got "
                             f"{plain(value)!r}.")
    return whole


def block_probabilities(n_trials: int, probabilities=((0.8, 0.2), (0.2, 0.8)), block_length=50,
                        *, n_agents: int | None = None, random_state=None) -> np.ndarray:
    """Reward probabilities that change in blocks (by default they reverse).

    Parameters
    ----------
    n_trials : int
        At least 1.
    probabilities : array-like of shape (n_kinds, n_options), default=((0.8, 0.2), (0.2, 0.8))
        The blocks cycle through these rows (the first block uses row 0); a rectangular
        table of probabilities in [0, 1] (one row may be given as a 1-D sequence).
    block_length : int or (int, int), default=50
        Trials per block (at least 1), or a range ``(low, high)`` of integers
        (inclusive, ``1 <= low <= high``) each block's length is drawn from uniformly.
    n_agents : int, default=None
        Give every agent its own block lengths: output ``(n_agents, n_trials, K)``.
    random_state : int, Generator or None, default=None

    Returns
    -------
    ndarray of shape (n_trials, n_options) or (n_agents, n_trials, n_options)
    """
    n_trials = _count(n_trials, "n_trials", "block_probabilities")
    if n_agents is not None:
        n_agents = _count(n_agents, "n_agents", "block_probabilities")
    try:
        p = np.atleast_2d(np.asarray(probabilities, dtype=float))
    except (TypeError, ValueError):
        p = np.full((1, 1), np.nan)  # ragged rows or values that are not numbers
    if p.ndim != 2 or p.size == 0 or not ((p >= 0) & (p <= 1)).all():
        raise ParameterError(f"block_probabilities: 'probabilities' must be a rectangular "
                             f"table (n_kinds, n_options) of probabilities in [0, 1]; got "
                             f"{probabilities!r}.")
    pair = block_length.tolist() if isinstance(block_length, np.ndarray) else block_length
    pair = pair if isinstance(pair, tuple | list) else (pair, pair)
    pair = [_whole(v) for v in pair]
    if not (len(pair) == 2 and None not in pair and 1 <= pair[0] <= pair[1]):
        raise ParameterError(f"block_probabilities: 'block_length' must be an integer >= 1 "
                             f"or a (low, high) pair of integers with 1 <= low <= high; got "
                             f"{block_length!r}.")
    lo, hi = pair
    rng = np.random.default_rng(random_state)
    out = np.empty((n_agents or 1, n_trials, p.shape[1]))
    for a in range(out.shape[0]):
        lengths = rng.integers(int(lo), int(hi) + 1, size=n_trials // int(lo) + 1)
        kind = np.repeat(np.arange(lengths.size) % p.shape[0], lengths)[:n_trials]
        out[a] = p[kind]
    return out if n_agents is not None else out[0]


class BanditSimulation(NamedTuple):
    """What :func:`simulate_bandit` returns (tensors on the parameters' device).

    Attributes
    ----------
    choices : torch.Tensor of shape (agent, trial), int64
    rewards : torch.Tensor of shape (agent, trial)
    reward_probabilities : torch.Tensor of shape (agent, trial, option)
    """

    choices: torch.Tensor
    rewards: torch.Tensor
    reward_probabilities: torch.Tensor


def simulate_bandit(params: Mapping, reward_probabilities, *, q0: float = 0.5,
                    random_state=None, device=None) -> BanditSimulation:
    """Batched Q-learning agents choosing on a bandit (see :mod:`neuroml.rl.q_learning`).

    On each trial every agent draws its choice from ``softmax(beta Q + bias +
    perseveration CK)``, the chosen option pays 1 with its reward probability (else 0),
    and the agent learns as :func:`~neuroml.rl.q_learning.q_learning` does.

    Parameters
    ----------
    params : mapping of str to float or array-like of shape (n_agents,)
        ``alpha`` and ``beta``, optionally ``alpha_neg``, ``forget``, ``bias`` (shape
        ``(n_agents,)`` for two options or ``(n_agents, K-1)``), ``perseveration`` with
        ``perseveration_rate``. Finite numbers within each parameter's domain
        (:data:`~neuroml.rl.q_learning.PARAMETER_DOMAINS`: the rates in [0, 1],
        ``beta >= 0``).
    reward_probabilities : array-like of shape (K,), (n_trials, K) or (n_agents, n_trials, K)
        Probability that each option pays on each trial (e.g. from
        :func:`block_probabilities`); a ``(K,)`` vector is one trial: pass
        ``(n_trials, K)``.
    q0 : float, default=0.5
    random_state : int, Generator or None, default=None
        The uniform draws come from NumPy, so a seed gives the same agents on any device.
    device : str or torch.device, default=None
        Where to run; None: the CPU.

    Returns
    -------
    BanditSimulation
    """
    dev = torch.device("cpu") if device is None else torch.device(device)
    p = torch.as_tensor(_float_array(reward_probabilities), device=dev)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[-1] < 2 or p.shape[1] < 1 or not bool(((p >= 0) & (p <= 1)).all()):
        raise ParameterError("simulate_bandit: 'reward_probabilities' must be probabilities in "
                             "[0, 1] of shape (n_trials, K) or (n_agents, n_trials, K) with "
                             f"n_trials >= 1 and K >= 2; got shape {tuple(p.shape)}.")
    if not isinstance(params, Mapping | pd.DataFrame) or set(params) - set(PARAMETER_DOMAINS) \
            or not {"alpha", "beta"} <= set(params):
        got = sorted(params) if isinstance(params, Mapping | pd.DataFrame) else repr(params)
        raise ParameterError(f"simulate_bandit: 'params' must map 'alpha' and 'beta' (and "
                             f"optional terms of {sorted(PARAMETER_DOMAINS)}) to values; got "
                             f"{got}.")
    if isinstance(q0, np.ndarray) and q0.ndim == 0:
        q0 = q0.item()
    if not isinstance(q0, numbers.Real) or not np.isfinite(q0):
        raise ParameterError(f"simulate_bandit: 'q0' must be a finite number; got {q0!r}.")
    K = p.shape[-1]
    vals = {k: torch.as_tensor(v, device=dev) for k, v in
            _parameter_values(params, "simulate_bandit").items()}
    for k, v in vals.items():
        per_agent = k == "bias" and K > 2
        if v.ndim > 1 + per_agent or per_agent and (v.ndim == 0 or v.shape[-1] != K - 1):
            raise ParameterError(
                f"simulate_bandit: 'params' gives {k!r} shape {tuple(v.shape)}; it must be "
                + (f"(K-1,) or (n_agents, K-1) with K-1 = {K - 1}." if per_agent else
                   "a number or one value per agent, shape (n_agents,)."))

    def n_agents(k, v):
        if k == "bias" and K > 2:
            return v.shape[0] if v.ndim == 2 else 1
        return v.shape[0] if v.ndim else 1

    sizes = {n_agents(k, v) for k, v in vals.items()} | {p.shape[0]}
    n = max(sizes)
    if not sizes <= {1, n}:
        raise ParameterError(f"simulate_bandit: the parameters and 'reward_probabilities' "
                             f"disagree on the number of agents ({sorted(sizes)}).")
    for k, v in vals.items():
        vals[k] = v.reshape(-1, K - 1).expand(n, K - 1) if k == "bias" and K > 2 else \
            v.reshape(-1).expand(n)
    if "perseveration" in vals and "perseveration_rate" not in vals:
        raise ParameterError("simulate_bandit: 'perseveration' needs 'perseveration_rate'.")
    p = p.expand(n, *p.shape[1:])
    T = p.shape[1]
    rng = np.random.default_rng(random_state)
    u_choice = torch.as_tensor(rng.random((T, n)), device=dev)
    u_reward = torch.as_tensor(rng.random((T, n)), device=dev)
    Q = torch.full((K, n), float(q0), dtype=torch.float64, device=dev)
    CK = torch.zeros_like(Q) if "perseveration" in vals else None
    ones = torch.ones(n, dtype=torch.float64, device=dev)
    choices, rewards = [], []
    for t in range(T):
        prob = torch.softmax(_logits(Q, CK, vals, K), dim=0)
        c = (prob.cumsum(0) < u_choice[t]).sum(0).clamp(max=K - 1)
        r = (u_reward[t] < p[:, t].gather(1, c[:, None])[:, 0]).to(torch.float64)
        onehot = (c[None, :] == torch.arange(K, device=dev)[:, None]).to(torch.float64)
        Q, CK = _step(Q, CK, onehot, r, ones, vals, q0)
        choices.append(c)
        rewards.append(r)
    return BanditSimulation(torch.stack(choices, 1), torch.stack(rewards, 1), p)


def _float_array(values) -> np.ndarray:
    """``values`` as a float array, or a ParameterError (of 'reward_probabilities')."""
    try:
        return np.array(to_numpy(values), dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(f"'reward_probabilities' must be an array of probabilities; got "
                             f"{values!r}.") from None


def _parameter_values(params: Mapping, where: str) -> dict[str, np.ndarray]:
    """Each of ``params`` (names of :data:`~neuroml.rl.q_learning.PARAMETER_DOMAINS`,
    ``bias_k`` included; None values left out) as a float array, checked finite and
    within its parameter's domain; a ParameterError naming ``where`` and 'params' else."""
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        lo, hi = PARAMETER_DOMAINS["bias" if k.startswith("bias_") else k]
        try:
            arr = np.array(to_numpy(v), dtype=float)  # a copy: writable, for torch
        except (TypeError, ValueError):
            raise ParameterError(f"{where}: 'params' gives {k!r} the value {v!r}, which is not "
                                 "a number or an array of numbers.") from None
        wrong = ~(np.isfinite(arr) & (arr >= lo) & (arr <= hi))
        if wrong.any():
            allowed = ("a finite number" if hi == np.inf and lo == -np.inf else
                       f"a finite number >= {lo:g}" if hi == np.inf else f"in [{lo:g}, {hi:g}]")
            raise ParameterError(f"{where}: 'params' gives {k!r} the value "
                                 f"{plain(arr[wrong][0])!r}; it must be {allowed}.")
        out[k] = arr
    return out


class _Stacked(NamedTuple):
    """Trials of all subjects as padded ``(subject, trial)`` arrays."""

    choice: np.ndarray      # float; -1 where unanswered or padded
    reward: np.ndarray      # float; 0 where unanswered or padded
    rows: np.ndarray        # int; input row of each cell, -1 for padding
    subjects: np.ndarray    # labels in order of first appearance
    n_answered: np.ndarray  # answered trials per subject
    codes: np.ndarray       # subject index of each input row
    position: np.ndarray    # trial number of each input row within its subject


def _stack_subjects(choices, rewards, subject, *, min_trials: int = 0,
                    n_options: int | None = None) -> _Stacked:
    """Validate per-trial choices, rewards and subject labels; pad them per subject."""
    c = check_vector(choices, "choices", None, per="trial", kind="argument")
    r = check_vector(rewards, "rewards", None, per="trial", kind="argument")
    if r.size != c.size:
        raise ParameterError(f"The 'rewards' argument has {r.size} trials but 'choices' has "
                             f"{c.size}; give one reward per trial.")
    if subject is None:
        labels = np.zeros(c.size, dtype=np.int64)
    else:
        labels = np.asarray(to_numpy(subject) if not isinstance(subject, pd.Series)
                            else subject.to_numpy())
        if labels.ndim != 1 or labels.size != c.size:
            raise ParameterError(f"The 'subject' argument must give one label per trial "
                                 f"({c.size}); got shape {labels.shape}.")
    check_same_index({"choices": choices, "rewards": rewards, "subject": subject}, "QLearning")
    if min_trials and not c.size:
        raise ParameterError(f"The 'choices' argument holds no trials; a fit needs at least "
                             f"{min_trials} answered trials per subject.")
    answered = np.isfinite(c) & (c >= 0) | (c == np.inf)
    top = n_options if n_options is not None else np.inf
    bad = answered & ((c != np.round(c)) | (c >= top) | ~np.isfinite(c))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        allowed = "integers 0..K-1" if n_options is None else f"integers 0..{n_options - 1}"
        raise ParameterError(f"The 'choices' argument holds {c[i].item()!r} at trial index {i} "
                             f"({int(bad.sum())} such trials); choices must be {allowed}, "
                             "negative or NaN for no response.")
    nan_r = answered & ~np.isfinite(r)
    if nan_r.any():
        i = int(np.flatnonzero(nan_r)[0])
        raise ParameterError(f"The 'rewards' argument is NaN or infinite on {int(nan_r.sum())} "
                             f"trials with a response (the first: trial index {i}); only trials "
                             "without a response (negative or NaN choice) may lack a reward.")
    codes, subjects = pd.factorize(labels, sort=False)
    if (codes < 0).any():
        raise ParameterError("The 'subject' argument holds missing labels (NaN/None).")
    n_answered = np.bincount(codes, weights=answered, minlength=len(subjects)).astype(np.int64)
    few = np.flatnonzero(n_answered < min_trials)
    if few.size:
        label = subjects[few[0]]
        label = label.item() if isinstance(label, np.generic) else label
        raise ParameterError(f"The 'subject' argument gives subject {label!r} only "
                             f"{n_answered[few[0]]} answered trials ({few.size} subjects have "
                             f"fewer than {min_trials}); a fit needs at least {min_trials}.")
    position = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    S, T = len(subjects), int(position.max()) + 1 if c.size else 0
    rows = np.full((S, T), -1, dtype=np.int64)
    rows[codes, position] = np.arange(c.size)
    choice = np.full((S, T), -1.0)
    reward = np.zeros((S, T))
    choice[codes, position] = np.where(answered, c, -1.0)
    reward[codes, position] = np.where(answered, r, 0.0)
    return _Stacked(choice, reward, rows, np.asarray(subjects), n_answered,
                    codes, position)
