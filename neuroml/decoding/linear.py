"""Ridge decoders for continuous behaviour (velocity, position, any multi-output target).

:class:`LinearDecoder` is ridge regression; :class:`LinearDecoderCV` picks the penalty
by efficient leave-one-out (the generalised cross-validation of scikit-learn's
``RidgeCV``) or by k-fold cross-validation. Both solve every penalty at once from one
eigendecomposition of ``X^T X`` (or of the Gram matrix ``X X^T`` when there are fewer
samples than features), on the estimator's device; k-fold cross-validation stacks all
folds into one batched eigendecomposition and scores all folds x penalties together.
The linear algebra runs in float64 whatever the input precision (ridge through the
normal equations squares the condition number); coefficients are returned in the
input's precision.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.model_selection import check_cv

from .._validation import Interval, Options
from ..base import NeuroMLEstimator
from ..device import to_numpy
from ..errors import ParameterError

__all__ = ["LinearDecoder", "LinearDecoderCV"]

_SCORINGS = ("r2", "neg_mean_squared_error", "neg_mean_absolute_error")


# ---------------------------------------------------------------------- the solver
class _RidgeSolver:
    """Ridge solutions for many penalties from one eigendecomposition.

    ``Xc`` (``(..., n, p)``) and ``yc`` (``(..., n, t)``) are centred float64 tensors;
    leading dimensions (e.g. cross-validation folds) are batched. When ``p > n`` the
    Gram matrix ``Xc Xc^T`` is decomposed instead of ``Xc^T Xc`` (the dual problem).
    Rows that are all zero (padding of unequal folds) do not change the solution.
    """

    def __init__(self, Xc: torch.Tensor, yc: torch.Tensor | None = None):
        n, p = Xc.shape[-2:]
        self.dual = p > n
        if self.dual:
            lam, U = torch.linalg.eigh(Xc @ Xc.mT)
            self.U = U
            self.XtU = Xc.mT @ U  # (..., p, n)
        else:
            lam, Q = torch.linalg.eigh(Xc.mT @ Xc)
            self.Q = Q
        self.Xc = Xc
        self.lam = lam.clamp_min(0)
        top = self.lam.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(lam.dtype).tiny)
        self.cutoff = top * max(n, p) * torch.finfo(lam.dtype).eps  # (..., 1)
        self.proj = None if yc is None else self.project(yc)

    def project(self, yc: torch.Tensor) -> torch.Tensor:
        """Targets in the eigenbasis: ``Q^T Xc^T yc`` (primal) or ``U^T yc`` (dual).

        Leading dimensions of ``yc`` broadcast against the decomposition's, so one
        decomposition serves many target sets (e.g. label permutations).
        """
        if self.dual:
            return self.U.mT @ yc  # (..., n, t)
        return self.Q.mT @ (self.Xc.mT @ yc)  # (..., p, t)

    def inverse(self, alphas: torch.Tensor) -> torch.Tensor:
        """``1 / (lambda + alpha)`` as ``(..., A, r, T)`` for ``alphas`` of shape ``(A, T)``.

        A zero penalty gives the minimum-norm least-squares solution: eigenvalues at
        round-off level are dropped, as in a pseudo-inverse.
        """
        lam = self.lam[..., None, :, None]
        a = alphas[:, None, :]
        d = 1.0 / (lam + a)
        drop = (a == 0) & (lam <= self.cutoff[..., None, :, None])
        return torch.where(drop, torch.zeros_like(d), d)

    def coef(self, alphas: torch.Tensor, proj: torch.Tensor | None = None) -> torch.Tensor:
        """Coefficients ``(..., A, p, t)`` for every penalty (``proj`` from :meth:`project`)."""
        proj = self.proj if proj is None else proj
        d = self.inverse(alphas)
        basis = self.XtU if self.dual else self.Q
        return basis[..., None, :, :] @ (proj[..., None, :, :] * d)

    def leave_one_out(self, alphas: torch.Tensor, yc: torch.Tensor, fit_intercept: bool):
        """Leave-one-out residuals ``(A, n, t)`` from the hat matrix's diagonal (no batch dims).

        ``e_i = (y_i - yhat_i) / (1 - h_ii)``; with an (unpenalised) intercept the hat
        matrix gains ``1/n``, since centred columns are orthogonal to the constant.
        """
        d = self.inverse(alphas)
        if self.dual:
            s = self.lam[None, :, None] * d  # lambda / (lambda + alpha)
            hat = (self.U**2) @ s
            fitted = self.U @ (self.proj[None] * s)
        else:
            P = self.Xc @ self.Q
            hat = (P**2) @ d
            fitted = P @ (self.proj[None] * d)
        if fit_intercept:
            hat = hat + 1.0 / yc.shape[0]
        return (yc[None] - fitted) / (1.0 - hat)


def _centre(X: torch.Tensor, y: torch.Tensor, fit_intercept: bool):
    if fit_intercept:
        x_mean = X.mean(dim=-2, keepdim=True)
        y_mean = y.mean(dim=-2, keepdim=True)
        return X - x_mean, y - y_mean, x_mean, y_mean
    zx = torch.zeros_like(X[..., :1, :])
    zy = torch.zeros_like(y[..., :1, :])
    return X, y, zx, zy


def _column_scores(y: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor | None, scoring: str):
    """Per-target scores over the sample axis (-2), ``mask`` marking real samples.

    R^2 follows ``sklearn.metrics.r2_score`` (a constant target scores 1.0 when
    predicted exactly, else 0.0).
    """
    if mask is None:
        mask = torch.ones_like(y[..., :1])
    n = mask.sum(dim=-2)
    resid = (y - pred) * mask
    if scoring == "neg_mean_absolute_error":
        return -resid.abs().sum(dim=-2) / n
    ss_res = (resid**2).sum(dim=-2)
    if scoring == "neg_mean_squared_error":
        return -ss_res / n
    y_mean = (y * mask).sum(dim=-2, keepdim=True) / n[..., None, :]
    ss_tot = (((y - y_mean) * mask) ** 2).sum(dim=-2)
    ss_tot = ss_tot.expand_as(ss_res)
    ok = ss_tot > 0
    r2 = 1.0 - ss_res / torch.where(ok, ss_tot, torch.ones_like(ss_tot))
    return torch.where(ok, r2, (ss_res == 0).to(r2.dtype))


class _Identity(RegressorMixin, BaseEstimator):
    """Stands in for a fitted regressor whose predictions are already known (scorers)."""

    def fit(self, X, y=None):  # pragma: no cover - scorers only call predict
        return self

    def predict(self, predictions):
        return predictions


# ---------------------------------------------------------------------- shared base
class _LinearBase(RegressorMixin, NeuroMLEstimator):
    """Input/output plumbing shared by the two ridge decoders."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _prepare(self, X, y):
        """Validate, record the target's layout; return X and float64 y as tensors, and the info."""
        import xarray as xr

        output_dim, output_coords = "output", None
        if isinstance(y, xr.DataArray) and y.ndim == 2:
            output_dim = str(y.dims[-1])
            if y.dims[-1] in y.coords:
                output_coords = np.asarray(y.coords[y.dims[-1]].values)
        if isinstance(y, torch.Tensor):
            y = to_numpy(y)
        Xt, y, info = self._validate_X(X, y, reset=True, y_numeric=True, multi_output=True)
        self.output_dim_, self.output_coords_ = output_dim, output_coords
        self._y_1d = y.ndim == 1
        y2 = y[:, None] if y.ndim == 1 else y
        yt = torch.as_tensor(np.ascontiguousarray(y2, dtype=np.float64), device=self.device_)
        return Xt, yt, info

    def _store(self, coef: torch.Tensor, intercept: torch.Tensor, dtype: torch.dtype) -> None:
        """Store ``(p, t)`` coefficients and ``(t,)`` intercepts as NumPy in sklearn's shapes."""
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        coef = np.ascontiguousarray(to_numpy(coef.mT), dtype=np_dtype)
        intercept = to_numpy(intercept).astype(np_dtype)
        self.coef_ = coef[0] if self._y_1d else coef
        if not self.fit_intercept:
            self.intercept_ = 0.0  # as scikit-learn, whatever the number of targets
        else:
            self.intercept_ = float(intercept[0]) if self._y_1d else intercept

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        y_pred : same type as X, shape (n_samples,) or (n_samples, n_targets)
            A DataArray keeps the sample coordinates of ``X``; a multi-output
            prediction's last dimension is named after the training target's
            (``"output"`` when it had no name).
        """
        self._check_fitted()
        Xt, _, info = self._validate_X(X, reset=False)
        coef = torch.as_tensor(np.atleast_2d(self.coef_), device=Xt.device, dtype=Xt.dtype)
        intercept = torch.as_tensor(np.atleast_1d(self.intercept_), device=Xt.device,
                                    dtype=Xt.dtype)
        pred = Xt @ coef.mT + intercept
        if np.ndim(self.coef_) == 1:
            return self._wrap(info, pred[:, 0], None, device=self.device_)
        return self._wrap(info, pred, self.output_dim_, self.output_coords_,
                          device=self.device_)

    def score(self, X, y, sample_weight=None):
        """R^2 of the predictions (uniform average over targets), as scikit-learn's.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        pred = to_numpy(self.predict(X))
        return float(r2_score(to_numpy(y), pred, sample_weight=sample_weight))


# ---------------------------------------------------------------------- estimators
class LinearDecoder(_LinearBase):
    """Ridge regression decoder of continuous behaviour (multi-output).

    Minimises ``||y - X w - b||^2 + alpha ||w||^2`` (the intercept is not penalised),
    exactly as :class:`sklearn.linear_model.Ridge`, by one eigendecomposition of
    ``X^T X`` (or of ``X X^T`` when ``n_samples < n_features``) on the device.

    Parameters
    ----------
    alpha : float or array-like of shape (n_targets,), default=1.0
        L2 penalty, one per target when an array. ``alpha=0`` gives the minimum-norm
        least-squares solution.
    fit_intercept : bool, default=True
        Fit an intercept (by centring ``X`` and ``y``).
    device : str or torch.device, default="auto"
        ``"auto"`` is the first CUDA GPU when there is one, else the CPU.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
        0.0 when ``fit_intercept=False``.
    n_features_in_ : int
    output_dim_ : str
        Name of the target dimension of multi-output DataArray predictions.
    output_coords_ : ndarray or None
        Coordinates of that dimension (from a DataArray ``y``).
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml import LinearDecoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5))
    >>> y = X @ np.array([1.0, -2.0, 0.0, 0.5, 3.0]) + 1.0
    >>> dec = LinearDecoder(alpha=1e-6, device="cpu").fit(X, y)
    >>> np.allclose(dec.coef_, [1.0, -2.0, 0.0, 0.5, 3.0]), round(dec.intercept_, 6)
    (True, 1.0)
    """

    _parameter_constraints: ClassVar[dict] = {
        "alpha": [Interval(Real, 0, None, "left"), "array-like"],
        "fit_intercept": ["boolean"],
        "device": ["device"],
    }

    def __init__(self, alpha=1.0, *, fit_intercept=True, device="auto"):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.device = device

    def fit(self, X, y):
        """Fit the ridge decoder.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)
        y : array-like or DataArray of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        Xt, yt, _ = self._prepare(X, y)
        alphas = _alpha_matrix(self.alpha, yt.shape[1], self.device_)
        Xc, yc, x_mean, y_mean = _centre(Xt.to(torch.float64), yt, self.fit_intercept)
        coef = _RidgeSolver(Xc, yc).coef(alphas)[0]
        intercept = (y_mean - x_mean @ coef)[0]
        self._store(coef, intercept, Xt.dtype)
        return self

    # ------------------------------------------------------------------ batched protocol
    #: scorings the batched protocol computes on the device (see _batched_cv_scores)
    _batched_scorings: ClassVar[tuple[str, ...]] = _SCORINGS

    def _batched_cv_scores(self, X, Y, train, test, scoring=None, *, generalize=False):
        """Cross-validated scores of many target sets (and feature sets) in batched solves.

        The protocol :func:`~neuroml.decoding.permutation_test` and
        :class:`~neuroml.decoding.TimeResolvedDecoder` use for neuroml decoders (as
        ``LogisticDecoder._batched_cv_scores``). The eigendecomposition of each fold's
        training data does not depend on the targets, so with shared folds one
        decomposition per (feature set, fold) serves every target set: a ridge
        permutation null costs a few matrix products per permutation.

        Parameters
        ----------
        X : torch.Tensor of shape (n, F) or (G, n, F)
            Validated data on the estimator's device; a 3-D tensor holds ``G`` feature
            sets (time bins) for the same samples, each decoded separately.
        Y : ndarray of shape (n_batch, n) or (n_batch, n, n_targets)
            Target sets (e.g. the observed targets and their permutations).
        train, test : ndarray of bool, shape (n_batch or 1, n_folds, n)
            Training and test masks of each fold (per target set when the splits
            depend on the targets).
        scoring : str or None
            One of ``_batched_scorings``; None is the estimator's ``score`` (R^2,
            uniform average over targets).
        generalize : bool, default=False
            With 3-D ``X``, also apply the decoder trained on each feature set to every
            other one (temporal generalisation).

        Returns
        -------
        scores : ndarray of shape (n_batch, n_folds), (n_batch, n_folds, G) for 3-D X,
            or (n_batch, n_folds, G, G) (train set, test set) with ``generalize``.
        """
        scoring = "r2" if scoring is None else scoring
        if scoring not in _SCORINGS:
            raise ParameterError(f"scoring={scoring!r} is not batched; allowed: {_SCORINGS}.")
        grouped = X.ndim == 3
        Xg = (X if grouped else X.unsqueeze(0)).to(torch.float64)
        G, n, F = Xg.shape
        dev = Xg.device
        Y = np.asarray(Y, dtype=np.float64)
        Y = Y[..., None] if Y.ndim == 2 else Y
        if Y.ndim != 3 or Y.shape[1] != n:
            raise ParameterError(
                f"Y must have shape (n_batch, {n}) or (n_batch, {n}, n_targets); got {Y.shape}.")
        n_batch, _, t = Y.shape
        train, test = np.asarray(train, dtype=bool), np.asarray(test, dtype=bool)
        n_folds = train.shape[1]
        alphas = _alpha_matrix(self.alpha, t, dev)
        x_mean = Xg.mean(dim=1, keepdim=True) if self.fit_intercept else torch.zeros_like(Xg[:, :1])
        X0 = Xg - x_mean  # centred once: fold means are small, no cancellation

        def masks(m, sl):
            m = m if m.shape[0] == 1 else m[sl]
            return torch.as_tensor(np.ascontiguousarray(m), device=dev, dtype=torch.float64)

        def decompose(tr):  # tr: (b', f, n) -> solver over (G, b', f) and the fold means
            n_tr = tr.sum(dim=-1)[..., None]  # (b', f, 1)
            mu = (tr @ X0[:, None]) / n_tr if self.fit_intercept else \
                torch.zeros((G, *tr.shape[:2], F), dtype=torch.float64, device=dev)
            Xc = (X0[:, None, None] - mu[..., None, :]) * tr[..., None]  # (G, b', f, n, F)
            return _RidgeSolver(Xc), mu, n_tr

        per_item = n_folds * (n * t * (3 + 2 * G) + 4 * G * F * t)
        if train.shape[0] != 1:
            per_item += n_folds * G * (n * F + min(n, F) ** 2 + n * F)
        chunk = _chunk_size(n_batch, per_item, dev)
        shared = None if train.shape[0] != 1 else decompose(masks(train, slice(None)))
        out = []
        for start in range(0, n_batch, chunk):
            sl = slice(start, min(n_batch, start + chunk))
            tr = masks(train, sl)
            solver, mu, n_tr = shared if shared is not None else decompose(tr)
            Yb = torch.as_tensor(Y[sl], device=dev)  # (b, n, t)
            if self.fit_intercept:
                y_mean = (tr[:, :, None, :] @ Yb[:, None]) / n_tr[..., None]  # (b, f, 1, t)
            else:
                y_mean = torch.zeros((Yb.shape[0], n_folds, 1, t), dtype=torch.float64,
                                     device=dev)
            yc = (Yb[:, None] - y_mean) * tr[..., None]  # (b, f, n, t)
            coef = solver.coef(alphas, solver.project(yc))[..., 0, :, :]  # (G, b, f, F, t)
            mu_raw = mu + x_mean[:, None]  # fold means in the input's coordinates
            intercept = y_mean - mu_raw[..., None, :] @ coef  # (G, b, f, 1, t)
            te = masks(test, sl)[..., None]  # (b', f, n, 1)
            y_true = Yb[:, None]  # (b, 1, n, t)
            if not generalize:
                pred = Xg[:, None, None] @ coef + intercept  # (G, b, f, n, t)
                s = _column_scores(y_true, pred, te, scoring).mean(dim=-1)  # (G, b, f)
                s = s.permute(1, 2, 0)
                out.append(to_numpy(s if grouped else s[..., 0]))
            else:
                rows = []
                for g in range(G):  # decoder of feature set g on every feature set
                    pred = Xg[:, None, None] @ coef[g] + intercept[g]  # (G_test, b, f, n, t)
                    rows.append(_column_scores(y_true, pred, te, scoring).mean(dim=-1))
                out.append(to_numpy(torch.stack(rows).permute(2, 3, 0, 1)))
        return np.concatenate(out, axis=0)

    def _batched_fit(self, X, y):
        """Fit one decoder per feature set of ``X`` in one batched solve.

        Parameters
        ----------
        X : torch.Tensor of shape (G, n, F)
            Validated data on the estimator's device.
        y : ndarray of shape (n,) or (n, n_targets)

        Returns
        -------
        list of G fitted clones of this estimator
        """
        y = np.asarray(y, dtype=np.float64)
        y2 = y[:, None] if y.ndim == 1 else y
        yt = torch.as_tensor(y2, device=X.device)
        alphas = _alpha_matrix(self.alpha, y2.shape[1], X.device)
        Xc, yc, x_mean, y_mean = _centre(X.to(torch.float64), yt, self.fit_intercept)
        coef = _RidgeSolver(Xc, yc).coef(alphas)[:, 0]  # (G, F, t)
        intercept = (y_mean - x_mean @ coef)[:, 0]  # (G, t)
        fitted = self._unfitted_copies(X.shape[0])
        for g, est in enumerate(fitted):
            est.device_ = X.device
            est.n_features_in_ = int(X.shape[-1])
            est.output_dim_, est.output_coords_ = "output", None
            est._y_1d = y.ndim == 1
            est._store(coef[g], intercept[g], X.dtype)
        return fitted


class LinearDecoderCV(_LinearBase):
    """Ridge decoder with the penalty chosen by cross-validation.

    With ``cv=None`` (default) the penalty is chosen by efficient leave-one-out
    cross-validation, the generalised cross-validation of
    :class:`sklearn.linear_model.RidgeCV`: the leave-one-out residuals of every penalty
    come from one eigendecomposition. With ``cv=k`` or a splitter, every fold's
    training set is decomposed in one batched eigendecomposition and all folds x
    penalties are scored together; the model is then refitted on all samples.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,), default=(0.1, 1.0, 10.0)
        Penalties to try (strictly positive for ``cv=None``).
    cv : int, cross-validation splitter, iterable of (train, test) or None, default=None
        None: leave-one-out (GCV). An int: :class:`~sklearn.model_selection.KFold`
        with that many folds (no shuffling, as ``RidgeCV``).
    scoring : {"r2", "neg_mean_squared_error", "neg_mean_absolute_error"}, callable or None, default=None
        What to maximise. None follows ``RidgeCV``: the mean squared leave-one-out
        error for ``cv=None`` and R^2 (uniform average over targets, mean over folds)
        for k-fold. A callable is a scikit-learn scorer ``scorer(estimator, X, y)``;
        it is called on the host with an estimator whose ``predict`` returns the
        held-out predictions.
    fit_intercept : bool, default=True
    alpha_per_target : bool, default=False
        Choose a penalty for each target separately (``y`` 2-D). Unlike ``RidgeCV``,
        also allowed with k-fold cross-validation.
    device : str or torch.device, default="auto"

    Attributes
    ----------
    alpha_ : float or ndarray of shape (n_targets,)
        Chosen penalty (one per target with ``alpha_per_target``).
    best_score_ : float or ndarray of shape (n_targets,)
        Cross-validated score of ``alpha_`` (the negative mean squared error for
        ``cv=None, scoring=None``, as ``RidgeCV``).
    scores_ : ndarray of shape (n_alphas,) or (n_alphas, n_targets)
        Cross-validated score of every penalty (per target with ``alpha_per_target``).
    cv_values_ : ndarray of shape (n_samples, n_alphas) or (n_samples, n_targets, n_alphas)
        Only for ``cv=None``: the squared leave-one-out errors when ``scoring`` is
        None, else the leave-one-out predictions (``RidgeCV(store_cv_results=True)``'s
        ``cv_results_``).
    fold_scores_ : ndarray of shape (n_splits, n_alphas) or (n_splits, n_alphas, n_targets)
        Only for k-fold: the score of every fold and penalty.
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    n_features_in_ : int
    output_dim_ : str
    output_coords_ : ndarray or None
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml import LinearDecoderCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 200))  # 50 trials, 200 units: the Gram matrix is used
    >>> y = X[:, :5].sum(axis=1) + rng.normal(size=50)
    >>> dec = LinearDecoderCV(alphas=[0.1, 10.0, 1000.0], device="cpu").fit(X, y)
    >>> dec.alpha_, dec.cv_values_.shape
    (1000.0, (50, 3))
    """

    _parameter_constraints: ClassVar[dict] = {
        "alphas": ["array-like", Interval(Real, 0, None, "neither")],
        "scoring": [None, Options(_SCORINGS), "callable"],
        "fit_intercept": ["boolean"],
        "alpha_per_target": ["boolean"],
        "device": ["device"],
    }

    def __init__(self, alphas=(0.1, 1.0, 10.0), *, cv=None, scoring=None, fit_intercept=True,
                 alpha_per_target=False, device="auto"):
        self.alphas = alphas
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.alpha_per_target = alpha_per_target
        self.device = device

    def _validate_params(self):
        super()._validate_params()  # every parameter but cv, whose forms are checked here
        cv = self.cv
        if isinstance(cv, str | bytes) or not (
                cv is None or (isinstance(cv, Integral) and not isinstance(cv, bool) and cv >= 2)
                or hasattr(cv, "split") or _is_split_iterable(cv)):
            raise ParameterError(
                "The 'cv' parameter of LinearDecoderCV must be None, an int in the range "
                "[2, inf), a cross-validation splitter or an iterable of (train, test) "
                f"index arrays. Got {cv!r} instead."
            )
        try:
            alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        except (TypeError, ValueError):
            alphas = np.array([np.nan])
        positive = self.cv is None
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or \
                np.any(alphas <= 0 if positive else alphas < 0):
            allowed = "> 0 (leave-one-out needs a penalty)" if positive else ">= 0"
            raise ParameterError(
                "The 'alphas' parameter of LinearDecoderCV must be a non-empty 1-D list of "
                f"finite floats {allowed}. Got {self.alphas!r} instead."
            )

    def fit(self, X, y):
        """Choose the penalty by cross-validation, then fit on all samples.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)
        y : array-like or DataArray of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        for stale in ("cv_values_", "fold_scores_"):
            self.__dict__.pop(stale, None)
        Xt, yt, _ = self._prepare(X, y)
        X64 = Xt.to(torch.float64)
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        t = yt.shape[1]
        per_target = bool(self.alpha_per_target) and t > 1
        a_col = torch.as_tensor(alphas, device=self.device_)[:, None]  # (A, 1)
        Xc, yc, x_mean, y_mean = _centre(X64, yt, self.fit_intercept)
        full = _RidgeSolver(Xc, yc)
        if self.cv is None:
            scores = self._gcv(full, a_col, yt, yc)
        else:
            scores = self._kfold(X64, yt, a_col)
        # scores: (A, t) per target or (A,) pooled; ties -> first alpha, as RidgeCV.
        best = np.argmax(scores, axis=0)
        if per_target:
            self.alpha_ = alphas[best]
            self.best_score_ = scores[best, np.arange(t)]
            a_fit = torch.as_tensor(self.alpha_, device=self.device_)[None, :]
        else:
            self.alpha_ = float(alphas[best])
            self.best_score_ = float(scores[best])
            a_fit = torch.as_tensor([[self.alpha_]], device=self.device_, dtype=torch.float64)
        self.scores_ = scores
        coef = full.coef(a_fit)[0]
        intercept = (y_mean - x_mean @ coef)[0]
        self._store(coef, intercept, Xt.dtype)
        return self

    # ------------------------------------------------------------------ selection
    def _aggregate(self, per_target: torch.Tensor) -> np.ndarray:
        """(..., A, t) per-target scores -> (..., A, t) or (..., A) as chosen."""
        if self.alpha_per_target and per_target.shape[-1] > 1:
            return to_numpy(per_target)
        return to_numpy(per_target.mean(dim=-1))

    def _gcv(self, solver: _RidgeSolver, alphas, y, yc) -> np.ndarray:
        loo = solver.leave_one_out(alphas, yc, self.fit_intercept)  # (A, n, t)
        n, t = y.shape
        if self.scoring is None:
            values = loo**2
            scores = self._aggregate(-values.mean(dim=1))
        else:
            values = y[None] - loo
            scores = self._score_predictions(y[None], values, None)
        cv_values = to_numpy(values.permute(1, 2, 0))  # (n, t, A)
        self.cv_values_ = cv_values[:, 0, :] if self._y_1d else cv_values
        return scores

    def _score_predictions(self, y, pred, mask) -> np.ndarray:
        """Scores ``(..., A[, t])`` of held-out predictions ``pred`` ``(..., A, m, t)``."""
        scoring = self.scoring or "r2"
        if not callable(scoring):
            return self._aggregate(_column_scores(y, pred, mask, scoring))
        y_np, pred_np = to_numpy(y), to_numpy(pred)
        mask_np = np.ones((1,), bool) if mask is None else to_numpy(mask) > 0
        mask_np = np.broadcast_to(mask_np, pred_np.shape[:-1] + (1,))
        per_target = self.alpha_per_target and pred_np.shape[-1] > 1
        y_np = np.broadcast_to(y_np, pred_np.shape)
        out = np.empty(pred_np.shape[:-2] + ((pred_np.shape[-1],) if per_target else ()))
        for index in np.ndindex(*pred_np.shape[:-2]):
            keep = mask_np[index][:, 0]
            yt, pt = y_np[index][keep], pred_np[index][keep]
            if self._y_1d:
                yt, pt = yt[:, 0], pt[:, 0]
            if per_target:
                out[index] = [scoring(_Identity(), pt[:, j], yt[:, j]) for j in range(yt.shape[1])]
            else:
                out[index] = scoring(_Identity(), pt, yt)
        return out

    def _kfold(self, X, y, alphas) -> np.ndarray:
        """All folds x penalties: one batched eigendecomposition, one batched scoring."""
        n = X.shape[0]
        y_host = to_numpy(y)
        cv = check_cv(self.cv, y_host[:, 0] if self._y_1d else y_host, classifier=False)
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in
                  cv.split(np.zeros((n, 1)), y_host[:, 0] if self._y_1d else y_host)]
        if not splits:
            raise ParameterError(f"The cross-validation {self.cv!r} produced no splits.")
        dev = X.device
        m_tr = max(len(tr) for tr, _ in splits)
        m_te = max(len(te) for _, te in splits)
        k, p = len(splits), X.shape[1]
        tr_idx = torch.zeros((k, m_tr), dtype=torch.long, device=dev)
        tr_mask = torch.zeros((k, m_tr, 1), dtype=X.dtype, device=dev)
        te_idx = torch.zeros((k, m_te), dtype=torch.long, device=dev)
        te_mask = torch.zeros((k, m_te, 1), dtype=X.dtype, device=dev)
        for f, (tr, te) in enumerate(splits):
            tr_idx[f, : len(tr)] = torch.as_tensor(tr, device=dev)
            tr_mask[f, : len(tr)] = 1
            te_idx[f, : len(te)] = torch.as_tensor(te, device=dev)
            te_mask[f, : len(te)] = 1
        n_tr = tr_mask.sum(dim=1, keepdim=True)  # (k, 1, 1)
        Xtr, ytr = X[tr_idx] * tr_mask, y[tr_idx] * tr_mask  # zero rows for padding
        if self.fit_intercept:
            x_mean = Xtr.sum(dim=1, keepdim=True) / n_tr
            y_mean = ytr.sum(dim=1, keepdim=True) / n_tr
        else:
            x_mean = torch.zeros((k, 1, p), dtype=X.dtype, device=dev)
            y_mean = torch.zeros((k, 1, y.shape[1]), dtype=X.dtype, device=dev)
        Xc, yc = (Xtr - x_mean) * tr_mask, (ytr - y_mean) * tr_mask
        coef = _RidgeSolver(Xc, yc).coef(alphas)  # (k, A, p, t)
        intercept = y_mean[:, None] - x_mean[:, None] @ coef  # (k, A, 1, t)
        pred = X[te_idx][:, None] @ coef + intercept  # (k, A, m_te, t)
        fold_scores = self._score_predictions(y[te_idx][:, None], pred, te_mask[:, None])
        self.fold_scores_ = fold_scores
        return fold_scores.mean(axis=0)


def _chunk_size(n_items: int, per_item_elems: float, device: torch.device) -> int:
    """How many batch items fit a memory budget (2 GB on the CPU, 40 % of free GPU memory)."""
    budget = 0.4 * torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else 2e9
    per_item = max(per_item_elems * 8 * 4, 1)  # float64, a few live temporaries per element
    return int(max(1, min(n_items, budget // per_item)))


def _is_split_iterable(cv) -> bool:
    return hasattr(cv, "__iter__") and not isinstance(cv, str | bytes)


def _alpha_matrix(alpha, n_targets: int, device) -> torch.Tensor:
    """``alpha`` as a ``(1, 1)`` or ``(1, n_targets)`` float64 tensor, validated."""
    try:
        a = np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError):
        a = np.array(np.nan)
    if a.ndim > 1 or (a.ndim == 1 and a.size not in (1, n_targets)) or not np.all(np.isfinite(a)) \
            or np.any(a < 0):
        raise ParameterError(
            "The 'alpha' parameter of LinearDecoder must be a float >= 0 or an array of "
            f"{n_targets} such floats (one per target). Got {alpha!r} instead."
        )
    return torch.as_tensor(a.reshape(1, -1), device=device)
