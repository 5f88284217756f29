"""Logistic-regression decoders: :class:`LogisticDecoder` and :class:`LogisticDecoderCV`.

Both minimise scikit-learn's objective (see :mod:`neuroml.decoding._solvers`), so the
same ``C`` gives the same model as ``sklearn.linear_model.LogisticRegression``; the
solves are batched torch programs that run on the GPU when there is one.
"""

from __future__ import annotations

import numbers
import warnings
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from .._parallel import threads_for
from .._validation import Interval, Options
from ..base import NeuroMLEstimator
from ..device import to_numpy
from ..errors import ParameterError
from . import _solvers
from .cv import check_cv_param, resolve_splits, split_masks

__all__ = ["LogisticDecoder", "LogisticDecoderCV"]

SCORINGS = ("accuracy", "balanced_accuracy", "neg_log_loss")

_COMMON_CONSTRAINTS = {
    "penalty": [Options(("l2", "l1")), None],
    "class_weight": [dict, Options(("balanced",)), None],
    "fit_intercept": ["boolean"],
    "max_iter": [Interval(numbers.Integral, 0, None)],
    "tol": [Interval(numbers.Real, 0, None, "left")],
    "device": ["device"],
    "random_state": ["random_state"],
}


# ---------------------------------------------------------------------- helpers
def _encode(y) -> tuple[np.ndarray, np.ndarray]:
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise ParameterError(
            "This solver needs samples of at least 2 classes in the data, but the data "
            f"contains only one class: {classes[0]!r}."
        )
    return classes, codes.reshape(-1)


def _sample_weights(class_weight, classes: np.ndarray, y: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per-sample weights from ``class_weight`` (scikit-learn's ``compute_class_weight``)."""
    if class_weight is None:
        return np.ones(codes.size)
    if isinstance(class_weight, dict):
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ParameterError(
                "The given class_weight dict must have the class labels as keys; "
                f"classes={classes.tolist()} but got keys {sorted(map(str, unknown))}."
            )
    return compute_class_weight(class_weight, classes=classes, y=y)[codes]


def _balanced_fold_weights(codes: torch.Tensor, train: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``class_weight="balanced"`` weights computed on each training set.

    ``codes`` (B, n) class codes, ``train`` (B, F, n) masks -> weights (B, F, n) that
    equal ``n_train / (n_present_classes * count[class])`` on training samples.
    """
    oh = torch.nn.functional.one_hot(codes.long(), n_classes).to(train.dtype)  # (B, n, K)
    counts = torch.einsum("bfn,bnk->bfk", train, oh)
    present = (counts > 0).sum(-1, keepdim=True).to(train.dtype)
    n_train = train.sum(-1, keepdim=True)
    per_class = torch.where(counts > 0, n_train / (present * counts.clamp_min(1)), torch.zeros_like(counts))
    return torch.einsum("bfk,bnk->bfn", per_class, oh) * train


def _fixed_fold_weights(cw: np.ndarray, codes: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    w = torch.as_tensor(cw, dtype=train.dtype, device=train.device)[codes.long()]  # (B, n)
    return w.unsqueeze(1) * train


def _scores_from_logits(Z: torch.Tensor, codes: torch.Tensor, test: torch.Tensor,
                        scoring: str, n_classes: int) -> torch.Tensor:
    """Scores of many problems from their logits, restricted to each problem's test set.

    Parameters
    ----------
    Z : (..., M, Kp, n) logits (``Kp == 1`` for binary problems)
    codes : (M, n) or (1, n) true class codes
    test : (M, n) float test masks
    scoring : one of ``SCORINGS``

    Returns
    -------
    (..., M) scores
    """
    binary = Z.shape[-2] == 1
    codes = codes.long()
    n_test = test.sum(-1).clamp_min(1)
    if scoring in ("accuracy", "balanced_accuracy"):
        pred = (Z[..., 0, :] > 0).long() if binary else Z.argmax(-2)  # (..., M, n)
        hit = (pred == codes).to(test.dtype)
        if scoring == "accuracy":
            return (hit * test).sum(-1) / n_test
        recall = torch.zeros(hit.shape[:-1], dtype=test.dtype, device=test.device)
        n_present = torch.zeros_like(n_test)
        for k in range(n_classes):
            in_k = (codes == k).to(test.dtype) * test
            count = in_k.sum(-1)
            recall = recall + (hit * in_k).sum(-1) / count.clamp_min(1)
            n_present = n_present + (count > 0).to(test.dtype)
        return recall / n_present.clamp_min(1)
    if scoring == "neg_log_loss":
        eps = torch.finfo(Z.dtype).eps
        if binary:
            p1 = torch.sigmoid(Z[..., 0, :])
            p = torch.where(codes == 1, p1, 1 - p1)
        else:
            P = torch.softmax(Z, dim=-2)
            idx = codes.unsqueeze(-2).expand(Z.shape[:-2] + (1, Z.shape[-1]))
            p = torch.gather(P, -2, idx)[..., 0, :]
        ll = -torch.log(p.clamp(eps, 1 - eps))
        return -(ll * test).sum(-1) / n_test
    raise ParameterError(f"Unknown scoring {scoring!r}; allowed: {SCORINGS}.")


def _chunk_size(n_items: int, per_item_elems: float, device: torch.device, itemsize: int) -> int:
    """How many batch items fit a memory budget (a few GB on the CPU, half the free GPU memory)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = 0.4 * free
    else:
        budget = 2e9
    per_item = max(per_item_elems * itemsize * 10, 1)  # ~10 live temporaries per element
    return int(max(1, min(n_items, budget // per_item)))


# ---------------------------------------------------------------------- base class
class _LogisticBase(ClassifierMixin, NeuroMLEstimator):
    """Prediction methods shared by the logistic decoders (fitted ``coef_``/``intercept_``)."""

    def _decision(self, Xt: torch.Tensor) -> torch.Tensor:
        W = torch.as_tensor(self.coef_, dtype=Xt.dtype, device=Xt.device)
        b = torch.as_tensor(self.intercept_, dtype=Xt.dtype, device=Xt.device)
        return Xt @ W.T + b

    def _proba(self, Z: torch.Tensor) -> torch.Tensor:
        if Z.shape[1] == 1:
            p1 = torch.sigmoid(Z[:, 0])
            return torch.stack([1 - p1, p1], dim=1)
        return torch.softmax(Z, dim=1)

    def _input(self, X):
        self._check_fitted()
        return self._validate_X(X, reset=False)

    def _threads(self, Xt: torch.Tensor):
        return threads_for(Xt.shape[0] * Xt.shape[1] * self.coef_.shape[0], Xt.device)

    def decision_function(self, X):
        """Logits: ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features)

        Returns
        -------
        scores : shape (n_samples,) for two classes (positive class ``classes_[1]``),
            else (n_samples, n_classes) with a ``"class"`` dimension for DataArrays
        """
        Xt, _, info = self._input(X)
        with self._threads(Xt):
            Z = self._decision(Xt)
        if Z.shape[1] == 1:
            return self._wrap(info, Z[:, 0], None, device=self.device_)
        return self._wrap(info, Z, "class", self.classes_, device=self.device_)

    def predict_proba(self, X):
        """Class probabilities (softmax; sigmoid for two classes), columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features)

        Returns
        -------
        proba : shape (n_samples, n_classes)
            A DataArray input gives a DataArray with a ``"class"`` dimension whose
            coordinates are the class labels.
        """
        Xt, _, info = self._input(X)
        with self._threads(Xt):
            P = self._proba(self._decision(Xt))
        return self._wrap(info, P, "class", self.classes_, device=self.device_)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (computed stably).

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features)

        Returns
        -------
        log_proba : shape (n_samples, n_classes)
        """
        Xt, _, info = self._input(X)
        with self._threads(Xt):
            Z = self._decision(Xt)
            if Z.shape[1] == 1:
                z = Z[:, 0]
                L = torch.stack([torch.nn.functional.logsigmoid(-z),
                                 torch.nn.functional.logsigmoid(z)], 1)
            else:
                L = torch.log_softmax(Z, dim=1)
        return self._wrap(info, L, "class", self.classes_, device=self.device_)

    def predict(self, X):
        """Most probable class label per sample.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : shape (n_samples,)
            Labels from ``classes_``; a tensor for tensor input when the labels are
            numeric, a NumPy array otherwise.
        """
        Xt, _, info = self._input(X)
        with self._threads(Xt):
            Z = self._decision(Xt)
            codes = (Z[:, 0] > 0).long() if Z.shape[1] == 1 else Z.argmax(dim=1)
        labels = self.classes_[to_numpy(codes)]
        if info.kind == "torch" and labels.dtype.kind not in "biuf":
            return labels
        return self._wrap(info, labels, None, device=self.device_)

    def score(self, X, y, sample_weight=None):
        """Accuracy of :meth:`predict` on ``(X, y)``.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        y = to_numpy(y)
        return float(accuracy_score(y, to_numpy(self.predict(X)), sample_weight=sample_weight))

    def _set_solution(self, coef: torch.Tensor, intercept: torch.Tensor, classes, n_iter) -> None:
        self.classes_ = classes
        coef = to_numpy(coef)
        self.coef_ = coef.astype(np.float64 if coef.dtype == np.float64 else np.float32)
        self.intercept_ = to_numpy(intercept).astype(self.coef_.dtype)
        self.n_iter_ = np.asarray(n_iter, dtype=np.int32).reshape(-1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


# ---------------------------------------------------------------------- LogisticDecoder
class LogisticDecoder(_LogisticBase):
    """Penalised multinomial logistic regression, fitted by a batched torch solver.

    Minimises scikit-learn's objective, so the same ``C`` gives the same model as
    ``sklearn.linear_model.LogisticRegression``::

        C * sum_i s_i * loss_i(W, b) + penalty(W)

    with ``penalty = ||W||_F^2 / 2`` (``"l2"``), ``||W||_1`` (``"l1"``) or nothing
    (``None``), ``s_i`` the class weight of sample ``i`` and the intercept ``b`` not
    penalised. Smaller ``C`` means stronger regularisation. Two classes use one logit
    (``coef_`` has one row, positive class ``classes_[1]``); three or more use the full
    multinomial (softmax) model with one row per class.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, > 0. Ignored when ``penalty=None``.
    penalty : {"l2", "l1"} or None, default="l2"
        ``"l2"`` is solved by preconditioned L-BFGS, ``"l1"`` by FISTA (accelerated
        proximal gradient), ``None`` by L-BFGS without a penalty.
    class_weight : dict, "balanced" or None, default=None
        Weights per class, folded into the sample weights; ``"balanced"`` is
        ``n_samples / (n_classes * count[class])``.
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Maximum solver iterations (one gradient evaluation each).
    tol : float, default=1e-4
        Stop when the largest absolute entry of the gradient of the objective divided
        by ``C * sum(s)`` is at most ``tol`` (scikit-learn's ``gtol``); for ``"l1"``,
        the gradient mapping of the proximal step.
    device : str, default="auto"
        ``"auto"`` (CUDA if present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    random_state : int, RandomState, Generator or None, default=None
        Accepted for a uniform API; the solvers are deterministic and draw nothing.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (sorted).
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,)
        Solver iterations.
    n_features_in_ : int
    device_ : torch.device
        The device the model was fitted on.

    See Also
    --------
    LogisticDecoderCV : chooses ``C`` by cross-validation, all folds and ``C`` values in
        one batched solve.
    TimeResolvedDecoder : one decoder per time bin.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml import LogisticDecoder
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 200)
    >>> X = rng.normal(size=(200, 5)) + np.eye(3, 5)[y] * 2
    >>> dec = LogisticDecoder(C=1.0, device="cpu").fit(X, y)
    >>> dec.predict_proba(X[:2]).shape
    (2, 3)
    >>> bool(dec.score(X, y) > 0.7)
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "C": [Interval(numbers.Real, 0, None, "neither")],
        **_COMMON_CONSTRAINTS,
    }
    _test_params: ClassVar[dict] = {"device": "cpu"}
    # scorings the batched protocol computes on the device (see _batched_cv_scores)
    _batched_scorings: ClassVar[tuple[str, ...]] = SCORINGS

    def __init__(self, C=1.0, *, penalty="l2", class_weight=None, fit_intercept=True,
                 max_iter=1000, tol=1e-4, device="auto", random_state=None):
        self.C = C
        self.penalty = penalty
        self.class_weight = class_weight
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state

    def _effective_C(self) -> float:
        return float("inf") if self.penalty is None else float(self.C)

    def _solve(self, X, Y, weights, C=None, init=None, data=None) -> _solvers.LogisticSolution:
        binary = Y.shape[-1] == 2
        return _solvers.solve_logistic(
            X, Y, weights, self._effective_C() if C is None else C, penalty=self.penalty,
            fit_intercept=self.fit_intercept, binary=binary, max_iter=self.max_iter,
            tol=self.tol, init=init, data=data)

    def fit(self, X, y):
        """Fit the model.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        Xt, y, _ = self._validate_X(X, y, reset=True)
        classes, codes = _encode(y)
        sw = _sample_weights(self.class_weight, classes, y, codes)
        dt, dev = Xt.dtype, Xt.device
        with threads_for(Xt.numel() * classes.size, dev):
            Y = _solvers.one_hot(torch.as_tensor(codes, device=dev), classes.size, dt)
            sol = self._solve(Xt, Y, torch.as_tensor(sw, dtype=dt, device=dev))
        if not bool(sol.converged.all()) and self.max_iter > 0:
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol}); increase max_iter or scale the data.",
                ConvergenceWarning, stacklevel=2)
        self._set_solution(sol.coef[0, 0], sol.intercept[0, 0], classes, sol.n_iter[0, 0].item())
        return self

    # ------------------------------------------------------------------ batched protocol
    def _batched_cv_scores(self, X, Y, train, test, scoring=None, *, generalize=False):
        """Cross-validated scores of many label sets (and feature sets) in batched solves.

        The protocol :func:`~neuroml.decoding.permutation_test` and
        :class:`~neuroml.decoding.TimeResolvedDecoder` use for neuroml decoders.

        Parameters
        ----------
        X : torch.Tensor of shape (n, F) or (G, n, F)
            Validated data on the estimator's device; a 3-D tensor holds ``G`` feature
            sets (time bins) for the same samples, each decoded separately.
        Y : ndarray of shape (n_batch, n)
            Target sets (e.g. the observed labels and their permutations).
        train, test : ndarray of bool, shape (n_batch or 1, n_folds, n)
            Training and test masks of each fold (per target set when the splits
            depend on the targets).
        scoring : str or None
            One of ``_batched_scorings``; None is the estimator's ``score`` (accuracy).
        generalize : bool, default=False
            With 3-D ``X``, also apply the decoder trained on each feature set to every
            other one (temporal generalisation).

        Returns
        -------
        scores : ndarray of shape (n_batch, n_folds), (n_batch, n_folds, G) for 3-D X,
            or (n_batch, n_folds, G, G) (train set, test set) with ``generalize``.
        """
        scoring = "accuracy" if scoring is None else scoring
        if scoring not in SCORINGS:
            raise ParameterError(f"scoring={scoring!r} is not batched; allowed: {SCORINGS}.")
        n_sets = np.shape(Y)[0] * np.shape(train)[1]
        with threads_for(X.numel() * n_sets * len(np.unique(Y)), X.device):
            return self._batched_cv_scores_impl(X, Y, train, test, scoring, generalize)

    def _batched_cv_scores_impl(self, X, Y, train, test, scoring, generalize, solutions=None):
        grouped = X.ndim == 3
        Xg = X if grouped else X.unsqueeze(0)
        G, n, F = Xg.shape
        Y = np.asarray(Y)
        classes = np.unique(Y)
        check_classification_targets(Y.ravel())
        K = classes.size
        if K < 2:
            raise ParameterError("Decoding needs at least 2 classes in y.")
        codes_all = np.searchsorted(classes, Y)
        n_batch = Y.shape[0]
        train = np.broadcast_to(np.asarray(train, dtype=bool), (n_batch,) + np.shape(train)[1:])
        test = np.broadcast_to(np.asarray(test, dtype=bool), (n_batch,) + np.shape(test)[1:])
        n_folds = train.shape[1]
        dt, dev = Xg.dtype, Xg.device
        data = _solvers.prepare_data(Xg, self.fit_intercept)
        per_item = n_folds * G * (n * K + (F + 1) * K * 25) * (G if generalize else 1)
        chunk = _chunk_size(n_batch, per_item, dev, Xg.element_size())
        out = []
        if self.class_weight not in (None, "balanced"):
            cw = _sample_weights(self.class_weight, classes, classes, np.arange(K))
        for start in range(0, n_batch, chunk):
            sl = slice(start, min(n_batch, start + chunk))
            b = sl.stop - sl.start
            codes = torch.as_tensor(codes_all[sl], device=dev)
            tr = torch.as_tensor(np.array(train[sl]), device=dev).to(dt)
            te = torch.as_tensor(np.array(test[sl]), device=dev).to(dt)
            if self.class_weight == "balanced":
                w = _balanced_fold_weights(codes, tr, K)
            elif self.class_weight is not None:
                w = _fixed_fold_weights(cw, codes, tr)
            else:
                w = tr
            Y1 = _solvers.one_hot(codes, K, dt)  # (b, n, K)
            if b == 1:  # one label set: shared by every fold's problem
                Yp = Y1[0]
            else:
                Yp = Y1.unsqueeze(1).expand(b, n_folds, n, K).reshape(b * n_folds, n, K)
            sol = self._solve(None, Yp, w.reshape(b * n_folds, n), data=data)
            if solutions is not None:
                solutions.append((sol, classes))
            codes_m = codes.unsqueeze(1).expand(b, n_folds, n).reshape(-1, n)  # (M, n)
            te_m = te.reshape(-1, n)
            if not generalize:
                Z = _solvers.logits(Xg, sol.coef, sol.intercept)  # (G, M, Kp, n)
                s = _scores_from_logits(Z, codes_m, te_m, scoring, K)  # (G, M)
                s = s.reshape(G, b, n_folds).permute(1, 2, 0)
                out.append(to_numpy(s if grouped else s[..., 0]))
            else:
                rows = []
                for g in range(G):
                    coef = sol.coef[g:g + 1].expand(G, -1, -1, -1)
                    icpt = sol.intercept[g:g + 1].expand(G, -1, -1)
                    Z = _solvers.logits(Xg, coef, icpt)  # (G_test, M, Kp, n)
                    rows.append(_scores_from_logits(Z, codes_m, te_m, scoring, K))  # (G_test, M)
                s = torch.stack(rows, 0).reshape(G, G, b, n_folds).permute(2, 3, 0, 1)
                out.append(to_numpy(s))
        return np.concatenate(out, axis=0)

    def _batched_cv_fit(self, X, y, train, test, scoring=None, *, generalize=False):
        """:meth:`_batched_cv_scores` for one label set plus :meth:`_batched_fit`, in one solve.

        The fit on all samples is one more problem per feature set of the same batched
        solve as the folds (an all-ones training mask).

        Parameters
        ----------
        X : torch.Tensor of shape (G, n, F)
        y : ndarray of shape (n,)
        train, test : ndarray of bool, shape (n_folds, n)
        scoring : str or None
        generalize : bool, default=False

        Returns
        -------
        scores : ndarray of shape (n_folds, G) or (n_folds, G, G)
        fitted : list of G fitted clones of this estimator
        """
        scoring = "accuracy" if scoring is None else scoring
        if scoring not in SCORINGS:
            raise ParameterError(f"scoring={scoring!r} is not batched; allowed: {SCORINGS}.")
        n = len(y)
        train = np.concatenate([np.asarray(train, bool), np.ones((1, n), bool)])[None]
        test = np.concatenate([np.asarray(test, bool), np.zeros((1, n), bool)])[None]
        sols: list = []
        K = len(np.unique(y))
        with threads_for(X.numel() * train.shape[1] * K, X.device):
            scores = self._batched_cv_scores_impl(X, np.asarray(y)[None], train, test, scoring,
                                                  generalize, solutions=sols)
        (sol, classes), = sols
        return scores[0, :-1], self._fitted_per_group(sol, -1, classes, X)

    def _batched_fit(self, X, y):
        """Fit one decoder per feature set of ``X`` in one batched solve.

        Parameters
        ----------
        X : torch.Tensor of shape (G, n, F)
            Validated data on the estimator's device.
        y : ndarray of shape (n,)

        Returns
        -------
        list of G fitted clones of this estimator
        """
        classes, codes = _encode(y)
        sw = _sample_weights(self.class_weight, classes, y, codes)
        dt, dev = X.dtype, X.device
        with threads_for(X.numel() * classes.size, dev):
            Y = _solvers.one_hot(torch.as_tensor(codes, device=dev), classes.size, dt)
            sol = self._solve(X, Y, torch.as_tensor(sw, dtype=dt, device=dev))
        return self._fitted_per_group(sol, 0, classes, X)

    def _fitted_per_group(self, sol, m: int, classes, X) -> list:
        """One fitted copy of this estimator per group of ``sol`` (problem ``m``)."""
        coef, icpt = to_numpy(sol.coef[:, m]), to_numpy(sol.intercept[:, m])
        n_iter = to_numpy(sol.n_iter[:, m])
        fitted = self._unfitted_copies(X.shape[0])
        for g, est in enumerate(fitted):
            est.device_ = X.device
            est.n_features_in_ = int(X.shape[-1])
            est._set_solution(coef[g], icpt[g], classes, n_iter[g])
        return fitted


# ---------------------------------------------------------------------- LogisticDecoderCV
class LogisticDecoderCV(_LogisticBase):
    """Logistic decoder with ``C`` chosen by cross-validation, all folds batched.

    All folds are solved together on one shared ``X`` (folds are sample-weight masks:
    held-out samples weigh 0). Two ways through the ``C`` values (``path``):

    - ``"sequential"``: the ``C`` values are walked as a regularisation path in the
      given order, each batched solve of all folds warm-started from the previous
      ``C``'s solutions, as scikit-learn's ``LogisticRegressionCV`` does. With the
      default tolerance this needs about a third of the iterations of solving every
      ``C`` from zero: the fastest on the CPU.
    - ``"batched"``: all folds x all ``C`` values are ONE batched problem, solved from
      zero: more arithmetic (on 20,000 x 256, 8 classes: 1352 problem-iterations
      instead of 504) but a third of the sequential steps (37 instead of ~100), which
      is what a GPU wants.

    ``"auto"`` (default) is ``"batched"`` on a GPU and ``"sequential"`` on the CPU. Both
    stop every problem within ``tol`` of its optimum; their scores agree to a fraction
    of a point. The objective and ``C`` convention are those of
    :class:`LogisticDecoder` (scikit-learn's).

    Parameters
    ----------
    Cs : int or array-like of float, default=10
        An int gives ``np.logspace(-4, 4, Cs)`` as in scikit-learn; otherwise the
        values to try (> 0).
    cv : int, splitter or iterable of (train, test), default=5
        An int is ``StratifiedKFold(cv)``.
    penalty : {"l2", "l1"}, default="l2"
    scoring : {"accuracy", "balanced_accuracy", "neg_log_loss"}, default="accuracy"
    refit : bool, default=True
        Refit on all samples with the best ``C`` (warm-started from the mean of the
        fold solutions). When False, average the coefficients of every fold at that
        fold's best ``C`` (scikit-learn's behaviour).
    path : {"auto", "sequential", "batched"}, default="auto"
        How the ``C`` values are solved (see above).
    class_weight : dict, "balanced" or None, default=None
        ``"balanced"`` weights are computed once on all of ``y``, as in scikit-learn.
    fit_intercept : bool, default=True
    max_iter : int, default=1000
    tol : float, default=1e-4
    device : str, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Accepted for a uniform API; the solvers are deterministic. (Shuffling in
        ``cv`` is the splitter's own ``random_state``.)

    Attributes
    ----------
    Cs_ : ndarray of shape (n_Cs,)
    scores_ : ndarray of shape (n_folds, n_Cs)
        Test score of each fold at each ``C``.
    C_ : float
        The ``C`` with the best mean score (first of ties); with ``refit=False`` the
        mean of the per-fold best ``C`` values.
    classes_, coef_, intercept_, n_iter_, n_features_in_, device_
        As in :class:`LogisticDecoder`; ``n_iter_`` has shape (n_folds, n_Cs) for the
        cross-validation solves.
    n_iter_refit_ : int
        Iterations of the final refit (0 with ``refit=False``).

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml import LogisticDecoderCV
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> X = rng.normal(size=(300, 4)) + y[:, None]
    >>> dec = LogisticDecoderCV(Cs=5, cv=3, device="cpu").fit(X, y)
    >>> dec.scores_.shape
    (3, 5)
    """

    _parameter_constraints: ClassVar[dict] = {
        "Cs": [Interval(numbers.Integral, 1, None), "array-like"],
        "cv": [Interval(numbers.Integral, 2, None), object],
        "scoring": [Options(SCORINGS)],
        "refit": ["boolean"],
        "path": [Options(("auto", "sequential", "batched"))],
        **_COMMON_CONSTRAINTS,
    }
    _test_params: ClassVar[dict] = {"device": "cpu", "Cs": 3, "cv": 3}

    def __init__(self, Cs=10, *, cv=5, penalty="l2", scoring="accuracy", refit=True,
                 path="auto", class_weight=None, fit_intercept=True, max_iter=1000, tol=1e-4,
                 device="auto", random_state=None):
        self.Cs = Cs
        self.cv = cv
        self.penalty = penalty
        self.scoring = scoring
        self.refit = refit
        self.path = path
        self.class_weight = class_weight
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.random_state = random_state

    def _grid(self) -> np.ndarray:
        if isinstance(self.Cs, numbers.Integral) and not isinstance(self.Cs, bool):
            return np.logspace(-4, 4, int(self.Cs))
        Cs = np.asarray(self.Cs, dtype=np.float64).reshape(-1)
        if Cs.size == 0 or not np.all(np.isfinite(Cs)) or np.any(Cs <= 0):
            raise ParameterError(
                f"The 'Cs' parameter of {type(self).__name__} must be an int >= 1 or a "
                f"non-empty list of finite floats > 0. Got {self.Cs!r} instead.")
        return Cs

    def fit(self, X, y, groups=None):
        """Cross-validate every ``C``, pick the best and refit.

        Parameters
        ----------
        X : array-like, DataArray or tensor of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), default=None
            Group labels for group-aware splitters (e.g. ``GroupKFold``).

        Returns
        -------
        self
        """
        self._validate_params()
        if self.penalty is None:
            raise ParameterError(
                f"The 'penalty' parameter of {type(self).__name__} must be 'l2' or 'l1' "
                "(there is no C to choose without a penalty). Got None instead.")
        check_cv_param(self.cv, type(self).__name__)
        self._resolve_device()
        Cs = self._grid()
        Xt, y, _ = self._validate_X(X, y, reset=True)
        classes, codes = _encode(y)
        K = classes.size
        splits = resolve_splits(self.cv, y, groups, classifier=True)
        train, test = split_masks(splits, y.size)
        n_folds, n_C = len(splits), Cs.size
        sw = _sample_weights(self.class_weight, classes, y, codes)
        dt, dev = Xt.dtype, Xt.device
        Y = _solvers.one_hot(torch.as_tensor(codes, device=dev), K, dt)
        w_fold = torch.as_tensor(train * sw[None], dtype=dt, device=dev)  # (folds, n)
        solver = LogisticDecoder(penalty=self.penalty, class_weight=None,
                                 fit_intercept=self.fit_intercept, max_iter=self.max_iter,
                                 tol=self.tol)
        with threads_for(Xt.numel() * K * n_folds, dev):
            data = _solvers.prepare_data(Xt, self.fit_intercept)
            codes_t = torch.as_tensor(codes, device=dev)[None, :]
            te = torch.as_tensor(test, dtype=dt, device=dev)  # (folds, n)
            path = self.path if self.path != "auto" else (
                "batched" if dev.type == "cuda" else "sequential")
            if path == "batched":
                # every fold x every C in ONE batched solve (problems C-major)
                sol = solver._solve(None, Y, w_fold.repeat(n_C, 1),
                                    C=torch.as_tensor(np.repeat(Cs, n_folds))[None], data=data)
                Z = _solvers.logits(data.X, sol.coef, sol.intercept)  # (1, C x folds, Kp, n)
                s = _scores_from_logits(Z, codes_t, te.repeat(n_C, 1), self.scoring, K)[0]
                scores = to_numpy(s.reshape(n_C, n_folds).T).astype(np.float64)
                n_iter = to_numpy(sol.n_iter[0].reshape(n_C, n_folds).T).astype(np.int32)
                Kp, F = sol.coef.shape[-2:]
                coefs = sol.coef[0].reshape(n_C, n_folds, Kp, F).transpose(0, 1)
                icpts = sol.intercept[0].reshape(n_C, n_folds, Kp).transpose(0, 1)
            else:
                scores = np.empty((n_folds, n_C))
                n_iter = np.empty((n_folds, n_C), dtype=np.int32)
                coef_path, icpt_path = [], []
                init = None
                # The C values are walked in the given order, each solve warm-started from
                # the previous one (scikit-learn's path); every step is one batched solve
                # of all folds.
                for j, C in enumerate(Cs):
                    sol = solver._solve(None, Y, w_fold, C=float(C), init=init, data=data)
                    init = (sol.coef, sol.intercept)
                    Z = _solvers.logits(data.X, sol.coef, sol.intercept)  # (1, folds, Kp, n)
                    scores[:, j] = to_numpy(
                        _scores_from_logits(Z, codes_t, te, self.scoring, K)[0])
                    n_iter[:, j] = to_numpy(sol.n_iter[0])
                    coef_path.append(sol.coef[0])
                    icpt_path.append(sol.intercept[0])
                coefs = torch.stack(coef_path, 1)  # (folds, n_C, Kp, F)
                icpts = torch.stack(icpt_path, 1)  # (folds, n_C, Kp)
        self.scores_ = scores
        self.Cs_ = Cs
        self.n_iter_ = n_iter
        if self.refit:
            best = int(np.argmax(self.scores_.sum(axis=0)))
            self.C_ = float(Cs[best])
            init = (coefs[:, best].mean(0)[None, None], icpts[:, best].mean(0)[None, None])
            w_all = torch.as_tensor(sw, dtype=dt, device=dev)
            with threads_for(Xt.numel() * K, dev):
                final = solver._solve(None, Y, w_all, C=self.C_, init=init, data=data)
            coef, icpt = final.coef[0, 0], final.intercept[0, 0]
            self.n_iter_refit_ = int(final.n_iter[0, 0])
            if not bool(final.converged.all()) and self.max_iter > 0:
                warnings.warn(
                    f"{type(self).__name__}: the refit did not converge in "
                    f"max_iter={self.max_iter} iterations.", ConvergenceWarning, stacklevel=2)
        else:
            best_f = np.argmax(self.scores_, axis=1)
            idx = torch.as_tensor(best_f, device=dev)
            ar = torch.arange(n_folds, device=dev)
            coef = coefs[ar, idx].mean(0)
            icpt = icpts[ar, idx].mean(0)
            self.C_ = float(np.mean(Cs[best_f]))
            self.n_iter_refit_ = 0
        self.classes_ = classes
        self.coef_ = to_numpy(coef).astype(np.float64 if dt == torch.float64 else np.float32)
        self.intercept_ = to_numpy(icpt).astype(self.coef_.dtype)
        return self
