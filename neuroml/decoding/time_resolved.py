"""Time-resolved decoding and temporal generalisation on ``(trial, time, unit)`` data."""

from __future__ import annotations

import numbers
from typing import ClassVar

import numpy as np
import torch
import xarray as xr
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.utils import get_tags

from .._parallel import threads_for
from .._validation import Interval
from ..base import NeuroMLEstimator
from ..device import to_numpy
from ..errors import NotFittedError, ParameterError
from ._coords import coordinate
from .cv import check_cv_param, resolve_splits, split_masks
from .logistic import LogisticDecoder, _LogisticBase

__all__ = ["TimeResolvedDecoder"]

_THREE_D = (
    "{name} needs trial-structured input of shape (trial, time, unit), e.g. the DataArray "
    "from Recording.epochs(); got {what}. For one decoder on (sample, feature) data use "
    "the estimator itself (e.g. LogisticDecoder)."
)


class TimeResolvedDecoder(NeuroMLEstimator):
    """One decoder per time bin, cross-validated, optionally generalised across time.

    On ``(trial, time, unit)`` data, a decoder is trained at every time bin on the
    units' activity in that bin and scored on held-out trials (MNE's
    ``SlidingEstimator``). With ``generalize=True`` each time bin's decoder is also
    tested at every other time bin, giving the temporal-generalisation matrix (MNE's
    ``GeneralizingEstimator``) from the same fitted weights.

    For neuroml decoders (:class:`LogisticDecoder`, :class:`LinearDecoder`) all time
    bins x folds are one batched solve on the device, with one data matrix per time
    bin. Any other scikit-learn estimator is fitted in a loop over folds and bins.

    Parameters
    ----------
    estimator : estimator, default=None
        The per-bin decoder (cloned, its hyperparameters used);
        ``LogisticDecoder()`` when None. Use a ``LinearDecoder`` for continuous
        targets. In the batched path the data live on this object's ``device``.
    cv : int, splitter or iterable of (train, test), default=5
        Over trials. An int is ``StratifiedKFold`` for classifiers, ``KFold``
        otherwise (scikit-learn's ``check_cv``, no shuffling).
    scoring : str or None, default=None
        None is the estimator's ``score`` (accuracy for classifiers, R^2 for
        regressors). The batched path computes the estimator's batched scorings
        (``"accuracy"``, ``"balanced_accuracy"``, ``"neg_log_loss"`` for logistic
        decoders); with other scorings the loop path uses scikit-learn's scorers.
    generalize : bool, default=False
        Also score each bin's decoder at every other bin.
    refit : bool, default=True
        Also fit each bin's decoder on all trials (``estimators_``, used by
        :meth:`predict` and :meth:`score`). ``False`` computes the cross-validated
        scores only (what MNE's ``cross_val_multiscore`` returns), one sixth less work
        with 5 folds.
    device : str, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Accepted for a uniform API; the batched solvers are deterministic and the folds
        come from ``cv`` (give a splitter with its own ``random_state`` to shuffle).

    Attributes
    ----------
    scores_ : DataArray, dims ("fold", "time") or ("fold", "train_time", "test_time")
        Held-out score of each fold; ``time`` coordinates are the input's (seconds for
        ``Recording.epochs()``), or bin indices for arrays.
    mean_scores_ : DataArray, dims ("time",) or ("train_time", "test_time")
        Mean over folds.
    estimators_ : list of estimators, length n_times
        Each bin's decoder fitted on all trials (used by :meth:`predict`); only with
        ``refit=True``.
    times_ : ndarray of shape (n_times,)
    classes_ : ndarray
        Class labels, for classifiers.
    n_features_in_ : int
        Units per bin.
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml import TimeResolvedDecoder
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 80)
    >>> X = rng.normal(size=(80, 6, 4))
    >>> X[:, 3:, 0] += 2 * y[:, None]          # decodable from bin 3 on
    >>> trd = TimeResolvedDecoder(cv=4, device="cpu").fit(X, y)
    >>> trd.mean_scores_.dims
    ('time',)
    >>> bool(trd.mean_scores_[4] > trd.mean_scores_[0])
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [None, object],
        "cv": [Interval(numbers.Integral, 2, None), object],
        "scoring": [str, "callable", None],
        "generalize": ["boolean"],
        "refit": ["boolean"],
        "device": ["device"],
        "random_state": ["random_state"],
    }
    _test_params: ClassVar[dict] = {"device": "cpu", "cv": 3}
    _input_ndim: ClassVar[int] = 3
    _xfail_checks: ClassVar[dict] = {
        name: ("TimeResolvedDecoder takes (trial, time, unit) data and refuses 2-D input with "
               "an error naming the expected shape; this check feeds 2-D (n_samples, "
               "n_features) arrays only")
        for name in (
            "check_estimators_dtypes", "check_fit_score_takes_y", "check_estimators_fit_returns_self",
            "check_complex_data", "check_dtype_object", "check_estimators_empty_data_messages",
            "check_pipeline_consistency", "check_estimators_nan_inf",
            "check_estimators_overwrite_params", "check_estimator_sparse_array",
            "check_estimator_sparse_matrix", "check_estimator_sparse_tag",
            "check_estimators_pickle", "check_f_contiguous_array_estimator",
            "check_fit2d_predict1d", "check_methods_subset_invariance",
            "check_methods_sample_order_invariance", "check_fit2d_1sample",
            "check_fit2d_1feature", "check_dict_unchanged", "check_dont_overwrite_parameters",
            "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
            "check_n_features_in_after_fitting", "check_positive_only_tag_during_fit",
            "check_readonly_memmap_input", "check_classifier_data_not_an_array",
            "check_classifiers_one_label", "check_classifiers_classes", "check_classifiers_train",
            "check_classifiers_regression_target", "check_supervised_y_2d",
        )
    }

    def __init__(self, estimator=None, *, cv=5, scoring=None, generalize=False, refit=True,
                 device="auto", random_state=None):
        self.estimator = estimator
        self.cv = cv
        self.scoring = scoring
        self.generalize = generalize
        self.refit = refit
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _base(self):
        est = LogisticDecoder(device=self.device) if self.estimator is None else clone(self.estimator)
        if not hasattr(est, "fit"):
            raise ParameterError(
                f"The 'estimator' parameter of TimeResolvedDecoder must be an estimator with "
                f"fit. Got {self.estimator!r} instead.")
        return est

    def _check_3d(self, X):
        arr = X if isinstance(X, torch.Tensor | xr.DataArray | np.ndarray) else np.asarray(X)
        ndim = arr.ndim
        if ndim != 3:
            shape = tuple(arr.shape)
            what = (f"a DataArray with dims {X.dims}" if isinstance(X, xr.DataArray)
                    else f"{ndim}-D input of shape {shape}")
            raise ParameterError(_THREE_D.format(name=type(self).__name__, what=what))

    def _batched(self, est) -> bool:
        return hasattr(est, "_batched_cv_scores") and (
            self.scoring is None or (isinstance(self.scoring, str)
                                     and self.scoring in est._batched_scorings))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._base())
        # a classifier or a regressor as its per-bin estimator is (like a Pipeline)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags.three_d_array = True
        return tags

    @property
    def _batched_scorings(self):
        return getattr(self._base(), "_batched_scorings", ())

    def _wrap_scores(self, values, lead: str | None = None):
        """Scores (lead?, time[, time]) as a DataArray with time coordinates."""
        values = np.asarray(values)
        t = self.times_
        dims = ["train_time", "test_time"] if values.ndim - (lead is not None) == 2 else ["time"]
        coords = {d: t for d in dims}
        if lead is not None:
            dims = [lead, *dims]
        attrs = dict(getattr(self, "_score_attrs", {}))
        return xr.DataArray(values, dims=dims, coords=coords, name="score", attrs=attrs)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, groups=None):
        """Cross-validate one decoder per time bin, then fit each bin on all trials.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_trials, n_times, n_units)
        y : array-like of shape (n_trials,) or str
            Labels (or continuous targets for a regressor), or the name of a trial
            coordinate of a DataArray ``X`` (e.g. ``"condition"``, ``"choice"``).
        groups : array-like of shape (n_trials,) or str, default=None
            For group-aware splitters; a str names a trial coordinate.

        Returns
        -------
        self
        """
        self._validate_params()
        check_cv_param(self.cv, type(self).__name__)
        self._check_3d(X)
        y = coordinate(X, y, "y")
        groups = coordinate(X, groups, "groups")
        self._resolve_device()
        est = self._base()
        classifier = is_classifier(est)
        Xt, y, _ = self._validate_X(X, y, reset=True, ndim=3, y_numeric=not classifier,
                                    multi_output=not classifier)
        y = np.asarray(y)
        n_trials, n_times, _ = Xt.shape
        if isinstance(X, xr.DataArray) and X.dims[1] in X.coords:
            self.times_ = np.asarray(X.coords[X.dims[1]].values)
        else:
            self.times_ = np.arange(n_times)
        default = "accuracy" if classifier else "r2"
        self._score_attrs = {"scoring": self.scoring if isinstance(self.scoring, str) else default}
        if isinstance(X, xr.DataArray) and "align_to" in X.attrs:
            self._score_attrs["align_to"] = X.attrs["align_to"]
        splits = resolve_splits(self.cv, y, groups, classifier=classifier)
        train, test = split_masks(splits, n_trials)
        # (time, trial, unit): a strided view on the CPU (NumPy's BLAS takes it as it is,
        # which saves copying the data), a contiguous copy on a GPU
        Xg = Xt.transpose(0, 1) if Xt.device.type == "cpu" else Xt.transpose(0, 1).contiguous()
        self.__dict__.pop("estimators_", None)
        if self._batched(est):
            est._validate_params()
            if self.refit and hasattr(est, "_batched_cv_fit"):  # folds and final fits: one solve
                scores, self.estimators_ = est._batched_cv_fit(
                    Xg, y, train, test, self.scoring, generalize=self.generalize)
            else:
                scores = est._batched_cv_scores(Xg, y[None], train[None], test[None],
                                                self.scoring, generalize=self.generalize)[0]
                if self.refit:
                    self.estimators_ = est._batched_fit(Xg, y)
        else:
            scores = self._loop_scores(est, Xg, y, splits)
            if self.refit:
                self.estimators_ = [clone(est).fit(to_numpy(Xg[t]), y) for t in range(n_times)]
        self.scores_ = self._wrap_scores(scores, "fold")
        self.mean_scores_ = self.scores_.mean("fold")
        if classifier:
            self.classes_ = np.unique(y)
        return self

    def _loop_scores(self, est, Xg, y, splits) -> np.ndarray:
        Xn = to_numpy(Xg)
        T = Xn.shape[0]
        scorer = check_scoring(est, scoring=self.scoring)
        shape = (len(splits), T, T) if self.generalize else (len(splits), T)
        out = np.empty(shape)
        for f, (tr, te) in enumerate(splits):
            for t in range(T):
                fitted = clone(est).fit(Xn[t][tr], y[tr])
                if self.generalize:
                    for u in range(T):
                        out[f, t, u] = scorer(fitted, Xn[u][te], y[te])
                else:
                    out[f, t] = scorer(fitted, Xn[t][te], y[te])
        return out

    # ------------------------------------------------------------------ batched protocol
    def _batched_cv_scores(self, X, Y, train, test, scoring=None, *, generalize=None):
        """Scores of many label sets (permutations) x folds x time bins in one batch.

        ``X`` is a validated ``(trial, time, unit)`` tensor; returns
        ``(n_batch, n_folds, n_times)`` (or ``(..., n_times, n_times)`` when
        generalising). Used by :func:`permutation_test`.
        """
        est = self._base()
        est._validate_params()
        n_times = X.shape[1]
        if not hasattr(self, "times_") or len(self.times_) != n_times:
            self.times_ = np.arange(n_times)
        gen = self.generalize if generalize is None else generalize
        scoring = self.scoring if scoring is None else scoring
        return est._batched_cv_scores(X.transpose(0, 1).contiguous(), Y, train, test, scoring,
                                      generalize=gen)

    def _validate_X(self, X, y=None, **kwargs):
        if kwargs.get("reset") and isinstance(X, xr.DataArray) and X.ndim == 3 and X.dims[1] in X.coords:
            self.times_ = np.asarray(X.coords[X.dims[1]].values)
        if X is not None:
            self._check_3d(X)
        return super()._validate_X(X, y, **kwargs)

    # ------------------------------------------------------------------ predict / score
    def _per_time(self, X):
        self._check_fitted()
        if not hasattr(self, "estimators_"):
            raise NotFittedError(
                f"This {type(self).__name__} was fitted with refit=False: it holds the "
                "cross-validated scores_ only. Fit with refit=True to predict or score.")
        Xt, _, info = self._validate_X(X, reset=False, ndim=3)
        return Xt, info

    def predict(self, X):
        """Predictions of every time bin's decoder (fitted on all trials).

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_trials, n_times, n_units)

        Returns
        -------
        predictions : shape (n_trials, n_times), or (n_trials, train_time, test_time)
            with ``generalize=True`` (decoder of each bin applied at every bin). A
            DataArray input gives a DataArray with the trial coordinates kept.
        """
        Xt, info = self._per_time(X)
        T = Xt.shape[1]
        if T != len(self.estimators_):
            raise ParameterError(
                f"X has {T} time bins but {type(self).__name__} was fitted on "
                f"{len(self.estimators_)}.")
        test_bins = range(T) if self.generalize else None
        if all(isinstance(e, _LogisticBase) for e in self.estimators_):
            work = Xt.numel() * self.estimators_[0].coef_.shape[0] * (T if self.generalize else 1)
            with threads_for(work, Xt.device):
                pred = self._linear_predict(Xt)
        else:
            Xn = to_numpy(Xt)
            if test_bins is None:
                pred = np.stack([e.predict(Xn[:, t]) for t, e in enumerate(self.estimators_)], 1)
            else:
                pred = np.stack([np.stack([e.predict(Xn[:, u]) for u in test_bins], 1)
                                 for e in self.estimators_], 1)
        if info.kind == "torch":
            return torch.as_tensor(pred).to(self.device_) if pred.dtype.kind in "biuf" else pred
        if info.kind == "numpy":
            return pred
        dims = ["trial", "train_time", "test_time"] if self.generalize else ["trial", "time"]
        dims[0] = info.dims[0]
        coords = {k: v for k, v in info.coords.items()
                  if set(v[0] if isinstance(v, tuple) else (k,)) <= {info.dims[0]}}
        for d in dims[1:]:
            coords[d] = self.times_
        return xr.DataArray(pred, dims=dims, coords=coords, name="prediction")

    def _linear_predict(self, Xt: torch.Tensor) -> np.ndarray:
        W = torch.as_tensor(np.stack([e.coef_ for e in self.estimators_]), dtype=Xt.dtype,
                            device=Xt.device)  # (T, Kp, F)
        b = torch.as_tensor(np.stack([e.intercept_ for e in self.estimators_]),
                            dtype=Xt.dtype, device=Xt.device)  # (T, Kp)
        if self.generalize:
            Z = torch.einsum("nuf,tkf->ntuk", Xt, W) + b[None, :, None]
        else:
            Z = torch.einsum("ntf,tkf->ntk", Xt, W) + b[None]
        codes = (Z[..., 0] > 0).long() if Z.shape[-1] == 1 else Z.argmax(-1)
        return self.classes_[to_numpy(codes)]

    def score(self, X, y):
        """Score of every time bin's decoder on ``(X, y)``.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_trials, n_times, n_units)
        y : array-like of shape (n_trials,) or str (a trial coordinate of ``X``)

        Returns
        -------
        scores : DataArray, dims ("time",) or ("train_time", "test_time")
            Computed with ``scoring`` (the estimator's ``score`` when None).
        """
        y = coordinate(X, y, "y")
        Xt, _ = self._per_time(X)
        Xn = to_numpy(Xt)
        y = to_numpy(y)
        scorer = check_scoring(self.estimators_[0], scoring=self.scoring)
        T = Xn.shape[1]
        if self.generalize:
            s = np.array([[scorer(e, Xn[:, u], y) for u in range(T)] for e in self.estimators_])
        else:
            s = np.array([scorer(e, Xn[:, t], y) for t, e in enumerate(self.estimators_)])
        return self._wrap_scores(s)
