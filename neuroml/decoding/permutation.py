"""Permutation tests of cross-validated decoding scores, with the null as one batch.

For neuroml's decoders every permutation x every fold is a problem of one batched solve
on the device. Decoders take part through a small protocol:

``_batched_cv_scores(X, Y, train, test, scoring=None, *, generalize=False)``
    ``X`` a validated tensor ``(n, F)`` (or ``(G, n, F)``: ``G`` feature sets for the
    same samples), ``Y`` an ndarray ``(n_batch, n)`` of target sets, ``train``/``test``
    boolean ndarrays ``(n_batch or 1, n_folds, n)``; returns an ndarray of scores
    ``(n_batch, n_folds[, G[, G]])``.
``_batched_scorings``
    The scoring names the method computes (``None`` means the estimator's ``score``).

Any other scikit-learn estimator goes through
``sklearn.model_selection.permutation_test_score`` (one fit per permutation and fold).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import check_cv, permutation_test_score

from .._validation import Interval, check_param
from ..errors import ParameterError
from ._coords import coordinate
from .cv import check_cv_param, shuffle_labels, split_masks, splits_depend_on_labels

__all__ = ["permutation_test", "PermutationResult"]

# Largest block of permutations solved at once (bounds the fold masks in memory).
_BLOCK = 256


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`permutation_test`.

    Unpacks like scikit-learn's ``permutation_test_score``:
    ``score, null, pvalue = permutation_test(...)``.

    Attributes
    ----------
    score : float, ndarray or DataArray
        Cross-validated score on the true labels (mean over folds); one per time bin
        (or train x test time pair) for a :class:`TimeResolvedDecoder`.
    null : ndarray or DataArray of shape (n_permutations, ...)
        The same score for each label permutation.
    pvalue : float, ndarray or DataArray
        ``(1 + #{null >= score}) / (1 + n_permutations)``: the smallest possible value
        is ``1 / (n_permutations + 1)``.
    fold_scores : ndarray or DataArray of shape (n_folds, ...)
        Per-fold scores on the true labels.
    batched : bool
        True when the null was computed as one batched solve on the device, False when
        it came from scikit-learn's loop.
    """

    score: object
    null: object
    pvalue: object
    fold_scores: object
    batched: bool

    def __iter__(self):
        return iter((self.score, self.null, self.pvalue))

    def __repr__(self) -> str:
        """A summary (the null distribution itself is in ``null``)."""
        n = np.shape(self.null)[0]
        if np.ndim(self.score) == 0:
            null = np.asarray(self.null, dtype=float)
            return (f"PermutationResult(score={float(self.score):.4g}, "
                    f"pvalue={float(self.pvalue):.4g}, n_permutations={n}, "
                    f"null mean={null.mean():.4g}, null 95th percentile="
                    f"{np.percentile(null, 95):.4g}, batched={self.batched})")
        dims = getattr(self.score, "dims", None)
        over = f" over {dims}" if dims else ""
        return (f"PermutationResult(score and pvalue of shape {np.shape(self.score)}{over}, "
                f"n_permutations={n}, smallest pvalue={float(np.min(self.pvalue)):.4g}, "
                f"batched={self.batched})")


def permutation_test(estimator, X, y, *, n_permutations=1000, cv=5, groups=None, scoring=None,
                     random_state=None, n_jobs=None) -> PermutationResult:
    """Permutation test of a cross-validated score: is it better than chance?

    The labels are permuted (within ``groups`` when given, as scikit-learn does), the
    estimator is cross-validated on each permutation, and the p-value is the fraction
    of permutations scoring at least as well as the true labels, with the +1
    correction ``(1 + #{null >= score}) / (1 + n_permutations)``.

    For neuroml decoders (:class:`LogisticDecoder`, :class:`LinearDecoder`,
    :class:`TimeResolvedDecoder`) with a scoring they compute on the device, all
    permutations x folds (x time bins) are solved as one batched problem. Any other
    scikit-learn estimator, or a scoring outside the decoder's batched set, falls back
    to ``sklearn.model_selection.permutation_test_score`` — one fit per permutation and
    fold, with ``n_jobs`` processes.

    The permutations are drawn from ``random_state`` in the same order as
    scikit-learn's ``permutation_test_score``, and the folds are recomputed for each
    permutation when they depend on the labels (``StratifiedKFold``), so with the same
    seed the null distribution matches scikit-learn's.

    Parameters
    ----------
    estimator : estimator
        Unfitted; it is cloned.
    X : array-like, DataArray or tensor of shape (n_samples, n_features)
        ``(trial, time, unit)`` for a :class:`TimeResolvedDecoder`.
    y : array-like of shape (n_samples,) or str
        Labels, or the name of a trial coordinate of a DataArray ``X``.
    n_permutations : int, default=1000
    cv : int, splitter or iterable of (train, test), default=5
        An int is ``StratifiedKFold`` for classifiers, ``KFold`` otherwise.
    groups : array-like of shape (n_samples,) or str, default=None
        Permute only within groups (and pass them to group-aware splitters); a str
        names a trial coordinate of ``X``.
    scoring : str, callable or None, default=None
        None is the estimator's ``score``. The batched path computes
        ``estimator._batched_scorings`` (for logistic decoders ``"accuracy"``,
        ``"balanced_accuracy"``, ``"neg_log_loss"``); others use the fallback.
    random_state : int, RandomState or None, default=None
        Seed of the permutations.
    n_jobs : int, default=None
        Processes for the scikit-learn fallback; unused by the batched path.

    Returns
    -------
    PermutationResult
        ``score``, ``null`` (n_permutations, ...), ``pvalue``, ``fold_scores``, ``batched``.

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml import LogisticDecoder, permutation_test
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 100)
    >>> X = rng.normal(size=(100, 3)) + y[:, None]
    >>> res = permutation_test(LogisticDecoder(device="cpu"), X, y, n_permutations=99,
    ...                        random_state=0)
    >>> float(res.pvalue)
    0.01
    """
    check_param("n_permutations", n_permutations, [Interval(numbers.Integral, 1, None)],
                "permutation_test")
    check_cv_param(cv, "permutation_test")
    y = coordinate(X, y, "y")
    groups = coordinate(X, groups, "groups")
    est = clone(estimator)
    batched = hasattr(est, "_batched_cv_scores") and (
        scoring is None or (isinstance(scoring, str) and scoring in est._batched_scorings))
    if not batched:
        if getattr(est, "_input_ndim", 2) != 2:
            raise ParameterError(
                f"permutation_test: {type(est).__name__} with scoring={scoring!r} has no "
                f"batched implementation; use a scoring among {est._batched_scorings}.")
        score, null, pvalue = permutation_test_score(
            est, X, y, groups=groups, cv=cv, n_permutations=n_permutations, n_jobs=n_jobs,
            random_state=random_state, scoring=scoring)
        return PermutationResult(float(score), np.asarray(null), float(pvalue), None, False)
    est._validate_params()
    est._resolve_device()
    Xt, y, _ = est._validate_X(X, y, reset=True, ndim=getattr(est, "_input_ndim", 2),
                               y_numeric=not is_classifier(est), multi_output=True)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and is_classifier(est):
        y = y[:, 0]
    n = y.shape[0]
    splitter = check_cv(cv, y, classifier=is_classifier(est))
    fixed_iterable = not hasattr(cv, "split") and not isinstance(cv, numbers.Integral)
    per_perm = not fixed_iterable and splits_depend_on_labels(splitter)
    rs = _permutation_rng(random_state)

    def masks(labels):
        return split_masks(list(splitter.split(np.zeros((n, 1)), labels, groups)), n)

    train0, test0 = masks(y)
    n_folds = train0.shape[0]
    # The true labels ride in the first block of permutations: one batched solve for
    # up to _BLOCK label sets x all folds.
    blocks = []
    done = -1
    while done < n_permutations:
        b = min(_BLOCK, n_permutations - done)
        Yb = [shuffle_labels(y, groups, rs) for _ in range(b - (done < 0))]
        if done < 0:
            Yb = [y, *Yb]
        Yb = np.stack(Yb)
        if per_perm:
            mk = [(train0, test0) if (done < 0 and i == 0) else masks(lab)
                  for i, lab in enumerate(Yb)]
            if any(m[0].shape[0] != n_folds for m in mk):
                raise ParameterError("The splitter made a different number of folds for a "
                                     "permutation of the labels.")
            tr, te = np.stack([m[0] for m in mk]), np.stack([m[1] for m in mk])
        else:
            tr, te = train0[None], test0[None]
        blocks.append(est._batched_cv_scores(Xt, Yb, tr, te, scoring))
        done += b
    scores = np.concatenate(blocks, axis=0)  # (1 + n_permutations, n_folds, ...)
    fold_scores = scores[0]
    null = scores[1:].mean(axis=1)
    score = fold_scores.mean(axis=0)
    pvalue = (1.0 + (null >= score).sum(axis=0)) / (1.0 + n_permutations)
    wrap = getattr(est, "_wrap_scores", None)
    if wrap is not None:
        return PermutationResult(wrap(score), wrap(null, "permutation"), wrap(pvalue),
                                 wrap(fold_scores, "fold"), True)
    if np.ndim(score) == 0:
        score, pvalue = float(score), float(pvalue)
    return PermutationResult(score, null, pvalue, fold_scores, True)


def _permutation_rng(random_state) -> np.random.RandomState:
    """A RandomState drawing like scikit-learn's (``RandomState(seed)`` for an int)."""
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(int(random_state.integers(0, 2**31 - 1)))
    return np.random.RandomState(random_state)
