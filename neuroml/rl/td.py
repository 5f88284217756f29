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

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
import xarray as xr

from .._validation import Interval, Options
from ..base import NeuroMLEstimator
from ..device import to_numpy, to_tensor
from ..errors import ParameterError
from .features import complete_serial_compound, microstimulus, presence
from .learners import rescorla_wagner, td_learning

__all__ = ["TDModel", "RescorlaWagner"]

_FEATURES = ("csc", "presence", "microstimulus")


# ---------------------------------------------------------------------- input handling
def _numeric(x, name: str) -> np.ndarray:
    try:
        return np.asarray(to_numpy(x), dtype=float)
    except (TypeError, ValueError):
        raise ParameterError(
            f"The '{name}' argument must be numeric; got {type(x).__name__}."
        ) from None


def _ordered(da: xr.DataArray, name: str, leading: tuple[str, ...]) -> xr.DataArray:
    """``da`` with the dims in ``leading`` first (when it names them all)."""
    if all(d in da.dims for d in leading):
        return da.transpose(*leading, ...)
    if len(leading) == 2:
        raise ParameterError(
            f"The '{name}' DataArray must have dims 'trial' and 'time' (and, for stimuli, "
            f"one stimulus dim); got dims {da.dims}."
        )
    return da


def _kept_coords(da: xr.DataArray, dims: tuple[str, ...]) -> dict:
    """Coordinates of ``da`` that lie along ``dims`` only (non-dimension ones included)."""
    return {k: (c.dims, c.values) for k, c in da.coords.items() if set(c.dims) <= set(dims)}


def _check_finite(values: np.ndarray, name: str, owner: str) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = ~finite.reshape(values.shape[0], -1).all(axis=1) if values.ndim > 1 else ~finite
    raise ParameterError(
        f"The '{name}' argument of {owner}.fit contains NaN or infinity in {int(bad.sum())} of "
        f"{bad.size} trials (the first: trial index {int(np.flatnonzero(bad)[0])}); every "
        "trial needs finite values."
    )


def _trial_grid(stimuli, rewards, owner: str):
    """Stimuli ``(trial, time, stimulus)`` and rewards ``(trial, time)`` on one grid.

    Returns NumPy arrays and the ``(trial, time)`` coordinates to put on the outputs.
    """
    dims = ("trial", "time")
    coords: dict = {}
    s_desc = r_desc = ""
    if isinstance(stimuli, xr.DataArray):
        stimuli = _ordered(stimuli, "stimuli", dims)
        coords.update(_kept_coords(stimuli, dims))
        s_desc = f" (dims {stimuli.dims})"
    if isinstance(rewards, xr.DataArray):
        rewards = _ordered(rewards, "rewards", dims)
        r_desc = f" (dims {rewards.dims})"
    s = _numeric(stimuli, "stimuli")
    r = _numeric(rewards, "rewards")
    if s.ndim not in (2, 3):
        raise ParameterError(
            f"{owner} expects 'stimuli' of shape (trial, time) or (trial, time, stimulus); "
            f"got shape {s.shape}{s_desc}."
        )
    if r.ndim != 2:
        raise ParameterError(
            f"{owner} expects 'rewards' of shape (trial, time); got shape {r.shape}{r_desc}."
        )
    if s.shape[:2] != r.shape:
        raise ParameterError(
            f"stimuli and rewards must be on the same (trial, time) grid: stimuli has shape "
            f"{s.shape}{s_desc}, rewards has shape {r.shape}{r_desc}."
        )
    if isinstance(rewards, xr.DataArray):
        for dim in dims:
            if dim in coords and dim in rewards.coords:
                a, b = np.asarray(coords[dim][1]), rewards.coords[dim].values
                if not (a.shape == b.shape and (np.array_equal(a, b) or (
                        a.dtype.kind in "fc" and b.dtype.kind in "fc" and np.allclose(a, b)))):
                    raise ParameterError(
                        f"stimuli and rewards must be on the same (trial, time) grid: their "
                        f"'{dim}' coordinates differ (stimuli {a[:5]}..., rewards {b[:5]}...)."
                    )
        for key, value in _kept_coords(rewards, dims).items():
            coords.setdefault(key, value)
    _check_finite(s, "stimuli", owner)
    _check_finite(r, "rewards", owner)
    coords.setdefault("trial", ("trial", np.arange(s.shape[0])))
    coords.setdefault("time", ("time", np.arange(s.shape[1])))
    return (s if s.ndim == 3 else s[..., None]), r, coords


# ---------------------------------------------------------------------- TD(lambda)
class TDModel(NeuroMLEstimator):
    """TD(lambda) over trials of time bins, with the stimulus representations of Ludvig,
    Sutton & Kehoe (2008).

    Per time bin: ``V(t) = w . x(t)``; ``delta(t) = r(t) + gamma V(t) - V(t-1)``;
    ``w <- w + alpha delta(t) e(t-1)``; ``e(t) = gamma lambda e(t-1) + x(t)``. Traces and
    ``V(-1)`` reset to 0 at each trial start, so ``delta(0) = r(0) + gamma V(0)``; there is
    no transition out of a trial's last bin. Both values in ``delta(t)`` use the weights
    before the update at ``t`` (see :func:`neuroml.rl.learners.td_learning`). The
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
        Learning rate, >= 0.
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
        "alpha": [Interval(Real, 0, None)],
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
        s, r, coords = _trial_grid(stimuli, rewards, type(self).__name__)
        onsets = to_tensor(s, device, torch.float64)
        with torch.no_grad():
            x = self._features(onsets)
            out = td_learning(x, to_tensor(r, device, torch.float64), float(self.alpha),
                              float(self.gamma), float(self.lam))
        dims = ("trial", "time")
        self.value_ = xr.DataArray(to_numpy(out.values), dims=dims, coords=coords, name="value")
        self.rpe_ = xr.DataArray(to_numpy(out.rpe), dims=dims, coords=coords, name="rpe")
        self.weights_ = to_numpy(out.weights)
        self.weights_history_ = to_numpy(out.weights_history)
        self.n_features_ = int(x.shape[-1])
        return self


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
        Learning rate, >= 0.
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
        "alpha": [Interval(Real, 0, None)],
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
            cues = _ordered(cues, "cues", ("trial",))
            coords = {k: (("trial",), c.values) for k, c in cues.coords.items()
                      if c.dims == (cues.dims[0],)}
        elif isinstance(rewards, xr.DataArray) and rewards.ndim == 1:
            coords = {k: (("trial",), c.values) for k, c in rewards.coords.items()
                      if c.dims == rewards.dims}
        x = _numeric(cues, "cues")
        r = _numeric(rewards, "rewards")
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
        _check_finite(x, "cues", name)
        _check_finite(r, "rewards", name)
        v0 = _numeric(self.v0, "v0")
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
        coords.setdefault("trial", ("trial", np.arange(x.shape[0])))
        self.values_ = xr.DataArray(to_numpy(out.values), dims=("trial",), coords=coords,
                                    name="value")
        self.rpe_ = xr.DataArray(to_numpy(out.rpe), dims=("trial",), coords=coords, name="rpe")
        self.weights_ = to_numpy(out.weights)
        self.weights_history_ = to_numpy(out.weights_history)
        self.n_cues_ = int(x.shape[1])
        return self
