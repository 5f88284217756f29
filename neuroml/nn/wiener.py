"""The Wiener filter: a ridge regression of behaviour on a window of past neural activity.

The classic decoding baseline (Neural_Decoding's ``WienerFilterRegression``; Carmena et
al. 2003): behaviour at time bin ``t`` is a linear function of the activity of every
unit in the ``n_lags`` bins ``t - n_lags + 1 .. t``, the current bin included. In
Neural_Decoding's terms this is ``get_spikes_with_history(bins_before=n_lags - 1,
bins_after=0, bins_current=1)``: causal, usable online.

Lags never cross a trial boundary. The first ``n_lags - 1`` bins of every trial (or of
a continuous recording) do not have a complete history; they are left out of the fit
and :meth:`WienerFilter.predict` returns NaN there, as Neural_Decoding drops them.

The weights are the ridge solution of :class:`~neuroml.decoding.LinearDecoder` (the same
solver: one eigendecomposition on the estimator's device, float64 whatever the input
precision) on the lagged design matrix.

This module also holds the input plumbing both baselines share (this one and
:class:`~neuroml.nn.kalman.KalmanDecoder`).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
import xarray as xr
from scipy.sparse import issparse
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score

from .._parallel import threads_for
from .._validation import Interval
from ..base import NeuroMLEstimator
from ..decoding.linear import _alpha_matrix, _centre, _RidgeSolver
from ..device import to_numpy
from ..errors import ParameterError
from ._sequence_base import no_weights
from ._sequence_data import Sequences, Targets, check_sequences, check_targets, wrap_outputs

__all__ = ["WienerFilter"]


# ---------------------------------------------------------------------- shared plumbing
class _SequenceBaseline(RegressorMixin, NeuroMLEstimator):
    """Input/output plumbing of the closed-form sequence decoders (Wiener, Kalman).

    ``X`` is ``(trial, time, unit)`` with NaN end-padding, or one continuous
    ``(time, unit)`` recording; targets are per time bin. All arithmetic runs in
    float64; outputs come back in the input's type (tensors in the input's precision).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # NaN is allowed only as padding at the end of a trial, which the tag (NaN
        # anywhere) does not express
        tags.input_tags.allow_nan = False
        tags.target_tags.multi_output = True
        return tags

    @classmethod
    def _example_data(cls) -> tuple[tuple, tuple]:
        """Tiny seeded ``(fit_args, call_args)`` for the common tests (3-D input)."""
        rng = np.random.default_rng(0)
        X = rng.normal(size=(6, 10, 3))
        X[0, 7:] = np.nan  # one shorter trial
        y = np.nan_to_num(X[..., :2]).cumsum(1) * 0.3
        return (X, y), (X, y)

    def _sequences(self, X, *, reset: bool) -> Sequences:
        """Validated input (a continuous recording becomes one trial), units counted."""
        name = type(self).__name__
        if not isinstance(X, torch.Tensor | xr.DataArray):
            if issparse(X):
                raise ParameterError(f"{name} does not support sparse input; got a "
                                     f"{type(X).__name__}. Convert it with X.toarray().")
            try:
                X = np.asarray(X)
            except (TypeError, ValueError) as err:
                raise ParameterError(f"{name} could not read X as an array: {err}") from None
            if X.dtype.kind == "c":
                raise ParameterError(f"Complex data not supported by {name}; got X of dtype "
                                     f"{X.dtype}.")
            if X.dtype.kind == "O":
                X = X.astype(np.float64)  # a TypeError names the value that is no number
        if X.ndim == 1:
            raise ParameterError(
                f"{name} needs trial-structured input of shape (trial, time, unit) or one "
                f"continuous recording of shape (time, unit); got 1-D input of shape "
                f"{tuple(X.shape)}. Reshape your data: X.reshape(-1, 1) for one unit.")
        if X.ndim == 2 and X.shape[1] == 0:
            raise ParameterError(
                f"{name} found 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
                "required: a (time, unit) recording needs at least one unit.")
        seq = check_sequences(X, owner=name, device=self.device_, continuous=True)
        self._check_n_features(seq.n_units, reset)
        return seq

    def _targets(self, y, seq: Sequences, X) -> Targets:
        if y is None:
            raise ParameterError(f"{type(self).__name__} requires y to be passed, but the "
                                 "target y is None.")
        if isinstance(y, torch.Tensor):
            y = to_numpy(y)
        elif not isinstance(y, str | xr.DataArray) and np.asarray(y).dtype.kind == "c":
            raise ParameterError(f"Complex data not supported by {type(self).__name__}; got "
                                 f"y of dtype {np.asarray(y).dtype}.")
        return check_targets(y, seq, output="sequence", owner=type(self).__name__, X=X)

    def _record_targets(self, targets: Targets) -> None:
        self.n_outputs_ = int(targets.values.shape[-1])
        self.output_dim_, self.output_coords_ = targets.dim, targets.coords

    def _flat_output(self) -> bool:  # pragma: no cover - overridden
        """Whether the target had no output axis (predictions then have none)."""
        raise NotImplementedError

    def _output(self, pred: torch.Tensor, seq: Sequences):
        """``(trial, time, k)`` float64 predictions in the input's type."""
        if self._flat_output():
            pred = pred[..., 0]
        if seq.kind == "torch":
            pred = pred.to(seq.values.dtype)
        return wrap_outputs(pred, seq, output="sequence", feature_dim=self.output_dim_,
                            feature_coords=self.output_coords_, device=self.device_,
                            name="prediction")

    def score(self, X, y, sample_weight=None):
        """R^2 over the valid time bins (uniform average over targets, as scikit-learn).

        Bins where the prediction is NaN (padding; for :class:`WienerFilter` also the
        first ``n_lags - 1`` bins of each trial) are left out.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units) or (n_times, n_units)
        y : array-like, DataArray, torch.Tensor or str
            Targets as in ``fit``; values at padded steps are ignored.
        sample_weight : None
            Not supported (accepted for scikit-learn's signature).

        Returns
        -------
        float
        """
        no_weights(sample_weight, self)
        self._check_fitted()
        seq = self._sequences(X, reset=False)
        pred = to_numpy(self._predict_sequences(seq))
        truth = self._targets(y, seq, X).values
        valid = to_numpy(seq.mask) & np.isfinite(pred).all(-1)
        if not valid.any():
            raise ParameterError(f"{type(self).__name__}.score: no time bin of X has a "
                                 "prediction to score.")
        return float(r2_score(truth[valid], pred[valid], multioutput="uniform_average"))

    def predict(self, X):
        """Decoded behaviour at every time bin.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units) or (n_times, n_units)
            Shorter trials NaN-padded at the end.

        Returns
        -------
        y_pred : same type as X
            Shape (n_trials, n_times) for a target given without an output axis, else
            (n_trials, n_times, n_outputs); without the trial axis for a continuous
            ``(n_times, n_units)`` recording. NaN at padded steps (and, for
            :class:`WienerFilter`, at the first ``n_lags - 1`` bins of each trial). A
            DataArray keeps the trial and time coordinates of ``X``.
        """
        self._check_fitted()
        seq = self._sequences(X, reset=False)
        return self._output(self._predict_sequences(seq), seq)

    def _alphas(self, n_targets: int) -> torch.Tensor:
        """``alpha`` as LinearDecoder's ``(1, n_targets)`` penalty matrix."""
        try:
            return _alpha_matrix(self.alpha, n_targets, self.device_)
        except ParameterError:
            raise ParameterError(
                f"The 'alpha' parameter of {type(self).__name__} must be a float >= 0 or an "
                f"array of {n_targets} such floats (one per target). Got {self.alpha!r} "
                "instead.") from None


def ridge(X: torch.Tensor, Y: torch.Tensor, alphas: torch.Tensor, fit_intercept: bool):
    """LinearDecoder's ridge solution of ``Y ~ X``: coefficients ``(p, t)`` and intercepts ``(t,)``.

    ``X`` ``(n, p)`` and ``Y`` ``(n, t)`` are float64; the intercept is not penalised.
    """
    Xc, Yc, x_mean, y_mean = _centre(X, Y, fit_intercept)
    coef = _RidgeSolver(Xc, Yc).coef(alphas)[0]
    return coef, (y_mean - x_mean @ coef)[0]


# ---------------------------------------------------------------------- the estimator
def lagged(values: torch.Tensor, n_lags: int) -> torch.Tensor:
    """``(trial, time, n_lags * unit)``: at bin ``t``, the units at bins ``t, t-1, ...``.

    Entry ``[i, t, l * n_units + u]`` is ``values[i, t - l, u]``, zero before the start
    of the trial (those rows are not used).
    """
    n_trials, n_times, n_units = values.shape
    padded = torch.nn.functional.pad(values, (0, 0, n_lags - 1, 0))
    windows = padded.unfold(1, n_lags, 1)  # (trial, time, unit, window): oldest first
    return windows.flip(-1).transpose(2, 3).reshape(n_trials, n_times, n_lags * n_units)


class WienerFilter(_SequenceBaseline):
    """Wiener filter decoder: ridge regression on ``n_lags`` bins of neural history.

    ``y[t] = b + sum_{l=0}^{n_lags-1} W[l]^T x[t - l]``: the current bin and the
    ``n_lags - 1`` before it (Neural_Decoding's ``bins_before = n_lags - 1``,
    ``bins_current = 1``, ``bins_after = 0``), fitted by ridge regression with
    :class:`~neuroml.decoding.LinearDecoder`'s solver (``alpha=0`` is the ordinary
    least squares of Neural_Decoding's ``WienerFilterRegression``). Lags never cross
    trial boundaries: the first ``n_lags - 1`` bins of each trial lack a full history,
    are left out of the fit and predicted as NaN.

    Parameters
    ----------
    n_lags : int, default=10
        Bins of history, the current bin included (1: decode from the current bin only).
    alpha : float or array-like of shape (n_outputs,), default=1.0
        L2 penalty on the weights (not the intercept), one per target when an array, as
        :class:`~neuroml.decoding.LinearDecoder`.
    fit_intercept : bool, default=True
    device : str or torch.device, default="auto"
        ``"auto"`` is the first CUDA GPU when there is one, else the CPU.

    Attributes
    ----------
    coef_ : ndarray of shape (n_lags, n_units, n_outputs)
        Weight of unit ``u`` ``l`` bins before the decoded bin on each output;
        ``(n_lags, n_units)`` when the target had no output axis.
    intercept_ : float or ndarray of shape (n_outputs,)
        0.0 when ``fit_intercept=False``.
    n_features_in_ : int
        Units.
    n_outputs_ : int
    output_dim_ : str
        Name of the output dimension of DataArray predictions (a DataArray target's
        last dimension, else ``"output"``).
    output_coords_ : ndarray or None
    n_samples_fit_ : int
        Time bins the regression was fitted on (valid bins with a full history).
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.nn.wiener import WienerFilter
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 50, 4))                 # 40 trials, 50 bins, 4 units
    >>> y = X[..., 0] + 0.5 * np.roll(X[..., 1], 1, axis=1)
    >>> wf = WienerFilter(n_lags=3, alpha=1e-6, device="cpu").fit(X, y)
    >>> wf.coef_.shape, round(float(wf.coef_[1, 1]), 3)
    ((3, 4), 0.5)
    >>> bool(np.isnan(wf.predict(X)[:, :2]).all())      # no full history yet
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_lags": [Interval(Integral, 1, None)],
        "alpha": [Interval(Real, 0, None, "left"), "array-like"],
        "fit_intercept": ["boolean"],
        "device": ["device"],
    }
    _test_params: ClassVar[dict] = {"n_lags": 2, "device": "cpu"}
    _xfail_checks: ClassVar[dict] = {
        name: ("WienerFilter reads the rows of 2-D input as consecutive time bins of one "
               "recording and predicts each from the bins before it, so predicting on a "
               "subset or a reordering of the rows changes the history (and the first "
               "n_lags - 1 rows of any batch have none)")
        for name in ("check_methods_subset_invariance", "check_methods_sample_order_invariance")
    }

    def __init__(self, n_lags=10, *, alpha=1.0, fit_intercept=True, device="auto"):
        self.n_lags = n_lags
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.device = device

    def fit(self, X, y):
        """Fit the filter.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units) or (n_times, n_units)
            Trials NaN-padded at the end, or one continuous recording.
        y : array-like, DataArray, torch.Tensor or str
            Behaviour per bin: (n_trials, n_times) or (n_trials, n_times, n_outputs);
            (n_times,) or (n_times, n_outputs) for a continuous recording. NaN allowed
            at padded steps. A str names a trial coordinate of a DataArray ``X``.

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        seq = self._sequences(X, reset=True)
        targets = self._targets(y, seq, X)
        rows = self._rows(seq)
        n_rows = int(rows.sum())
        if n_rows == 0:
            raise ParameterError(
                f"WienerFilter with n_lags={self.n_lags} needs a trial (or recording) of at "
                f"least n_lags time bins, to have one bin with a full history; the longest "
                f"has {int(seq.lengths.max())} (n_samples = {int(seq.lengths.max())}). "
                "Lower n_lags or give longer trials.")
        self._record_targets(targets)
        alphas = self._alphas(self.n_outputs_)
        n_features = self.n_lags * seq.n_units
        with threads_for(n_rows * n_features * n_features, self.device_):
            design = lagged(seq.values.to(torch.float64), self.n_lags)[rows]
            Y = torch.as_tensor(targets.values, device=self.device_)[rows]
            coef, intercept = ridge(design, Y, alphas, self.fit_intercept)
        coef = to_numpy(coef).reshape(self.n_lags, seq.n_units, self.n_outputs_)
        intercept = to_numpy(intercept)
        self.coef_ = coef[..., 0] if targets.squeeze else coef
        if not self.fit_intercept:
            self.intercept_ = 0.0
        else:
            self.intercept_ = float(intercept[0]) if targets.squeeze else intercept
        self.n_samples_fit_ = n_rows
        return self

    def _flat_output(self) -> bool:
        return np.ndim(self.coef_) == 2

    def _rows(self, seq: Sequences) -> torch.Tensor:
        """``(trial, time)`` bool: valid bins with a complete history inside their trial."""
        steps = torch.arange(seq.n_times, device=seq.mask.device)
        return seq.mask & (steps >= self.n_lags - 1)[None]

    def _predict_sequences(self, seq: Sequences) -> torch.Tensor:
        dev = seq.values.device
        coef = torch.as_tensor(self.coef_, dtype=torch.float64, device=dev)
        coef = coef.reshape(self.n_lags * self.n_features_in_, -1)
        intercept = torch.as_tensor(np.atleast_1d(self.intercept_), dtype=torch.float64,
                                    device=dev)
        with threads_for(seq.n_trials * seq.n_times * coef.shape[0] * coef.shape[1], dev):
            pred = lagged(seq.values.to(torch.float64), self.n_lags) @ coef + intercept
        return torch.where(self._rows(seq)[..., None], pred,
                           torch.full((), float("nan"), dtype=pred.dtype, device=dev))
