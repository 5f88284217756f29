"""Parametric tuning-curve fits of every neuron at once: :class:`ParametricRegressor`.

The lecture's exercise made practical: fit ``theta1 sin(theta2 x + theta3)``, a von
Mises or Gaussian tuning curve, a sigmoid, or any torch function ``f(x, **params)`` to
each neuron of a population, all neurons x restarts in one batched optimisation.

Optimiser. The default ``solver="lm"`` is a batched Levenberg-Marquardt method (the
algorithm of SciPy's ``curve_fit``): every (neuron, restart) row takes damped
Gauss-Newton steps ``(J^T J + lambda diag(J^T J)) delta = J^T r`` with its own damping
``lambda`` (Nielsen's update), all rows' ``k x k`` systems solved in one batched call, and
stops on its own when the relative decrease of its sum of squares (actual and predicted)
or its relative step falls below ``tol`` (MINPACK's ``ftol`` / ``xtol`` tests); finished
rows leave the batch. Jacobians are analytic for the presets and forward-mode autodiff
(``torch.func.jvp`` under ``vmap``) for user functions. A second-order method is used
because first-order gradient descent needs hundreds to thousands of steps to reach the
parameters ``curve_fit`` finds to three digits, where Levenberg-Marquardt takes about
ten. ``solver="adam"`` is plain gradient descent (Adam, full batch) through the one
:class:`neuroml.training.Trainer`, as in the lecture; it is slower and less precise.

The sine preset with its default bounds is separable least squares: at any frequency,
``amplitude sin(f x + phase) = A sin(f x) + B cos(f x)`` is linear in ``(A, B)``. With
``solver="lm"`` it is fitted by variable projection (Golub & Pereyra 1973; see
``_variable_projection.py``): ``A`` and ``B`` are solved exactly for every frequency and
each row takes safeguarded Newton steps in the frequency alone, stopping on the same
``tol`` tests. It reaches the minimum Levenberg-Marquardt reaches from the same frequency,
in fewer and cheaper steps; only a ``p0`` for the frequency matters to it (amplitude and
phase need no start). With other bounds the sine runs through Levenberg-Marquardt.

Samples that share the same ``x`` (repeated stimuli) are merged into their mean with
their count as a weight first: the sum of squares splits exactly into a within-group
part that does not depend on the parameters and a weighted sum over the distinct ``x``,
so the fit is the same and costs the distinct ``x`` only. Everything runs in float64,
on every device; the fit is deterministic (only a user function's drawn restarts use
``random_state``).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import xarray as xr
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from .._parallel import threads_for
from .._validation import Interval, Options
from ..base import NeuroMLEstimator
from ..device import InputInfo, seed_from, to_numpy
from ..errors import ParameterError
from ..training import Trainer
from ._levenberg_marquardt import History, levenberg_marquardt
from ._parametric_models import PRESETS, BoundTransform, Model, check_output, sine_frequencies
from ._variable_projection import sine_variable_projection

__all__ = ["ParametricRegressor"]

_F64 = torch.float64


class ParametricRegressor(RegressorMixin, NeuroMLEstimator):
    """Fit a parametric model (a tuning curve) to every neuron at once.

    Minimises each neuron's sum of squared residuals ``sum_i (y_i - f(x_i; theta))^2``,
    as :func:`scipy.optimize.curve_fit`, for all neurons and restarts in one batched
    optimisation (batched Levenberg-Marquardt by default, see the module notes).

    Presets (``x`` in radians for the periodic ones; one feature):

    - ``"linear"``: ``b + w0 x0 + ... + w{d-1} x{d-1}`` (any number of features; the
      default, since it applies to any ``x``; its initial guess is the exact solution).
    - ``"sine"``: ``amplitude * sin(frequency * x + phase)`` (the lecture's
      theta1 sin(theta2 x + theta3)); amplitude, frequency >= 0; phase in [-pi, pi).
      Frequencies start at the highest peaks of each neuron's periodogram (an FFT when
      the distinct ``x`` are evenly spaced), amplitude and phase solved exactly.
    - ``"cosine"``: ``b + a * cos(x - mu)`` (cosine tuning); a >= 0; mu in [-pi, pi);
      the initial guess is the exact least-squares fit (linear in b, a cos mu, a sin mu).
    - ``"von_mises"``: ``b + a * exp(kappa * (cos(x - mu) - 1))``; kappa >= 0; mu, the
      preferred direction, in [-pi, pi).
    - ``"gaussian"``: ``b + a * exp(-(x - mu)**2 / (2 sigma**2))``; sigma >= 0.
    - ``"sigmoid"``: ``b + a / (1 + exp(-slope * (x - x0)))``; a >= 0 (a decreasing
      curve has a negative slope).

    The von Mises, Gaussian and sigmoid guesses are the best points of a grid over the
    nonlinear parameters with ``b`` and ``a`` solved exactly at each point, for every
    neuron in one batched solve; the ``n_starts`` best points are the restarts.

    Parameters
    ----------
    model : str or callable, default="linear"
        A preset name above or a torch function ``f(x, p1, p2, ...)`` written for ONE
        neuron: ``x`` is a tensor of shape ``(n_samples,)`` when there is one feature,
        else ``(n_samples, n_features)``; each parameter is a 0-d tensor; it returns a
        tensor of shape ``(n_samples,)``, acting on each sample independently. It is
        batched over neurons and restarts with :func:`torch.func.vmap`, so it must use
        torch operations without Python control flow on parameter values. Every
        argument after ``x`` is a fitted parameter; numeric defaults in the signature
        are initial guesses.
    p0 : dict or None, default=None
        Initial guesses: parameter name -> float or array of shape (n_neurons,). For a
        user function, a parameter without one starts at its signature default, else
        the middle of its bounds (both finite), 1 inside a one-sided bound, or 1.0 (as
        ``curve_fit``). For a preset, given values replace the data-driven guess of
        the first start (for the sine with its default bounds only the frequency's is
        used: its amplitude and phase are solved exactly at every frequency).
    bounds : dict or None, default=None
        Parameter name -> ``(lower, upper)`` (None or +-inf for no bound); lower must
        be less than upper. Replaces a preset's default bounds for the parameters it
        names. Bounded parameters are optimised through a smooth transform (sigmoid
        for two bounds, softplus for one), so a fit never leaves its bounds (it can
        reach one only where the transform saturates in float64).
    n_starts : int, default=1
        Starts per neuron, all optimised together; each neuron keeps its best. For
        presets the starts are the best grid points (the sine's highest periodogram
        peaks); for a user function start 0 is ``p0`` and the others are drawn: uniform
        between two finite bounds, ``p0`` scaled by ``exp(N(0, 1))`` away from a single
        bound, ``p0 + N(0, 1) * max(|p0|, 1)`` when unbounded.
    solver : {"lm", "adam"}, default="lm"
        ``"lm"``: batched Levenberg-Marquardt. ``"adam"``: full-batch gradient descent
        with Adam through :class:`neuroml.training.Trainer`, stopping when the summed
        loss has not improved by ``tol`` (relative) for 20 epochs.
    max_iter : int or None, default=None
        Iterations (Levenberg-Marquardt) or epochs (Adam); None: 200 / 3000.
    lr : float, default=0.01
        Adam's learning rate (``solver="adam"`` only), on the unconstrained scale.
    tol : float, default=1e-8
        Relative tolerance of the stopping tests (``curve_fit``'s ``ftol`` and ``xtol``
        are 1.49e-8).
    verbose : bool or int, default=False
        Print one line per iteration.
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Seeds the drawn restarts of a user function (nothing else is random).

    Attributes
    ----------
    params_ : pandas.DataFrame of shape (n_neurons, n_params)
        Fitted parameters, indexed by neuron (the coordinate of a DataArray ``y``'s last
        dimension, else 0..n_neurons-1), one column per parameter.
    param_values_ : ndarray of shape (n_neurons, n_params)
    param_names_ : list of str
    neuron_ids_ : ndarray of shape (n_neurons,)
    output_dim_ : str
        Name of the neuron dimension (a DataArray ``y``'s last dimension, else "neuron").
    r2_ : ndarray of shape (n_neurons,)
        R^2 of each neuron's fit on the training data.
    loss_ : ndarray of shape (n_neurons,)
        Mean squared residual of each neuron on the training data.
    start_losses_ : ndarray of shape (n_neurons, n_starts)
        Mean squared residual reached from each start.
    converged_ : ndarray of bool, shape (n_neurons,)
        Whether the kept start met the stopping test before ``max_iter`` (for Adam:
        whether training stopped before ``max_iter``).
    n_iter_ : int
        Iterations (epochs) run: the most any (neuron, start) row needed.
    history_ : pandas.DataFrame
        ``epoch, train_loss, val_loss (NaN), seconds``, plus ``n_active`` (rows still
        iterating) for Levenberg-Marquardt; ``train_loss`` is the mean over rows of the
        weighted mean squared residual on the distinct ``x``.
    target_ndim_ : int
        1 when fitted on a 1-D ``y`` (predictions are then 1-D), else 2.
    n_features_in_ : int
    device_ : torch.device

    Notes
    -----
    ``x`` may be 1-D ``(n_samples,)`` when ``y`` is 2-D ``(n_samples, n_neurons)``; with
    a 1-D ``y`` (one neuron) ``x`` must be 2-D, as for every scikit-learn regressor
    (``x.reshape(-1, 1)``), which keeps the estimator conformant with scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.nn.parametric import ParametricRegressor
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(np.linspace(-np.pi, np.pi, 16, endpoint=False), 5)
    >>> mu = rng.uniform(-3, 3, 30)
    >>> Y = 1 + 4 * np.exp(2 * (np.cos(x[:, None] - mu) - 1)) + rng.normal(0, .3, (80, 30))
    >>> fit = ParametricRegressor("von_mises", device="cpu").fit(x, Y)
    >>> bool(np.abs(np.angle(np.exp(1j * (fit.params_["mu"] - mu)))).max() < 0.1)
    True
    """

    _lazy_attributes = ("history_",)
    _parameter_constraints: ClassVar[dict] = {
        "model": [Options(tuple(PRESETS)), "callable"],
        "p0": [dict, None],
        "bounds": [dict, None],
        "n_starts": [Interval(Integral, 1, None)],
        "solver": [Options(("lm", "adam"))],
        "max_iter": [Interval(Integral, 1, None), None],
        "lr": [Interval(Real, 0, None, "neither")],
        "tol": [Interval(Real, 0, None, "left")],
        "verbose": ["boolean", Interval(Integral, 0, None)],
        "device": ["device"],
        "random_state": ["random_state"],
    }
    _test_params: ClassVar[dict] = {"device": "cpu", "random_state": 0}

    def __init__(self, model="linear", *, p0=None, bounds=None, n_starts=1, solver="lm",
                 max_iter=None, lr=0.01, tol=1e-8, verbose=False, device="auto",
                 random_state=None):
        self.model = model
        self.p0 = p0
        self.bounds = bounds
        self.n_starts = n_starts
        self.solver = solver
        self.max_iter = max_iter
        self.lr = lr
        self.tol = tol
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @property
    def params_(self) -> pd.DataFrame:
        """Fitted parameters: a DataFrame indexed by neuron, one column per parameter."""
        self._check_fitted()
        return pd.DataFrame(self.param_values_, columns=list(self.param_names_),
                            index=pd.Index(self.neuron_ids_, name=self.output_dim_))

    def __getattr__(self, name):
        # history_ is made on first use from the solver's records: a DataFrame costs
        # 0.5 ms (measured with cold caches) of a fit of 1,000 sines that takes 6-9 ms
        records = self.__dict__.get("_history_records") if name == "history_" else None
        if records is None:
            prop = getattr(type(self), name, None)
            if isinstance(prop, property):  # its own error (NotFittedError for params_)
                return prop.__get__(self)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.history_ = records.frame()
        self.__dict__.pop("_history_records", None)
        return self.history_

    # ------------------------------------------------------------------ inputs
    def _x(self, X, y=None, *, reset: bool, y_ndim: int = 2):
        """Validated ``x`` as a float64 ``(n, d)`` tensor, ``y`` as NumPy, and the info."""
        kind_ndim = X.ndim if isinstance(X, torch.Tensor | xr.DataArray) else np.asarray(X).ndim
        info = None
        if kind_ndim == 1 and (not reset and getattr(self, "n_features_in_", None) == 1
                               or reset and y_ndim == 2):
            if isinstance(X, xr.DataArray):
                info = InputInfo("xarray", dims=(X.dims[0], "feature"),
                                 coords={k: (c.dims, c.values) for k, c in X.coords.items()})
                X = np.asarray(X.values)[:, None]
            elif isinstance(X, torch.Tensor):
                X = X[:, None]
            else:
                X = np.asarray(X)[:, None]
        elif kind_ndim == 1 and reset:
            raise ParameterError(
                "Expected 2D array, got 1D array instead. ParametricRegressor takes a 1-D x "
                "(n_samples,) together with a 2-D y (n_samples, n_neurons); with a 1-D y (one "
                "neuron) reshape your data with x.reshape(-1, 1), as for scikit-learn's "
                "regressors.")
        Xt, y, got = self._validate_X(X, y, reset=reset, y_numeric=True, multi_output=True)
        return Xt.to(_F64), y, info or got

    def _model(self) -> Model:
        return Model(self.model, self.n_features_in_, type(self).__name__)

    @staticmethod
    def _model_x(Xt: torch.Tensor) -> torch.Tensor:
        return Xt[:, 0] if Xt.shape[1] == 1 else Xt

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit the model to every neuron.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples,) or (n_samples, n_features)
            The stimulus or behavioural variable (1-D only with a 2-D ``y``).
        y : array-like, DataArray or torch.Tensor of shape (n_samples, n_neurons) or (n_samples,)
            Responses; a DataArray's last dimension names the neurons.

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        output_dim, ids = "neuron", None
        if isinstance(y, xr.DataArray) and y.ndim == 2:
            output_dim = str(y.dims[-1])
            if y.dims[-1] in y.coords:
                ids = np.asarray(y.coords[y.dims[-1]].values)
        y = to_numpy(y) if isinstance(y, torch.Tensor | xr.DataArray) else y
        y_ndim = np.asarray(y).ndim if y is not None else 0
        Xt, y, _ = self._x(X, y, reset=True, y_ndim=y_ndim)
        y = np.asarray(y, dtype=np.float64)
        self.target_ndim_ = 1 if y.ndim == 1 else 2
        Y = torch.as_tensor(y.reshape(len(y), -1), dtype=_F64, device=self.device_)
        n_neurons = Y.shape[1]
        model = self._model()
        names, k, S = model.names, len(model.names), int(self.n_starts)
        transform = self._transform(model)
        # merge samples with the same x: weighted means on the distinct x
        if Xt.shape[1] == 1:  # a sort, not unique_dim's row-by-row comparisons
            xu, inverse, counts = torch.unique(Xt[:, 0], return_inverse=True,
                                               return_counts=True)
            xu = xu[:, None]
        else:
            xu, inverse, counts = torch.unique(Xt, dim=0, return_inverse=True,
                                               return_counts=True)
        if xu.shape[0] < Xt.shape[0]:
            Ybar = torch.zeros((xu.shape[0], n_neurons), dtype=_F64, device=self.device_)
            Ybar = Ybar.index_add_(0, inverse, Y) / counts[:, None]
            w = counts.to(_F64)
        else:  # no repeats: the samples in the order of x (no copy when already sorted)
            w = None
            in_order = bool((inverse == torch.arange(len(inverse), device=self.device_)).all())
            Ybar = Y if in_order else torch.empty_like(Y).index_copy_(0, inverse, Y)
        xm = self._model_x(xu)
        # random draws only for a user function's restarts
        seed = seed_from(self.random_state) if model.preset is None and S > 1 else 0
        gen = torch.Generator(device=self.device_).manual_seed(seed)
        projection = self.solver == "lm" and self._separable_sine(model, transform)
        starts = self._starts(model, transform, xm, Ybar, w, S, gen,
                              _frequencies_only if projection else None)
        if model.preset is None:
            check_output(model, xm, starts[0, 0], type(self).__name__)
        Yrows = Ybar.T if S == 1 else Ybar.T.repeat_interleave(S, 0)
        sw = None if w is None else w.sqrt()
        # the part of each neuron's sum of squares that the parameters cannot change
        if w is None:
            within = torch.zeros_like(Y[0])
        else:
            dev_within = Y - Ybar.index_select(0, inverse)
            within = (dev_within * dev_within).sum(0)
        max_iter = 200 if self.max_iter is None else int(self.max_iter)
        # many small element-wise operations: one thread on a CPU whose other cores may
        # be busy (measured on a shared 2-core machine: 300 neurons 0.011 s on one
        # thread, 0.32-0.36 s on two); the solvers call no BLAS through NumPy (their
        # per-row arithmetic in NumPy is element-wise), so its limit is left alone
        with threads_for(float(Yrows.numel()) * k**2, self.device_, blas=False):
            if projection:
                theta, cost, conv, hist = sine_variable_projection(
                    xm, Yrows, w, within.repeat_interleave(S), starts[..., 1].reshape(-1),
                    max_iter, float(self.tol), self.verbose)
            else:
                U0 = transform.inverse(starts.reshape(-1, k))
                if self.solver == "lm":
                    U, cost, conv, hist = levenberg_marquardt(
                        model, xm, Yrows, sw, within.repeat_interleave(S), U0, transform,
                        max_iter, float(self.tol), self.verbose)
                else:
                    U, cost, conv, hist = self._adam(model, xm, Yrows, sw, U0, transform)
                theta = transform.forward(U)[0]
        theta = theta.reshape(n_neurons, S, k)
        cost = cost.reshape(n_neurons, S)
        best = cost.argmin(1)
        rows = torch.arange(n_neurons, device=self.device_)
        theta = theta[rows, best]
        for j, name in enumerate(names):
            if name in model.periodic:
                theta[:, j] = torch.remainder(theta[:, j] + math.pi, 2 * math.pi) - math.pi
        resid = cost[rows, best] + within  # the sum of squares over all samples
        total = (Y - Y.mean(0)).square_().sum(0)
        n = Xt.shape[0]
        self.param_names_ = list(names)
        self.param_values_ = to_numpy(theta)
        self.neuron_ids_ = np.arange(n_neurons) if ids is None else ids
        self.output_dim_ = output_dim
        self.loss_ = to_numpy(resid) / n
        self.start_losses_ = to_numpy(cost + within[:, None]) / n
        ok = total > 0
        self.r2_ = to_numpy(torch.where(ok, 1 - resid / torch.where(ok, total, 1.0),
                                        (resid == 0).to(_F64)))
        self.converged_ = to_numpy(conv.reshape(n_neurons, S)[rows, best])
        if isinstance(hist, History):  # made into history_ when first asked for
            self.__dict__.pop("history_", None)
            self._history_records = hist
        else:
            self.__dict__.pop("_history_records", None)
            self.history_ = hist
        self.n_iter_ = max(len(hist), 1)  # one row per iteration or epoch
        return self

    def _transform(self, model: Model) -> BoundTransform:
        """Bounds (preset defaults updated by ``bounds``) as a smooth transform."""
        owner = type(self).__name__
        merged = dict(model.bounds)
        for name, pair in (self.bounds or {}).items():
            if name not in model.names:
                raise ParameterError(
                    f"The 'bounds' parameter of {owner} names {name!r}, which is not a "
                    f"parameter of the model; its parameters are {list(model.names)}.")
            try:
                lo, hi = pair
                lo = -math.inf if lo is None else float(lo)
                hi = math.inf if hi is None else float(hi)
            except (TypeError, ValueError):
                raise ParameterError(
                    f"The 'bounds' parameter of {owner} must map each name to (lower, upper);"
                    f" got {pair!r} for {name!r}.") from None
            if math.isnan(lo) or math.isnan(hi) or not lo < hi:
                raise ParameterError(
                    f"The 'bounds' parameter of {owner}: the lower bound of {name!r} must be "
                    f"less than its upper bound; got lower {lo} >= upper {hi}." if lo >= hi else
                    f"The 'bounds' parameter of {owner}: bounds of {name!r} must not be NaN.")
            merged[name] = (lo, hi)
        lower = [merged.get(n, (-math.inf, math.inf))[0] for n in model.names]
        upper = [merged.get(n, (-math.inf, math.inf))[1] for n in model.names]
        as_t = lambda v: torch.tensor(v, dtype=_F64, device=self.device_)  # noqa: E731
        return BoundTransform(as_t(lower), as_t(upper))

    @staticmethod
    def _separable_sine(model: Model, transform: BoundTransform) -> bool:
        """The sine preset with its default bounds, fitted by variable projection."""
        if model.preset is not PRESETS["sine"]:
            return False
        lo, hi = zip(*(model.bounds.get(n, (-math.inf, math.inf)) for n in model.names))
        return transform.lo.tolist() == list(lo) and transform.hi.tolist() == list(hi)

    def _starts(self, model: Model, transform, xm, Ybar, w, S: int, gen,
                init=None) -> torch.Tensor:
        """Starting points ``(n_neurons, S, k)`` inside the bounds (from ``init(x, Y, w,
        S)``, by default the preset's guess)."""
        owner = type(self).__name__
        N, k, dev = Ybar.shape[1], len(model.names), self.device_
        lo, hi = transform.lo, transform.hi
        fallback = torch.where(transform.both, (transform.lo0 + transform.hi0) / 2,
                               torch.where(transform.lower_only, transform.lo0 + 1,
                                           torch.where(transform.upper_only, transform.hi0 - 1,
                                                       torch.ones_like(lo))))
        for j, name in enumerate(model.names):
            if name in model.defaults:
                fallback[j] = model.defaults[name]
        if model.preset is not None:
            starts = (init or model.preset.init)(xm, Ybar, w, S)
            starts = torch.where(torch.isfinite(starts), starts, fallback)
        else:
            starts = fallback.expand(N, S, k).clone()
        given = self.p0 or {}
        for name, value in given.items():
            if name not in model.names:
                raise ParameterError(
                    f"The 'p0' parameter of {owner} names {name!r}, which is not a parameter"
                    f" of the model; its parameters are {list(model.names)}.")
            try:
                v = torch.as_tensor(np.asarray(value, dtype=np.float64), device=dev)
            except (TypeError, ValueError):
                v = torch.tensor([math.nan], dtype=_F64, device=dev)
            if v.ndim > 1 or (v.ndim == 1 and v.shape[0] not in (1, N)) or \
                    not bool(torch.isfinite(v).all()):
                raise ParameterError(
                    f"The 'p0' parameter of {owner}: the value of {name!r} must be a finite "
                    f"float or an array of {N} floats (one per neuron); got {value!r}.")
            j = model.names.index(name)
            if bool(((v < lo[j]) | (v > hi[j])).any()):
                raise ParameterError(
                    f"The 'p0' parameter of {owner}: the initial value of {name!r} ({value!r}) "
                    f"lies outside its bounds ({float(lo[j])}, {float(hi[j])}).")
            starts[:, 0, j] = v
        if model.preset is None and S > 1:
            starts[:, 1:] = _draw(starts[:, :1].expand(N, S - 1, k), transform, gen)
        return transform.interior(starts)

    def _adam(self, model: Model, xm, Yrows, sw, U0, transform):
        """Full-batch gradient descent (Adam) through the one Trainer (no randomness: one
        batch of all samples per epoch, no validation split)."""
        module = torch.nn.Module()
        module.u = torch.nn.Parameter(U0.clone())
        weights = torch.ones_like(xm.reshape(xm.shape[0], -1)[:, 0]) if sw is None else sw

        def loss_fn(mod, xb, yb, swb):
            theta = transform.forward(mod.u)[0]
            r = (yb.T - model.value(xb, theta)) * swb
            return (r * r).sum() / (swb * swb).sum()

        max_epochs = 3000 if self.max_iter is None else int(self.max_iter)
        trainer = Trainer(module, loss_fn, max_epochs=max_epochs, batch_size=xm.shape[0],
                          lr=self.lr, validation_fraction=0.0, patience=20, tol=self.tol,
                          verbose=self.verbose, seed=0)
        hist = trainer.fit(xm, Yrows.T.contiguous(), weights)
        with torch.no_grad():
            U = module.u.detach()
            r = (Yrows - model.value(xm, transform.forward(U)[0])) * weights
            cost = (r * r).sum(1)
        stopped = len(hist) < max_epochs
        return U, cost, torch.full_like(cost, stopped, dtype=torch.bool), hist

    # ------------------------------------------------------------------ predict
    def predict(self, X):
        """Model values for every neuron.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples,) or (n_samples, n_features)

        Returns
        -------
        y_pred : same type as X, shape (n_samples, n_neurons), or (n_samples,) after a fit
            on a 1-D ``y``. A DataArray keeps the sample coordinates of ``X`` and has the
            neuron dimension (``output_dim_``) with ``neuron_ids_``.
        """
        self._check_fitted()
        Xt, _, info = self._x(X, reset=False)
        theta = torch.as_tensor(self.param_values_, dtype=_F64, device=Xt.device)
        with torch.no_grad():
            pred = self._model().value(self._model_x(Xt), theta).T
        if self.target_ndim_ == 1:
            return self._wrap(info, pred[:, 0], None, device=self.device_)
        return self._wrap(info, pred, self.output_dim_, self.neuron_ids_, device=self.device_)

    def score(self, X, y, sample_weight=None):
        """R^2 of ``predict(X)``, the uniform average over neurons (as scikit-learn).

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples,) or (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_neurons)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        return float(r2_score(to_numpy(y), to_numpy(self.predict(X)),
                              sample_weight=sample_weight))


def _frequencies_only(x, Y, w, n_starts) -> torch.Tensor:
    """The sine's starts for variable projection: the frequencies (amplitude and phase,
    solved exactly at every frequency, need none)."""
    f = sine_frequencies(x, Y, w, n_starts)
    return torch.stack([torch.full_like(f, math.nan), f, torch.full_like(f, math.nan)], -1)


def _draw(centre: torch.Tensor, transform: BoundTransform, gen) -> torch.Tensor:
    """Random restarts around ``centre`` (see ``n_starts``)."""
    normal = torch.randn(centre.shape, generator=gen, device=centre.device, dtype=_F64)
    uniform = torch.rand(centre.shape, generator=gen, device=centre.device, dtype=_F64)
    spread = torch.exp(normal)
    return torch.where(
        transform.both, transform.lo0 + (transform.hi0 - transform.lo0) * uniform,
        torch.where(transform.lower_only, transform.lo0 + (centre - transform.lo0) * spread,
                    torch.where(transform.upper_only,
                                transform.hi0 - (transform.hi0 - centre) * spread,
                                centre + normal * centre.abs().clamp_min(1.0))))
