"""The Kalman filter decoder: a linear-Gaussian model of behaviour observed through neurons.

The decoder of Wu et al. (2003) and Neural_Decoding's ``KalmanFilterRegression``. The
behaviour (the *state*, e.g. velocity, or position, velocity and acceleration stacked)
evolves linearly, and the neurons are a noisy linear read-out of it::

    x_t = A x_{t-1} + b + w_t,        w_t ~ N(0, W)       (state model)
    y_t = H x_t     + d + q_t,        q_t ~ N(0, Q)       (observation model)

All four matrices are fitted by least squares on the training data, as Wu et al. do:
``A`` (and ``b``) by regressing each state on the previous one, over consecutive
valid time bins of the same trial only; ``H`` (and ``d``) by regressing the neurons on
the state; ``W`` and ``Q`` are the mean outer products of the residuals (divided by the
number of pairs, resp. of time bins, as Neural_Decoding). With ``fit_intercept=True``
the offsets ``b`` and ``d`` are fitted too (the same as centring, which
Neural_Decoding's examples do by hand); ``alpha`` adds a ridge penalty to both
regressions. The regressions use :class:`~neuroml.decoding.LinearDecoder`'s solver.

Decoding runs the standard Kalman filter forward through each trial, all trials at
once (the one loop is over time bins). The filter of a trial starts from the training
mean and covariance of the state (Neural_Decoding starts from the true first state,
which a decoder does not know). The covariance recursion does not depend on the data,
so it is shared by all trials.

With ``lag > 0`` the state at bin ``t`` is observed through the neurons at bin
``t - lag`` (Neural_Decoding's ``lag = -lag``): the first ``lag`` bins of each trial
have no observation and are decoded from the state model alone.

The update uses ``Q``'s pseudo-inverse in the information form
``P_t = (I + P_t^- H^T Q^+ H)^{-1} P_t^-``, ``K_t = P_t H^T Q^+`` (equal to the usual
``P^- H^T (H P^- H^T + Q)^{-1}`` when ``Q`` is invertible), so each step solves a
system the size of the state, not of the population, and a unit without residual
variance (e.g. silent in training) is ignored rather than breaking the inversion.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch

from .._parallel import threads_for
from .._validation import Interval
from ..device import to_numpy
from ..errors import ParameterError
from ._sequence_data import Sequences
from .wiener import _SequenceBaseline, ridge

__all__ = ["KalmanDecoder"]


def _shift(values: torch.Tensor, lag: int) -> torch.Tensor:
    """``values`` delayed by ``lag`` bins along time (zeros first): ``out[:, t] = values[:, t - lag]``."""
    if lag == 0:
        return values
    n_times = values.shape[1]
    return torch.nn.functional.pad(values, (0, 0, lag, 0))[:, :n_times]


class KalmanDecoder(_SequenceBaseline):
    """Kalman filter decoder with a linear-Gaussian state model fitted by least squares.

    State model ``x_t = A x_{t-1} + b + w_t``, ``w_t ~ N(0, W)``; observation model
    ``y_{t-lag} = H x_t + d + q_t``, ``q_t ~ N(0, Q)``: the neurons ``lag`` bins before
    bin ``t`` observe the state at bin ``t``. ``A, b, W``
    come from regressing each state on the previous one within trials, ``H, d, Q`` from
    regressing the neurons on the state (Wu et al. 2003; Neural_Decoding's
    ``KalmanFilterRegression`` with ``C=1``). :meth:`predict` returns the filtered state
    means, computed causally, each trial starting from the training mean and covariance
    of the state.

    Parameters
    ----------
    lag : int, default=0
        Bins by which the neurons precede the behaviour they observe (0: same bin). The
        first ``lag`` bins of each trial are decoded from the state model alone.
    alpha : float, default=0.0
        Ridge penalty on the two regressions (not on the offsets); 0 is the ordinary
        least squares of Wu et al.
    fit_intercept : bool, default=True
        Fit the offsets ``b`` and ``d`` (False: both are 0, as Neural_Decoding, which
        expects centred data).
    device : str or torch.device, default="auto"
        ``"auto"`` is the first CUDA GPU when there is one, else the CPU.

    Attributes
    ----------
    A_ : ndarray of shape (n_outputs, n_outputs)
        State transition matrix.
    W_ : ndarray of shape (n_outputs, n_outputs)
        Covariance of the state noise.
    H_ : ndarray of shape (n_units, n_outputs)
        Observation matrix (neurons from state).
    Q_ : ndarray of shape (n_units, n_units)
        Covariance of the observation noise.
    state_offset_ : ndarray of shape (n_outputs,)
        ``b`` (zeros when ``fit_intercept=False``).
    observation_offset_ : ndarray of shape (n_units,)
        ``d`` (zeros when ``fit_intercept=False``).
    initial_mean_ : ndarray of shape (n_outputs,)
        Mean of the state over the valid training bins: where each trial's filter starts.
    initial_cov_ : ndarray of shape (n_outputs, n_outputs)
        Covariance of the state over the valid training bins (divided by their number).
    flat_target_ : bool
        The target had no output axis ((n_trials, n_times) or (n_times,)); predictions
        then have none either.
    n_features_in_ : int
        Units.
    n_outputs_ : int
    output_dim_ : str
        Name of the output dimension of DataArray predictions.
    output_coords_ : ndarray or None
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.nn.kalman import KalmanDecoder
    >>> rng = np.random.default_rng(0)
    >>> x = np.zeros((30, 100))                          # 30 trials of an AR(1) state
    >>> for t in range(1, 100):
    ...     x[:, t] = 0.95 * x[:, t - 1] + rng.normal(size=30)
    >>> H = rng.normal(size=8)
    >>> Y = x[..., None] * H + rng.normal(size=(30, 100, 8))   # 8 noisy units
    >>> kf = KalmanDecoder(device="cpu").fit(Y, x)
    >>> bool(abs(kf.A_[0, 0] - 0.95) < 0.02), kf.H_.shape
    (True, (8, 1))
    >>> kf.score(Y, x) > 0.9
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "lag": [Interval(Integral, 0, None)],
        "alpha": [Interval(Real, 0, None, "left")],
        "fit_intercept": ["boolean"],
        "device": ["device"],
    }
    _test_params: ClassVar[dict] = {"device": "cpu"}
    _xfail_checks: ClassVar[dict] = {
        name: ("KalmanDecoder reads the rows of 2-D input as consecutive time bins of one "
               "recording and filters them in order, each estimate carrying the evidence of "
               "the rows before it, so predicting on a subset or a reordering of the rows "
               "changes the estimates")
        for name in ("check_methods_subset_invariance", "check_methods_sample_order_invariance")
    }

    def __init__(self, lag=0, *, alpha=0.0, fit_intercept=True, device="auto"):
        self.lag = lag
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.device = device

    def fit(self, X, y):
        """Fit the state and observation models by least squares.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units) or (n_times, n_units)
            Neural activity, trials NaN-padded at the end, or one continuous recording.
        y : array-like, DataArray, torch.Tensor or str
            The state per bin: (n_trials, n_times) or (n_trials, n_times, n_outputs);
            (n_times,) or (n_times, n_outputs) for a continuous recording. NaN allowed
            at padded steps.

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        seq = self._sequences(X, reset=True)
        targets = self._targets(y, seq, X)
        name = type(self).__name__
        pairs = seq.mask[:, 1:]  # bin t valid implies bin t - 1 valid (padding is at the end)
        observed = self._observed(seq)
        longest = int(seq.lengths.max())
        if not bool(pairs.any()):
            raise ParameterError(
                f"{name} fits its state model on consecutive time bins and needs a trial (or "
                f"recording) of at least 2 bins; the longest has {longest} (n_samples = "
                f"{longest}).")
        if not bool(observed.any()):
            raise ParameterError(
                f"{name} with lag={self.lag} needs a trial (or recording) longer than lag "
                f"bins, to have one observed bin; the longest has {longest}.")
        self._record_targets(targets)
        self.flat_target_ = bool(targets.squeeze)
        with threads_for(int(observed.sum()) * seq.n_units ** 2, self.device_):
            self._fit_models(seq, targets, pairs, observed)
        return self

    def _fit_models(self, seq: Sequences, targets, pairs: torch.Tensor,
                    observed: torch.Tensor) -> None:
        """Least-squares state and observation models (see the class docstring)."""
        alphas = self._alphas(1)
        S = torch.as_tensor(targets.values, dtype=torch.float64, device=self.device_)
        Y = _shift(seq.values.to(torch.float64), self.lag)

        prev, curr = S[:, :-1][pairs], S[:, 1:][pairs]
        coef, b = ridge(prev, curr, alphas, self.fit_intercept)
        resid = curr - prev @ coef - b
        W = resid.mT @ resid / resid.shape[0]

        state, obs = S[observed], Y[observed]
        coef_h, d = ridge(state, obs, alphas, self.fit_intercept)
        resid = obs - state @ coef_h - d
        Q = resid.mT @ resid / resid.shape[0]

        valid = S[seq.mask]
        mean = valid.mean(0)
        centred = valid - mean
        self.A_, self.W_ = to_numpy(coef.mT), to_numpy(_sym(W))
        self.H_, self.Q_ = to_numpy(coef_h.mT), to_numpy(_sym(Q))
        self.state_offset_, self.observation_offset_ = to_numpy(b), to_numpy(d)
        self.initial_mean_ = to_numpy(mean)
        self.initial_cov_ = to_numpy(_sym(centred.mT @ centred / valid.shape[0]))

    def _flat_output(self) -> bool:
        return bool(self.flat_target_)

    def _observed(self, seq: Sequences) -> torch.Tensor:
        """``(trial, time)`` bool: valid bins whose observation (``lag`` bins back) exists."""
        steps = torch.arange(seq.n_times, device=seq.mask.device)
        return seq.mask & (steps >= self.lag)[None]

    def _predict_sequences(self, seq: Sequences) -> torch.Tensor:
        """Filtered state means ``(trial, time, n_outputs)``, float64."""
        # many small operations, one per bin: torch's threads cost more than they give
        with threads_for(seq.n_trials * seq.n_units * self.n_outputs_, seq.values.device):
            return self._filter(seq)

    def _filter(self, seq: Sequences) -> torch.Tensor:
        dev = seq.values.device

        def t(a):
            return torch.as_tensor(np.asarray(a), dtype=torch.float64, device=dev)

        A, W, H, Q = t(self.A_), t(self.W_), t(self.H_), t(self.Q_)
        b, d = t(self.state_offset_), t(self.observation_offset_)
        G = H.mT @ torch.linalg.pinv(Q, hermitian=True)  # H^T Q^+, (k, units)
        M = G @ H                                         # H^T Q^+ H, (k, k)
        eye = torch.eye(M.shape[0], dtype=torch.float64, device=dev)
        Y = _shift(seq.values.to(torch.float64), self.lag) - d
        x = t(self.initial_mean_).expand(seq.n_trials, -1)
        P = t(self.initial_cov_)
        out = torch.empty((seq.n_trials, seq.n_times, M.shape[0]), dtype=torch.float64,
                          device=dev)
        for step in range(seq.n_times):
            if step > 0:  # predict
                x = x @ A.mT + b
                P = _sym(A @ P @ A.mT + W)
            if step >= self.lag:  # update with the observation
                P = _sym(torch.linalg.solve(eye + P @ M, P))
                K = P @ G
                x = x + (Y[:, step] - x @ H.mT) @ K.mT
            out[:, step] = x
        return out


def _sym(P: torch.Tensor) -> torch.Tensor:
    """The symmetric part of a square matrix (removes round-off asymmetry)."""
    return 0.5 * (P + P.mT)
