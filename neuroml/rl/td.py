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
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ParameterError(
            f"{owner}.fit needs at least one trial and one time bin; got stimuli and rewards "
            f"with {s.shape[0]} trials of {s.shape[1]} bins{s_desc}."
        )
    coords.setdefault("trial", ("trial", np.arange(s.shape[0])))
    coords.setdefault("time", ("time", np.arange(s.shape[1])))
    return (s if s.ndim == 3 else s[..., None]), r, coords


def _without_equilibrium(s: np.ndarray, x: torch.Tensor, r: np.ndarray, lam: float,
                         alpha: float) -> tuple[str, np.ndarray] | None:
    """With ``gamma = 1``: does the expected TD update leave the weights without a bound?

    Over one pass through the trials, TD(lambda) changes the weights by about
    ``alpha n (b - A w)`` with ``A = mean_n sum_t e(t-1) (x(t-1) - x(t))^T`` and
    ``b = mean_n sum_t e(t-1) r(t)`` (``n`` trials, small ``alpha``). With a transition
    out of the last bin to a value of 0 (``A`` gaining ``e(T-1) x(T-1)^T``) episodic TD
    would be stable; without it, features still on at the last bin can leave ``A``
    singular or not positive stable. Then the weights have no equilibrium: a direction
    ``u`` with ``u^T A = 0`` but ``u^T b != 0`` drifts linearly (a ``"presence"`` feature on
    to the end: ``A = 0``, ``b`` = the reward that follows it, so the cue's RPE gains
    ``alpha`` x reward per trial), and an eigenvalue of ``A`` with a negative real part
    grows exponentially (microstimuli of a stimulus late in the trial, e.g. the reward's
    own trace). CSC features are safe: the feature of the last bin is never updated
    (``e`` of a last bin is never used), its row of ``A`` and its entry of ``b`` are 0,
    and every other lag is tied to the next. Only growth visible within these trials is reported:
    a drift above the largest reward or an amplification above two (tiny negative
    eigenvalues of near-constant microstimulus combinations would need far more trials).

    Returns
    -------
    None, or (what happens, bool per stimulus: on at a trial's last bin).
    """
    last_on = to_numpy(x[:, -1] != 0).any(0)
    n, T, F = x.shape
    if not last_on.any() or T < 2:
        return None  # a proper episode: every feature is off when the trial ends
    _, first, inverse, count = np.unique(s.reshape(n, -1), axis=0, return_index=True,
                                         return_inverse=True, return_counts=True)
    xs = to_numpy(x[torch.as_tensor(first, device=x.device)])  # one trial per stimulus pattern
    active = np.flatnonzero(xs.any(axis=(0, 1)))
    if active.size > 1500:  # eigenvalues of a large matrix: too slow for a check
        return None
    xs = xs[..., active]
    rs = np.zeros((first.size, T))
    np.add.at(rs, inverse.ravel(), r)
    A, b = np.zeros((active.size, active.size)), np.zeros(active.size)
    e = np.zeros((first.size, active.size))
    for t in range(1, T):
        e = lam * e + xs[:, t - 1]
        A += (count[:, None] * e).T @ (xs[:, t - 1] - xs[:, t])
        b += e.T @ rs[:, t]
    A, b = A / n, b / n
    U, S, _ = np.linalg.svd(A)
    null = U[:, S <= 1e-9 * max(S.max(), 1e-300)]
    drift = float(np.abs(null.T @ b).max()) if null.size else 0.0
    scale = max(float(np.abs(r).max()), 1e-300)
    per_stimulus = x.shape[-1] // s.shape[-1]
    stimuli = np.zeros(s.shape[-1], dtype=bool)
    stimuli[np.unique(np.flatnonzero(last_on) // per_stimulus)] = True
    if alpha * n * drift > scale:
        return (f"some of their weights drift by about {alpha * drift:.3g} per trial "
                f"({alpha * n * drift:.3g} over these {n} trials)", stimuli)
    eig = np.linalg.eigvals(A)
    rate = float(-eig.real.min())
    if rate > 1e-9 * max(float(np.abs(eig).max()), 1e-300) and alpha * n * rate > np.log(2):
        return (f"learning is unstable: a combination of their weights grows about "
                f"{np.exp(min(alpha * n * rate, 700)):.3g}-fold over these {n} trials", stimuli)
    return None


def _first_nonfinite(*arrays: np.ndarray) -> int | None:
    """Index of the first trial (axis 0) with a NaN or infinity in any array, else None."""
    ok = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return None if ok.all() else int(np.flatnonzero(~ok)[0])


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
        Learning rate, in (0, 1]. If learning diverges (values reach NaN or infinity: a
        rate too large for the features, e.g. CSC features of several stimuli starting in
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
    ``gamma = 1`` and the expected TD update over the trials given has such a direction
    (a drift larger than the largest reward, or a growth above two-fold). CSC features
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
        "alpha": [Interval(Real, 0, 1, "right")],
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
        values, rpe = to_numpy(out.values), to_numpy(out.rpe)
        first = _first_nonfinite(values, rpe)
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
        found = _without_equilibrium(s, x, r, float(self.lam), float(self.alpha))
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
        Learning rate, in (0, 1]. If learning diverges (values reach NaN or infinity: an
        update overshoots when ``alpha`` times the summed squared cue values of a trial
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
        "alpha": [Interval(Real, 0, 1, "right")],
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
        values, rpe = to_numpy(out.values), to_numpy(out.rpe)
        first = _first_nonfinite(values, rpe)
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
