"""Cross-validation helpers shared by the decoders: splits, fold masks, label shuffles.

Folds are expressed as boolean masks over one shared set of samples, so a batched
solver can fit every fold at once by giving held-out samples zero weight.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    LeaveOneOut,
    LeavePGroupsOut,
    LeavePOut,
    PredefinedSplit,
    TimeSeriesSplit,
    check_cv,
)
from sklearn.utils import check_random_state

from ..errors import ParameterError

__all__ = ["resolve_splits", "split_masks", "shuffle_labels", "splits_depend_on_labels",
           "check_cv_param"]

# Splitters whose folds depend neither on the labels nor on a random draw made at
# split time (a shuffling splitter with random_state=None draws anew on every call).
_LABEL_FREE = (KFold, GroupKFold, LeaveOneOut, LeavePOut, LeaveOneGroupOut, LeavePGroupsOut,
               PredefinedSplit, TimeSeriesSplit)


def check_cv_param(cv, owner: str) -> None:
    """Raise a ParameterError unless ``cv`` is an int >= 2, a splitter or an iterable of splits."""
    if isinstance(cv, bool):
        ok = False
    elif isinstance(cv, numbers.Integral):
        ok = cv >= 2
    else:
        ok = hasattr(cv, "split") or hasattr(cv, "__iter__")
    if not ok:
        raise ParameterError(
            f"The 'cv' parameter of {owner} must be an int >= 2, a cross-validation "
            f"splitter (with a 'split' method) or an iterable of (train, test) index "
            f"arrays. Got {cv!r} instead."
        )


def resolve_splits(cv, y, groups=None, *, classifier: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(train, test)`` index arrays of ``cv`` for labels ``y``, as scikit-learn makes them.

    Parameters
    ----------
    cv : int, splitter or iterable of (train, test)
        An int is ``StratifiedKFold(cv)`` for classifiers with binary/multiclass
        targets and ``KFold(cv)`` otherwise (scikit-learn's ``check_cv``).
    y : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,), default=None
    classifier : bool, default=True

    Returns
    -------
    list of (ndarray, ndarray)
    """
    n = len(y)
    splitter = check_cv(cv, y, classifier=classifier)
    Xs = np.zeros((n, 1))
    splits = [(np.asarray(tr), np.asarray(te)) for tr, te in splitter.split(Xs, y, groups)]
    if not splits:
        raise ParameterError(f"The cross-validation {cv!r} produced no splits.")
    for k, (tr, te) in enumerate(splits):
        tr = _as_indices(tr, n)
        te = _as_indices(te, n)
        if tr.size == 0 or te.size == 0:
            raise ParameterError(
                f"Split {k} of cv={cv!r} has an empty training or test set "
                f"({tr.size} training and {te.size} test samples)."
            )
        splits[k] = (tr, te)
    return splits


def _as_indices(idx, n: int) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.dtype == bool:
        if idx.size != n:
            raise ParameterError(f"A boolean split mask has {idx.size} entries for {n} samples.")
        return np.flatnonzero(idx)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ParameterError(f"A split index is out of range for {n} samples.")
    return idx.astype(np.int64) % n if idx.size else idx.astype(np.int64)


def split_masks(splits, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(n_folds, n)`` training and test masks for a list of splits."""
    train = np.zeros((len(splits), n), dtype=bool)
    test = np.zeros((len(splits), n), dtype=bool)
    for k, (tr, te) in enumerate(splits):
        train[k, tr] = True
        test[k, te] = True
    return train, test


def splits_depend_on_labels(cv) -> bool:
    """Whether ``cv`` may split differently when the labels are permuted.

    False only for splitters known to ignore the labels and to split the same way on
    every call (no shuffling, or shuffling with a fixed integer ``random_state``), and
    for fixed iterables of splits.
    """
    if isinstance(cv, numbers.Integral):
        return True  # StratifiedKFold for classifiers
    if not hasattr(cv, "split"):
        return False
    if type(cv) in _LABEL_FREE:
        shuffle = getattr(cv, "shuffle", False)
        rs = getattr(cv, "random_state", None)
        return bool(shuffle) and not isinstance(rs, numbers.Integral)
    return True


def shuffle_labels(y, groups, random_state) -> np.ndarray:
    """``y`` permuted, within groups when given — scikit-learn's ``_shuffle``.

    Draws from ``random_state`` exactly as ``sklearn.model_selection.permutation_test_score``
    does, so the same seed gives the same permutations.
    """
    random_state = check_random_state(random_state)
    y = np.asarray(y)
    if groups is None:
        idx = random_state.permutation(len(y))
    else:
        groups = np.asarray(groups)
        idx = np.arange(len(groups))
        for g in np.unique(groups):
            mask = groups == g
            idx[mask] = random_state.permutation(idx[mask])
    return y[idx]
