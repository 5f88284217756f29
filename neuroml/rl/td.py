"""Temporal-difference and Rescorla-Wagner models of Pavlovian learning, as estimators.

:class:`TDModel` runs TD(lambda) over trials of time bins: stimuli (cue onsets) are turned
into features (:mod:`neuroml.rl.features`), the value ``V(t) = w . x(t)`` is learned from
the rewards, and the model's trajectory over learning is kept: ``value_`` and ``rpe_``
(``delta(t) = r(t) + gamma V(t) - V(t-1)``) as ``(trial, time)`` DataArrays on the
input's grid, ready to compare with dopamine responses aligned by ``Recording.epochs``.
:class:`RescorlaWagner` is the trial-level model with compound cues. The conventions are
those of :mod:`neuroml.rl.learners`, which does the work; both run in float64 on the
estimator's device.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
import xarray as xr

from .._validation import Interval, Options
from ..base import NeuroMLEstimator
from ..device import to_numpy, to_tensor
from ..errors import ParameterError
from ._td_checks import (
    check_finite,
    first_nonfinite,
    numeric,
    ordered,
    trial_grid,
    without_equilibrium,
)
from .features import complete_serial_compound, microstimulus, presence
from .learners import rescorla_wagner, td_learning

__all__ = ["TDModel", "RescorlaWagner"]

_FEATURES = ("csc", "presence", "microstimulus")


# ---------------------------------------------------------------------- TD(lambda)
class TDModel(NeuroMLEstimator):
    """TD(lambda) over trials of time bins, with the stimulus representations of Ludvig,
    Sutton & Kehoe (2008).

    Per time bin: ``V(t) = w . x(t)``; ``delta(t) = r(t) + gamma V(t) - V(t-1)``;
    ``w <- w + alpha delta(t) e(t-1)``; ``e(t) = gamma lambda e(t-1) + x(t)``. Traces and
    ``V(-1)`` reset to 0 at each trial start, so ``delta(0) = r(0) + gamma V(0)``; there is
    no transition out of a trial's last bin (see Notes). Both values in ``delta(t)`` use
    the weights before the update at ``t`` (see :func:`neuroml.rl.learners.td_learning`). The
    model is deterministic; it runs in float64 on ``device_``. The recursion over bins
    is a few small operations per bin, so the CPU is the faster device for one model
    (measured: 300 trials x 40 bins in 0.8-1.0 s on a CPU, 2.1-2.3 s on an H200 GPU);
    pass ``device="cpu"``.

    Parameters
    ----------
    features : {"csc", "presence", "microstimulus"}, default="csc"
        Stimulus representation (:mod:`neuroml.rl.features`): complete serial compound,
        presence, or microstimuli.
    alpha : float, default=0.1
        Learning rate, in [0, 1] (0: no learning). If learning diverges (values reach NaN
        or infinity: a rate too large for the features, e.g. CSC features of several stimuli starting in
        the same bin, or long eligibility traces) ``fit`` raises a
        :class:`~neuroml.errors.ParameterError`.
    gamma : float, default=0.98
        Temporal discount per bin, in [0, 1].
    lam : float, default=0.0
        Eligibility-trace decay ``lambda`` in [0, 1]; 0 is TD(0).
    duration : int, default=None
        Bins a stimulus stays represented after its onset ("csc": features per stimulus;
        "presence": bins it is on). None: until the end of the trial.
    n_microstimuli : int, default=6
        Microstimuli per stimulus ("microstimulus").
    trace_decay : float, default=0.985
        Per-bin decay of the memory trace ("microstimulus"), in (0, 1).
    width : float, default=0.08
        Width of the microstimulus basis functions, > 0.
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Unused (the model is deterministic); kept for the uniform interface.

    Attributes
    ----------
    value_ : xarray.DataArray of shape (trial, time)
        ``V(t)`` during learning (weights before the update at ``t``), with the input's
        trial and time coordinates (non-dimension trial coordinates included).
    rpe_ : xarray.DataArray of shape (trial, time)
        ``delta(t)``: ``rpe_[n, t]`` is the TD error of bin ``t`` of trial ``n``.
    weights_ : ndarray of shape (n_features_,)
        The weights after the last trial.
    weights_history_ : ndarray of shape (trial, n_features_)
        The weights at the end of each trial.
    n_features_ : int
        Features per bin (stimuli x features per stimulus, stimulus-major).
    device_ : torch.device

    Notes
    -----
    A trial ends at its last bin: nothing tells the model that the trial is over (the
    next trial starts afresh, ``V(-1) = 0``). The weights of features still on at the
    last bin then lack the target that would tie them to the trial's end. With
    ``gamma < 1`` the discount provides one; with ``gamma = 1`` there may be no
    equilibrium: a ``"presence"`` feature with ``duration=None`` (on to the end) gains
    ``alpha`` x the reward on every trial, so the RPE at the cue grows without bound,
    and the microstimuli of a stimulus late in the trial (e.g. the reward's own trace)
    can make learning unstable. ``fit`` warns (``RuntimeWarning``, once) when
    ``gamma = 1``, the expected TD update has no equilibrium it contracts to, and the
    expected values it leads to over the trials given end above twice the largest reward
    and still growing (1.5-fold over the second half of the trials). CSC features
    stay bounded: the feature of the last bin is never updated. Set ``duration`` so the
    stimulus goes off before the end of the trial, leaving empty bins after it (an
    inter-trial interval), or use ``gamma < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> cue = np.zeros((50, 8)); cue[:, 2] = 1
    >>> reward = np.zeros((50, 8)); reward[:, 6] = 1
    >>> model = TDModel(alpha=0.5, gamma=1.0, device="cpu").fit(cue, reward)
    >>> round(float(model.rpe_[-1, 2]), 2), round(float(model.rpe_[-1, 6]), 2)
    (1.0, 0.0)
    """

    _parameter_constraints: ClassVar[dict] = {
        "features": [Options(_FEATURES)],
        "alpha": [Interval(Real, 0, 1, "both")],
        "gamma": [Interval(Real, 0, 1)],
        "lam": [Interval(Real, 0, 1)],
        "duration": [None, Interval(Integral, 1, None)],
        "n_microstimuli": [Interval(Integral, 1, None)],
        "trace_decay": [Interval(Real, 0, 1, "neither")],
        "width": [Interval(Real, 0, None, "neither")],
        "device": ["device"],
        "random_state": ["random_state"],
    }
    _sklearn_checks: ClassVar[bool] = False
    _test_params: ClassVar[dict] = {"device": "cpu"}

    def __init__(self, features="csc", *, alpha=0.1, gamma=0.98, lam=0.0, duration=None,
                 n_microstimuli=6, trace_decay=0.985, width=0.08, device="auto",
                 random_state=None):
        self.features = features
        self.alpha = alpha
        self.gamma = gamma
        self.lam = lam
        self.duration = duration
        self.n_microstimuli = n_microstimuli
        self.trace_decay = trace_decay
        self.width = width
        self.device = device
        self.random_state = random_state

    @classmethod
    def _example_data(cls):
        """Small (fit_args, call_args) for the common tests: 12 trials of 10 bins."""
        rng = np.random.default_rng(0)
        stimuli = np.zeros((12, 10))
        stimuli[:, 2] = 1
        rewards = np.zeros((12, 10))
        rewards[:, 7] = rng.random(12) < 0.8
        return (stimuli, rewards), ()

    def _features(self, onsets: torch.Tensor) -> torch.Tensor:
        if self.features == "csc":
            return complete_serial_compound(onsets, self.duration)
        if self.features == "presence":
            return presence(onsets, self.duration)
        return microstimulus(onsets, self.n_microstimuli, self.trace_decay, self.width)

    def fit(self, stimuli, rewards):
        """Learn over the trials in order and record the value and RPE of every bin.

        Parameters
        ----------
        stimuli : array-like, DataArray or tensor of shape (trial, time) or (trial, time, stimulus)
            Stimulus onsets (non-zero marks an onset). A DataArray needs dims ``trial``
            and ``time``; its coordinates along them are carried to ``value_``/``rpe_``.
        rewards : array-like, DataArray or tensor of shape (trial, time)
            Reward in each bin, on the same grid (same shape and, for DataArrays, the
            same ``trial``/``time`` coordinates).

        Returns
        -------
        self : TDModel
        """
        self._validate_params()
        device = self._resolve_device()
        s, r, coords = trial_grid(stimuli, rewards, type(self).__name__)
        onsets = to_tensor(s, device, torch.float64)
        with torch.no_grad():
            x = self._features(onsets)
            out = td_learning(x, to_tensor(r, device, torch.float64), float(self.alpha),
                              float(self.gamma), float(self.lam))
        values, rpe = to_numpy(out.values), to_numpy(out.rpe)
        first = first_nonfinite(values, rpe)
        if first is not None:
            sq = float((x**2).sum(-1).max())
            gl = float(self.gamma) * float(self.lam)
            gain = sq / (1.0 - gl) if gl < 1 else np.inf
            raise ParameterError(
                f"TDModel.fit: learning diverged: the values and RPEs are NaN or infinite from "
                f"trial index {first} of {values.shape[0]} on. The learning rate "
                f"alpha={self.alpha!r} is too large for the scale of the {self.features!r} "
                f"features: up to {sq:.3g} summed squared feature values in a bin, so with "
                f"gamma * lam = {gl:.3g} an update can change a value by about alpha x "
                f"{gain:.3g} times the TD error, and it overshoots without bound once that "
                "factor exceeds about 2. Use a smaller alpha (or a shorter trace, lam)."
            )
        if float(self.gamma) == 1.0:
            self._warn_without_equilibrium(s, x, r)
        dims = ("trial", "time")
        self.value_ = xr.DataArray(values, dims=dims, coords=coords, name="value")
        self.rpe_ = xr.DataArray(rpe, dims=dims, coords=coords, name="rpe")
        self.weights_ = to_numpy(out.weights)
        self.weights_history_ = to_numpy(out.weights_history)
        self.n_features_ = int(x.shape[-1])
        return self

    def _warn_without_equilibrium(self, s, x, r) -> None:
        """One RuntimeWarning when, with gamma = 1, the weights have no equilibrium."""
        found = without_equilibrium(s, x, r, float(self.lam), float(self.alpha))
        if found is None:
            return
        what, stimuli = found
        where = ", ".join(f"stimulus {i}" for i in np.flatnonzero(stimuli)[:5])
        warnings.warn(
            f"TDModel: with gamma=1, the {self.features!r} features of {where} are still on at "
            "the last bin of a trial, and a trial has no transition out of its last bin, so "
            f"nothing ties them to the end of the trial: {what}. The values and RPEs (e.g. at "
            "the cue) grow without bound as trials are added. Set 'duration' so the stimulus "
            "goes off before the end of the trial, leaving empty bins at the end of each "
            "trial (an inter-trial interval), or use gamma < 1.",
            RuntimeWarning, stacklevel=3)


# ---------------------------------------------------------------------- Rescorla-Wagner
class RescorlaWagner(NeuroMLEstimator):
    """Rescorla-Wagner learning with compound cues, trial by trial.

    On trial ``n`` with cue vector ``x_n`` (0/1 presence or intensities): ``V_n = w . x_n``,
    ``delta_n = r_n - V_n``, ``w <- w + alpha delta_n x_n`` (see
    :func:`neuroml.rl.learners.rescorla_wagner`). With one cue and a constant reward
    ``r``, ``V_n = r (1 - (1 - alpha)^n)`` from ``v0 = 0``. Runs in float64 on ``device_``.

    Parameters
    ----------
    alpha : float, default=0.1
        Learning rate, in [0, 1] (0: no learning). If learning diverges (values reach NaN
        or infinity: an update overshoots when ``alpha`` times the summed squared cue values of a trial
        exceeds 2) ``fit`` raises a :class:`~neuroml.errors.ParameterError`.
    v0 : float or array-like of shape (n_cues,), default=0.0
        Initial associative strength of every cue (or of each).
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Unused (the model is deterministic); kept for the uniform interface.

    Attributes
    ----------
    values_ : xarray.DataArray of shape (trial,)
        ``V_n``, the prediction on each trial before its update, with the input's trial
        coordinates.
    rpe_ : xarray.DataArray of shape (trial,)
        ``delta_n = r_n - V_n``.
    weights_ : ndarray of shape (n_cues_,)
        Associative strengths after the last trial.
    weights_history_ : ndarray of shape (trial, n_cues_)
        Associative strengths after each trial.
    n_cues_ : int
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> model = RescorlaWagner(alpha=0.5, device="cpu").fit(np.ones((3, 1)), np.ones(3))
    >>> model.values_.values.tolist()
    [0.0, 0.5, 0.75]
    """

    _parameter_constraints: ClassVar[dict] = {
        "alpha": [Interval(Real, 0, 1, "both")],
        "v0": [Interval(Real, None, None), "array-like"],
        "device": ["device"],
        "random_state": ["random_state"],
    }
    _sklearn_checks: ClassVar[bool] = False
    _test_params: ClassVar[dict] = {"device": "cpu"}

    def __init__(self, alpha=0.1, *, v0=0.0, device="auto", random_state=None):
        self.alpha = alpha
        self.v0 = v0
        self.device = device
        self.random_state = random_state

    @classmethod
    def _example_data(cls):
        """Small (fit_args, call_args) for the common tests: 20 trials, two cues."""
        rng = np.random.default_rng(0)
        cues = (rng.random((20, 2)) < 0.6).astype(float)
        rewards = cues @ np.array([1.0, 0.5])
        return (cues, rewards), ()

    def fit(self, cues, rewards):
        """Learn over the trials in order.

        Parameters
        ----------
        cues : array-like, DataArray or tensor of shape (trial, cue) or (trial,)
            Cue presence (0/1) or intensity per trial; 1-D is one cue. A DataArray's
            ``trial`` dim (else its first) is the trial axis, and its coordinates along
            it are carried to ``values_``/``rpe_``.
        rewards : array-like, DataArray or tensor of shape (trial,)
            Reward per trial.

        Returns
        -------
        self : RescorlaWagner
        """
        self._validate_params()
        device = self._resolve_device()
        name = type(self).__name__
        coords: dict = {}
        if isinstance(cues, xr.DataArray):
            cues = ordered(cues, "cues", ("trial",))
            coords = {k: (("trial",), c.values) for k, c in cues.coords.items()
                      if c.dims == (cues.dims[0],)}
        elif isinstance(rewards, xr.DataArray) and rewards.ndim == 1:
            coords = {k: (("trial",), c.values) for k, c in rewards.coords.items()
                      if c.dims == rewards.dims}
        x = numeric(cues, "cues")
        r = numeric(rewards, "rewards")
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ParameterError(f"{name} expects 'cues' of shape (trial, cue) or (trial,); "
                                 f"got shape {x.shape}.")
        if r.ndim != 1:
            raise ParameterError(f"{name} expects 'rewards' of shape (trial,); got shape "
                                 f"{r.shape}.")
        if x.shape[0] != r.shape[0]:
            raise ParameterError(f"cues and rewards must have one entry per trial: cues has "
                                 f"{x.shape[0]} trials (shape {x.shape}), rewards {r.shape[0]}.")
        if x.shape[0] == 0:
            raise ParameterError(f"{name}.fit needs at least one trial; got 0.")
        check_finite(x, "cues", name)
        check_finite(r, "rewards", name)
        v0 = numeric(self.v0, "v0")
        if v0.ndim > 1 or (v0.ndim == 1 and v0.shape[0] != x.shape[1]) or \
                not np.isfinite(v0).all():
            raise ParameterError(
                f"The 'v0' parameter of {name} must be a finite float or one value per cue "
                f"({x.shape[1]}). Got {self.v0!r} instead.")
        with torch.no_grad():
            out = rescorla_wagner(to_tensor(x, device, torch.float64),
                                  to_tensor(r, device, torch.float64), float(self.alpha),
                                  to_tensor(np.broadcast_to(v0, x.shape[1:]), device,
                                            torch.float64))
        values, rpe = to_numpy(out.values), to_numpy(out.rpe)
        first = first_nonfinite(values, rpe)
        if first is not None:
            sq = float((x**2).sum(1).max())
            raise ParameterError(
                f"{name}.fit: learning diverged: the values and RPEs are NaN or infinite from "
                f"trial index {first} of {x.shape[0]} on. An update changes the prediction for "
                "a trial's cues by alpha x (the sum of their squared values) times the error "
                f"and overshoots without bound once that factor exceeds 2: here "
                f"alpha={self.alpha!r} and up to {sq:.3g} summed squared cue values on a trial "
                f"(factor {float(self.alpha) * sq:.3g}). Use a smaller alpha or scale the cues "
                "down.")
        coords.setdefault("trial", ("trial", np.arange(x.shape[0])))
        self.values_ = xr.DataArray(values, dims=("trial",), coords=coords, name="value")
        self.rpe_ = xr.DataArray(rpe, dims=("trial",), coords=coords, name="rpe")
        self.weights_ = to_numpy(out.weights)
        self.weights_history_ = to_numpy(out.weights_history)
        self.n_cues_ = int(x.shape[1])
        return self
