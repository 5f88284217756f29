"""QLearning: Q-learning choice models fit to behaviour by maximum likelihood, batched.

The estimator: its parameters and bounds, the fitted tables, and the model run over
trials (choice probabilities, values and RPEs, simulated agents). The fit itself, all
subjects x all restarts as one batched optimisation with exact Newton steps, is
:func:`neuroml.rl._maximum_likelihood.fit_subjects`.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from .._validation import Interval
from ..base import NeuroMLEstimator
from ..device import resolve_device, seed_from, to_numpy
from ..errors import ParameterError
from . import bandit
from ._choice_parameters import (
    DEFAULT_BOUNDS,
    at_bound,
    count_options,
    parameter_bounds,
    parameter_columns,
)
from ._maximum_likelihood import fit_subjects, split_parameters
from .q_learning import _prepare, _run

__all__ = ["QLearning", "DEFAULT_BOUNDS"]

_MIN_TRIALS = 10


class QLearning(NeuroMLEstimator):
    """Q-learning choice model (Wilson & Collins 2019, model 3 and extensions) fit by ML.

    On each answered trial the chosen option's value moves towards the reward,
    ``Q[c] <- Q[c] + alpha (r - Q[c])`` (values start at ``q0``), and choices follow
    ``P = softmax(beta Q + bias + perseveration CK)`` (see
    :func:`~neuroml.rl.q_learning.q_learning` for every term). All subjects x
    ``n_starts`` restarts are fit in one batched optimisation on ``device``: parameters
    go through a sigmoid into their bounds, exact gradients and Hessians come from one
    pass over the trials (without ``alpha_neg``; with it, autograd through the recursion
    and a finite-difference Hessian), each problem has its own damped Newton steps and
    convergence test; the best restart of each subject is kept. float64 throughout.

    Parameters
    ----------
    parameters : tuple of str, default=("alpha", "beta")
        The free parameters; must include ``"alpha"`` and ``"beta"``. Optional terms,
        each switched on by naming it: ``"alpha_neg"`` (learning rate for negative
        prediction errors), ``"forget"`` (unchosen values decay towards ``q0``),
        ``"bias"`` (a fixed logit preference for option 1, or ``bias_1 ..
        bias_{K-1}`` for ``K`` options) and ``"perseveration"`` (Wilson & Collins' model
        5 choice kernel: naming it fits its weight ``perseveration`` and its rate
        ``perseveration_rate``).
    q0 : float, default=0.5
        Initial value of every option (finite).
    bounds : dict, default=None
        ``{name: (low, high)}`` overriding the defaults: ``alpha``, ``alpha_neg``,
        ``forget``, ``perseveration_rate`` in [0, 1]; ``beta`` in [0, 50]; ``bias`` and
        ``perseveration`` in [-5, 5]. Each a pair of finite numbers, ``low <= high``,
        within the parameter's domain (:data:`~neuroml.rl.q_learning.PARAMETER_DOMAINS`:
        the rates within [0, 1], ``beta >= 0``, ``bias`` and ``perseveration`` any
        finite numbers). ``low == high`` fixes a parameter at that value
        (e.g. ``{"perseveration_rate": (1, 1)}``: a kernel of the last choice only); a
        fixed parameter is not counted in ``aic_``/``bic_``.
    n_options : int, default=None
        Number of options ``K`` of the task. None: the largest choice + 1 (at least 2),
        and then, with more than two options, every one of ``0 .. K-1`` must be chosen
        by some subject (so that 1-based codes are caught); give ``n_options`` for a
        task with options nobody chose.
    n_starts : int, default=8
        Restarts per subject. ``4 n_starts`` candidates per subject are drawn from
        ``random_state`` (a Latin hypercube, uniform over [-4, 4] before the sigmoid:
        1.8 % to 98.2 % of each parameter's range); their NLL is evaluated in one batch
        and the restarts are the lowest-NLL candidates that lie apart from each other
        (distinct basins; an optimum near a bound has its own). A restart stops early
        when it meets another restart of its subject or when its Newton model cannot
        bring it within 1 (NLL) of its subject's best (with three or more parameters,
        only once its gradient is small: far from an optimum that forecast is myopic).
    max_iter : int, default=200
        Evaluations per (subject, restart) problem: its start, then one per Newton round
        (each one batched call: the NLL, its gradient and Hessian at the trial point;
        with ``alpha_neg`` the NLL and gradient there and at ``P`` finite-difference
        neighbours); ``max_iter=1`` evaluates the starts only. Once at most ``2**11 // T``
        problems are left (``T``: the longest subject's trials), a round tries the step
        at six lengths (1/4 to 8 times the Newton step) in its one call and keeps the
        best: such small calls cost their fixed overhead, not their arithmetic.
    tol : float, default=1e-6
        A problem has converged when the largest gradient component of its NLL with
        respect to the unconstrained (pre-sigmoid) parameters is below ``tol``, or when
        its next Newton step would lower the NLL by less than ``1e-4 tol``.
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Draws the restarts.

    Attributes
    ----------
    params_ : DataFrame (subject, parameter)
        The fitted parameters of each subject, in natural units, indexed by subject (in
        order of first appearance).
    nll_, aic_, bic_ : Series (subject,)
        Negative log-likelihood of the answered trials, ``2k + 2 nll`` and
        ``k log(n_trials) + 2 nll`` (``k`` free parameters).
    n_trials_ : Series (subject,)
        Answered trials of each subject.
    summary_ : DataFrame
        One row per subject: ``subject``, the parameters, ``nll``, ``aic``, ``bic``,
        ``n_trials``, ``n_iter`` (evaluations of the best restart), ``converged``,
        ``constant_choice`` and ``at_bound``: the free parameters within 1e-4 of their
        range of a bound, comma-separated (``""`` when none).
    parameters_ : tuple of str
        The fitted parameter columns.
    bounds_ : dict
        ``{column: (low, high)}`` used.
    n_options_ : int
        Number of options ``K``: ``n_options``, or the largest choice + 1, at least 2; shared by all
        subjects (an option a subject never chooses keeps its value ``q0`` for that
        subject and still takes choice probability).
    device_ : torch.device

    Notes
    -----
    Trials with a negative or NaN choice had no response: they are left out of the
    likelihood and change no value. A subject whose answered choices never vary has an
    unidentified ``beta`` (the likelihood keeps rising as ``beta`` grows): ``beta`` is
    reported at its upper bound and the other parameters are fit with it held there
    (``summary_["constant_choice"]`` marks such subjects). More often a parameter ends at
    a bound because the model describes the choices poorly (a learning rate at 0 with
    beta at 50 expresses a slowly drifting preference); ``summary_["at_bound"]`` names
    such parameters, so they are not read as estimates.

    Examples
    --------
    >>> from neuroml.rl.bandit import block_probabilities
    >>> p = block_probabilities(300, block_length=50)
    >>> sim = QLearning().simulate(300, p, params={"alpha": 0.3, "beta": 5.0}, random_state=0)
    >>> model = QLearning(random_state=0).fit(sim["choice"], sim["reward"])
    >>> model.params_.columns.tolist()
    ['alpha', 'beta']
    """

    _parameter_constraints: ClassVar[dict] = {
        "parameters": [tuple, list],
        "q0": [Interval(numbers.Real, -np.inf, np.inf, closed="neither")],
        "bounds": [None, dict],
        "n_starts": [Interval(numbers.Integral, 1, None)],
        "n_options": [None, Interval(numbers.Integral, 2, None)],
        "max_iter": [Interval(numbers.Integral, 1, None)],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "device": ["device"],
        "random_state": ["random_state"],
    }
    _sklearn_checks: ClassVar[bool] = False
    _test_params: ClassVar[dict] = {"n_starts": 2, "max_iter": 30}

    def __init__(self, parameters=("alpha", "beta"), *, q0=0.5, bounds=None, n_options=None,
                 n_starts=8, max_iter=200, tol=1e-6, device="auto", random_state=None):
        self.parameters = parameters
        self.q0 = q0
        self.bounds = bounds
        self.n_options = n_options
        self.n_starts = n_starts
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state

    @classmethod
    def _example_data(cls):
        rng = np.random.default_rng(0)
        choices = rng.integers(0, 2, 120)
        rewards = (rng.random(120) < np.where(choices == 0, 0.7, 0.3)).astype(float)
        subject = np.repeat(["a", "b"], 60)
        args = (choices, rewards, subject)
        return args, args

    # ------------------------------------------------------------------ model set-up
    # ------------------------------------------------------------------ fit
    def fit(self, choices, rewards, subject=None):
        """Fit the model to every subject's choices by maximum likelihood.

        Parameters
        ----------
        choices : array-like, Series, DataArray or tensor of shape (n_trials,)
            Option chosen on each trial, ``0 .. K-1``; negative or NaN: no response.
            ``K`` (the largest choice + 1, at least 2) is shared by all subjects; with
            more than two options every one of ``0 .. K-1`` must be chosen by some
            subject (1-based codes such as MATLAB's 1/2 are refused: subtract 1).
        rewards : same type, shape (n_trials,)
            Reward of the chosen option (NaN allowed only without a response).
        subject : array-like of shape (n_trials,), default=None
            Subject (or session) label of each trial, all subjects stacked, each
            subject's trials in order; None: one subject. Series among ``choices``,
            ``rewards`` and ``subject`` must share one index (they are not realigned).

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        data = bandit._stack_subjects(choices, rewards, subject, min_trials=_MIN_TRIALS)
        K = count_options(data.choice, self.n_options)
        columns = parameter_columns(self.parameters, K)
        bounds = parameter_bounds(self.bounds, columns)
        S, R, P = data.choice.shape[0], int(self.n_starts), len(columns)
        lo = np.array([bounds[c][0] for c in columns])
        hi = np.array([bounds[c][1] for c in columns])
        dev, dt = self.device_, torch.float64
        constant = np.array([np.unique(c[c >= 0]).size <= 1 for c in data.choice])
        fixed = np.broadcast_to(hi == lo, (S, P)).copy()
        fixed[constant, columns.index("beta")] = True  # reported at the upper bound
        trials = _prepare(torch.as_tensor(data.choice, device=dev).to(torch.int64),
                          torch.as_tensor(data.reward, dtype=dt, device=dev), K)
        vals, nll, n_iter, conv = fit_subjects(
            trials, columns, lo, hi, fixed, q0=float(self.q0), n_options=K,
            n_starts=R, max_iter=int(self.max_iter), tol=float(self.tol),
            rng=np.random.default_rng(seed_from(self.random_state)))
        k = int((hi > lo).sum())
        n = data.n_answered
        table = {"subject": data.subjects}
        table.update({c: vals[:, j] for j, c in enumerate(columns)})
        table.update(nll=nll, aic=2 * k + 2 * nll, bic=k * np.log(n) + 2 * nll, n_trials=n,
                     n_iter=n_iter, converged=conv, constant_choice=constant,
                     at_bound=at_bound(vals, lo, hi, columns))
        self.summary_ = pd.DataFrame(table)
        self.parameters_ = columns
        self.bounds_ = bounds
        self.n_options_ = K
        return self

    # ------------------------------------------------------------------ fitted tables
    def _by_subject(self, column: str) -> pd.Series:
        self._check_fitted()
        return pd.Series(self.summary_[column].to_numpy(), name=column,
                         index=pd.Index(self.summary_["subject"].to_numpy(), name="subject"))

    @property
    def params_(self) -> pd.DataFrame:
        """Fitted parameters, one row per subject (see the class docstring)."""
        self._check_fitted()
        return pd.DataFrame({c: self.summary_[c].to_numpy() for c in self.parameters_},
                            index=pd.Index(self.summary_["subject"].to_numpy(), name="subject"))

    @property
    def nll_(self) -> pd.Series:
        """Negative log-likelihood of each subject's answered trials."""
        return self._by_subject("nll")

    @property
    def aic_(self) -> pd.Series:
        """Akaike information criterion ``2k + 2 nll`` per subject."""
        return self._by_subject("aic")

    @property
    def bic_(self) -> pd.Series:
        """Bayesian information criterion ``k log(n_trials) + 2 nll`` per subject."""
        return self._by_subject("bic")

    @property
    def n_trials_(self) -> pd.Series:
        """Answered trials per subject."""
        return self._by_subject("n_trials")

    # ------------------------------------------------------------------ trajectories
    def _trajectories(self, choices, rewards, subject):
        """Run the fitted model over new (or the same) trials; returns the stacked data,
        and the learner's output per subject."""
        self._check_fitted()
        data = bandit._stack_subjects(choices, rewards, subject, n_options=self.n_options_)
        fitted = self.summary_["subject"].tolist()
        if subject is None:
            if len(fitted) != 1:
                raise ParameterError(f"The 'subject' argument is needed: the model was fit to "
                                     f"{len(fitted)} subjects.")
            rows = np.zeros(1, dtype=np.int64)
        else:
            where = {s: i for i, s in enumerate(fitted)}
            missing = [s for s in data.subjects.tolist() if s not in where]
            if missing:
                raise ParameterError(f"The 'subject' argument names {missing[:5]}, which the "
                                     f"model was not fit to (fitted: {fitted[:10]}...).")
            rows = np.array([where[s] for s in data.subjects.tolist()], dtype=np.int64)
        dev, dt = self.device_, torch.float64
        vals = torch.as_tensor(self.summary_[list(self.parameters_)].to_numpy(dtype=float)[rows],
                               dtype=dt, device=dev)
        trials = _prepare(torch.as_tensor(data.choice, device=dev).to(torch.int64),
                          torch.as_tensor(data.reward, dtype=dt, device=dev), self.n_options_)
        with torch.no_grad():
            out = _run(trials, split_parameters(vals, self.parameters_), float(self.q0),
                       self.n_options_)
        return data, out

    def _rows(self, data):
        """(subject, trial) tensor indices of the input rows in the padded layout."""
        return tuple(torch.as_tensor(np.array(v, dtype=np.int64), device=self.device_)
                     for v in (data.codes, data.position))

    def predict_proba(self, choices, rewards, subject=None):
        """Per-trial choice probabilities under each subject's fitted parameters.

        Parameters
        ----------
        choices, rewards, subject : as in :meth:`fit`
            The trials to run the model over (subjects must be fitted ones; ``subject``
            may be None when one subject was fit).

        Returns
        -------
        proba : ndarray, DataFrame, DataArray or tensor of shape (n_trials, n_options)
            ``P(option)`` on each trial before its choice, in the type of ``choices``
            (a Series gives a DataFrame with its index, a DataArray keeps its trial
            coordinates, a tensor stays on ``device_``).
        """
        data, out = self._trajectories(choices, rewards, subject)
        proba = out.log_prob.exp()[self._rows(data)]
        options = np.arange(self.n_options_)
        if isinstance(choices, torch.Tensor):
            return proba
        proba = to_numpy(proba)
        if isinstance(choices, pd.Series):
            return pd.DataFrame(proba, index=choices.index, columns=pd.Index(options,
                                                                               name="option"))
        if hasattr(choices, "dims") and hasattr(choices, "coords"):
            import xarray as xr

            dim = choices.dims[0]
            coords = {k: v for k, v in choices.coords.items() if set(v.dims) <= {dim}}
            return xr.DataArray(proba, dims=(dim, "option"), coords={**coords, "option": options})
        return proba

    def values(self, choices, rewards, subject=None) -> pd.DataFrame:
        """Per-trial values, prediction errors and choice probabilities of the fitted model.

        Parameters
        ----------
        choices, rewards, subject : as in :meth:`predict_proba`

        Returns
        -------
        DataFrame, one row per input trial (indexed like ``choices`` when it is a Series)
            ``subject``, ``trial`` (number within the subject), ``choice``, ``reward``,
            ``q_0 .. q_{K-1}`` (values before the trial's update), ``q_chosen``, ``rpe``
            (``reward - q_chosen``), ``p_chosen`` (probability of the choice made) and,
            with perseveration, ``kernel_0 ..``. ``q_chosen``, ``rpe`` and ``p_chosen``
            are NaN on trials without a response.
        """
        data, out = self._trajectories(choices, rewards, subject)
        idx = (data.codes, data.position)
        t_idx = self._rows(data)
        q = to_numpy(out.values[t_idx])
        ans = data.choice[idx] >= 0
        chosen = np.clip(data.choice[idx], 0, None).astype(np.int64)
        lp = to_numpy(out.log_prob[t_idx])
        rows = np.arange(len(chosen))
        table = {"subject": data.subjects[data.codes], "trial": data.position,
                 "choice": np.where(ans, chosen, -1), "reward": np.where(ans, data.reward[idx],
                                                                         np.nan)}
        table.update({f"q_{k}": q[:, k] for k in range(self.n_options_)})
        table["q_chosen"] = np.where(ans, q[rows, chosen], np.nan)
        table["rpe"] = np.where(ans, to_numpy(out.rpe[t_idx]), np.nan)
        table["p_chosen"] = np.where(ans, np.exp(lp[rows, chosen]), np.nan)
        if "perseveration" in self.parameters_:
            ck = to_numpy(out.kernel[t_idx])
            table.update({f"kernel_{k}": ck[:, k] for k in range(self.n_options_)})
        index = choices.index if isinstance(choices, pd.Series) else None
        return pd.DataFrame(table, index=index)

    # ------------------------------------------------------------------ simulation
    def simulate(self, n_trials, reward_probabilities, params=None, random_state=None):
        """Synthetic agents of this model on a bandit (probabilities may change in blocks).

        Parameters
        ----------
        n_trials : int
            At least 1.
        reward_probabilities : array-like of shape (K,), (n_trials, K) or (n_agents, n_trials, K)
            Probability that each option pays 1 (else 0) on each trial, e.g. from
            :func:`~neuroml.rl.bandit.block_probabilities`; a ``(K,)`` vector holds on
            every trial.
        params : DataFrame, dict or None, default=None
            The agents' parameters, one column/key per parameter of the model (scalars or
            arrays of length n_agents; a DataFrame's index labels the agents): finite
            numbers within each parameter's domain (the rates in [0, 1], ``beta >= 0``).
            None: one agent per fitted subject with its ``params_``.
        random_state : int, Generator or None, default=None

        Returns
        -------
        DataFrame
            One row per (agent, trial): ``subject``, ``trial``, ``choice``, ``reward`` and
            ``p_reward_0 .. p_reward_{K-1}``; ready for ``fit(df.choice, df.reward,
            df.subject)``.
        """
        self._validate_params()
        n_trials = bandit._count(n_trials, "n_trials", "QLearning.simulate")
        p = bandit._float_array(reward_probabilities)
        if p.ndim == 1:
            p = np.broadcast_to(p, (n_trials, p.size))
        if p.ndim not in (2, 3) or p.shape[-2] != n_trials:
            raise ParameterError(f"The 'reward_probabilities' argument must have shape (K,), "
                                 f"(n_trials, K) or (n_agents, n_trials, K) with n_trials="
                                 f"{n_trials}; got shape {p.shape}.")
        K = p.shape[-1]
        if params is None:
            params = self.params_
            if K != self.n_options_:
                raise ParameterError(f"The 'reward_probabilities' argument has {K} options; "
                                     f"the model was fit with {self.n_options_}.")
        columns = self.parameters_ if hasattr(self, "summary_") else parameter_columns(self.parameters, K)
        table = params if isinstance(params, pd.DataFrame) else None
        if not isinstance(params, pd.DataFrame | Mapping):
            raise ParameterError(f"The 'params' argument must be a dict or DataFrame of the "
                                 f"model's parameters {columns}; got {type(params).__name__}.")
        missing = [c for c in columns if c not in params or params[c] is None]
        extra = [k for k in params if k not in columns]
        if missing or extra:
            raise ParameterError(f"The 'params' argument must give exactly the model's "
                                 f"parameters {columns}; missing {missing}, unknown {extra}.")
        given = bandit._parameter_values(dict(params.items()), "QLearning.simulate")
        sim_params = {c: given[c] for c in columns if not c.startswith("bias_")}
        try:
            shape = np.broadcast_shapes(*(v.shape for v in given.values()))
        except ValueError:
            raise ParameterError(f"The 'params' argument gives values of shapes "
                                 f"{ {k: v.shape for k, v in given.items()} }, which do not "
                                 "broadcast to one number of agents.") from None
        bias = [np.broadcast_to(given[c], shape) for c in columns if c.startswith("bias_")]
        if bias:
            sim_params["bias"] = np.stack(bias, -1)
        dev = self.device_ if hasattr(self, "device_") else resolve_device(self.device)
        sim = bandit.simulate_bandit(sim_params, p, q0=float(self.q0), random_state=random_state,
                                     device=dev)
        n, T = sim.choices.shape
        labels = table.index.to_numpy() if table is not None and len(table) == n else np.arange(n)
        out = pd.DataFrame({"subject": np.repeat(labels, T), "trial": np.tile(np.arange(T), n),
                            "choice": to_numpy(sim.choices).ravel(),
                            "reward": to_numpy(sim.rewards).ravel()})
        probs = to_numpy(sim.reward_probabilities).reshape(n * T, K)
        for k in range(K):
            out[f"p_reward_{k}"] = probs[:, k]
        return out
