"""How well a neural signal follows a model's reward-prediction errors, trial by trial.

:func:`rpe_regression` regresses a signal aligned to the outcome (spike counts or a
photometry channel from :meth:`Recording.epochs`, or one number per trial) on the RPE of
each trial from a learning model (:class:`QLearning`'s ``values``, :class:`TDModel`'s
``rpe_`` at the outcome ...): the slope and intercept of the linear fit, the
cross-validated R^2 of predicting the signal from the RPE on held-out trials, and a
permutation p-value, at every time bin and unit of an epoch. The cross-validation and the
permutation null are :func:`neuroml.decoding.permutation_test` of a
:class:`neuroml.decoding.LinearDecoder` (all permutations x folds of a target in one
batched solve on the device).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .._validation import Interval, check_param
from ..decoding import LinearDecoder, permutation_test
from ..decoding._coords import coordinate
from ..decoding.cv import check_cv_param
from ..device import seed_from, to_numpy
from ..errors import ParameterError

__all__ = ["rpe_regression"]

_DIMS = ("time", "unit")


def _floats(values, name: str, what: str) -> np.ndarray:
    try:
        return np.asarray(to_numpy(values) if hasattr(values, "detach") else values,
                          dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(
            f"The '{name}' parameter of rpe_regression must be numeric ({what}); got "
            f"{type(values).__name__} with values that are not numbers.") from None


def _signal(signal):
    """(values (n_trials, n_targets), trial labels or None, index for the targets)."""
    what = "spike counts or a signal per trial"
    if isinstance(signal, xr.DataArray):
        values = _floats(signal.values, "signal", what)
        dims = list(signal.dims)
        labels = signal[dims[0]].values if dims[0] in signal.coords else None
        name = signal.name if signal.name is not None else "signal"
        coords = [signal[d].values if d in signal.coords else np.arange(signal.sizes[d])
                  for d in dims[1:]]
    elif isinstance(signal, pd.Series | pd.DataFrame):
        values = _floats(signal.to_numpy(), "signal", what)
        labels = signal.index.to_numpy()
        name = getattr(signal, "name", None) or "signal"
        dims = ["trial"] if values.ndim == 1 else ["trial", "time"]
        coords = [] if values.ndim == 1 else [signal.columns.to_numpy()]
    else:
        values = _floats(signal, "signal", what)
        labels, name = None, "signal"
        dims = ["trial", *_DIMS[: max(values.ndim - 1, 0)]]
        coords = [np.arange(s) for s in values.shape[1:]]
    if values.ndim not in (1, 2, 3):
        raise ParameterError(
            "The 'signal' parameter of rpe_regression must be (trial,), (trial, time) or "
            f"(trial, time, unit). Got shape {values.shape}.")
    if values.size == 0:
        raise ParameterError(
            "The 'signal' parameter of rpe_regression is empty (shape "
            f"{values.shape}); it needs trials (and, for 2-D or 3-D input, at least one time "
            "bin and unit).")
    if values.ndim == 1:
        index = pd.Index([name], name="signal")
    elif values.ndim == 2:
        index = pd.Index(coords[0], name=dims[1])
    else:
        index = pd.MultiIndex.from_product(coords, names=dims[1:])
    return values.reshape(values.shape[0], -1), labels, index


def _rpe(signal, rpe, labels, n: int) -> np.ndarray:
    rpe = coordinate(signal, rpe, "rpe")
    if isinstance(rpe, pd.Series) and labels is not None and rpe.index.is_unique \
            and pd.Index(labels).isin(rpe.index).all():
        rpe = rpe.reindex(labels)  # align by trial label (e.g. a subset of trials)
    values = _floats(rpe, "rpe", "one model RPE per trial")
    values = values.reshape(-1) if values.ndim == 2 and 1 in values.shape else values
    if values.ndim != 1 or values.size != n:
        raise ParameterError(
            f"The 'rpe' parameter of rpe_regression must hold one value per trial of the "
            f"signal ({n}). Got shape {values.shape}.")
    return values


def _splits(cv, n: int) -> list:
    """An iterable ``cv`` as a list of (train, test) integer index arrays within 0..n-1
    (boolean masks of length ``n`` are turned into indices, as scikit-learn allows)."""
    splits = []
    for i, pair in enumerate(cv):
        try:
            train, test = (np.asarray(a) for a in pair)
        except (TypeError, ValueError):
            train = test = None
        if train is not None:
            train, test = (np.flatnonzero(a) if a.dtype == bool and a.shape == (n,) else a
                           for a in (train, test))
        ok = train is not None and all(
            a.ndim == 1 and a.size > 0 and a.dtype.kind in "iu" and a.min() >= 0 and a.max() < n
            for a in (train, test))
        if not ok:
            raise ParameterError(
                "The 'cv' parameter of rpe_regression, an iterable, must yield (train, test) "
                f"pairs of non-empty integer index arrays within 0..{n - 1} (the trials), or "
                f"boolean masks of length {n}; "
                f"element {i} is {pair!r}.")
        splits.append((train, test))
    if not splits:
        raise ParameterError("The 'cv' parameter of rpe_regression is an empty iterable; it "
                             "must yield (train, test) index arrays.")
    return splits


def rpe_regression(signal, rpe, *, cv=5, n_permutations=1000, random_state=None,
                   device="auto") -> pd.DataFrame:
    """Regress a neural signal on model RPEs: slope, cross-validated R^2 and p-value.

    For every time bin and unit (or channel) of ``signal`` the model
    ``signal = intercept + slope * rpe`` is fitted by least squares on all trials; its
    cross-validated R^2 (predicting the held-out trials' signal from their RPE, mean over
    folds) is tested against ``n_permutations`` shuffles of the trials with
    :func:`~neuroml.decoding.permutation_test` of a ``LinearDecoder(alpha=0)``. Every
    target uses the same seed, so the same permutations. With an int ``cv`` the folds
    are contiguous blocks of trials (``KFold`` without shuffling), which keeps slow
    drifts over a session from leaking between training and test trials.

    Parameters
    ----------
    signal : array-like, DataArray, Series or tensor
        ``(trial,)``, ``(trial, time)`` or ``(trial, time, unit)``, e.g.
        ``rec.epochs("reward_time", (0, 1), 0.1)`` (``(trial, time, unit)`` spike counts)
        or ``rec.epochs(..., source="photometry")``. A DataArray's ``trial`` dimension is
        the trial axis wherever it is (else its first). NaN entries (bins outside a
        signal) leave that trial out of that target only.
    rpe : array-like, Series, DataArray or str
        One RPE per trial, or the name of a trial coordinate of a DataArray ``signal``
        (a trials-table column). A Series whose index holds every trial label of a
        DataArray ``signal`` is aligned by label (so ``signal`` may hold a subset of
        trials); otherwise values are matched by position. Trials with a NaN RPE (e.g.
        no response) are left out.
    cv : int, splitter or iterable of (train, test), default=5
        Cross-validation over trials (an iterable of integer index splits only when no
        trial is left out for NaN; it is read once and reused for every target).
    n_permutations : int, default=1000
    random_state : int, RandomState, Generator or None, default=None
        Seed of the permutations.
    device : str or torch.device, default="auto"
        Where the batched solves run.

    Returns
    -------
    result : pandas.DataFrame
        One row per target: indexed by the signal's name for a ``(trial,)`` signal, by
        ``time`` for ``(trial, time)``, by ``(time, unit)`` (the DataArray's dimension
        names and coordinates) for 3-D input. Columns ``r2`` (cross-validated),
        ``p_value`` (``(1 + #{null >= r2}) / (1 + n_permutations)``), ``slope``,
        ``intercept``, ``r`` (Pearson, all trials), ``n_trials``. A target whose signal
        is constant over its trials (no variance: an R^2 would be 1 or 0 by convention)
        has NaN ``r2``, ``p_value``, ``slope``, ``intercept`` and ``r``, with one
        ``RuntimeWarning`` naming how many.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rpe = rng.normal(size=200)
    >>> counts = 2.0 + 1.5 * rpe + rng.normal(size=200)
    >>> res = rpe_regression(counts, rpe, n_permutations=99, random_state=0, device="cpu")
    >>> bool(abs(res["slope"].iloc[0] - 1.5) < 0.2), float(res["p_value"].iloc[0])
    (True, 0.01)
    """
    if isinstance(cv, str | bytes) or isinstance(cv, dict):
        raise ParameterError(
            "The 'cv' parameter of rpe_regression must be an int >= 2, a cross-validation "
            "splitter (with a 'split' method, e.g. sklearn.model_selection.LeaveOneOut()) or "
            f"an iterable of (train, test) index arrays. Got {cv!r} instead.")
    check_cv_param(cv, "rpe_regression")
    check_param("n_permutations", n_permutations, [Interval(numbers.Integral, 1, None)],
                "rpe_regression")
    check_param("random_state", random_state, ["random_state"], "rpe_regression")
    check_param("device", device, ["device"], "rpe_regression")
    if isinstance(signal, xr.DataArray) and "trial" in signal.dims and signal.dims[0] != "trial":
        signal = signal.transpose("trial", ...)
    Y, labels, index = _signal(signal)
    n, n_targets = Y.shape
    x = _rpe(signal, rpe, labels, n)
    seed = seed_from(random_state)
    explicit = not hasattr(cv, "split") and not isinstance(cv, numbers.Integral)
    if explicit:
        cv = _splits(cv, n)  # a generator would be spent on the first target
    need = 2 * cv if isinstance(cv, numbers.Integral) else 3
    rows, constant = [], []
    for k in range(n_targets):
        y = Y[:, k]
        ok = np.isfinite(x) & np.isfinite(y)
        if explicit and not ok.all():
            raise ParameterError(
                "rpe_regression: with an iterable of (train, test) splits as 'cv' no trial can "
                f"be left out, but {int((~ok).sum())} have a NaN RPE or signal; pass an int or "
                "a splitter.")
        m = int(ok.sum())
        if m < need:
            raise ParameterError(
                f"rpe_regression: target {index[k]!r} has {m} trials with a finite RPE and "
                f"signal; at least {need} are needed for cv={cv!r}.")
        xs, ys = x[ok], y[ok]
        dx, dy = xs - xs.mean(), ys - ys.mean()
        sxx, syy = float(dx @ dx), float(dy @ dy)
        if sxx == 0:
            raise ParameterError("The 'rpe' parameter of rpe_regression is constant over the "
                                 "trials used; a slope cannot be estimated.")
        if np.ptp(ys) == 0:  # no variance: nothing to explain (R^2 would be 1 or 0 by fiat)
            constant.append(index[k])
            rows.append((np.nan, np.nan, np.nan, np.nan, np.nan, m))
            continue
        slope = float(dx @ dy) / sxx
        r = float(dx @ dy) / np.sqrt(sxx * syy)
        test = permutation_test(LinearDecoder(alpha=0.0, device=device), xs[:, None], ys,
                                cv=cv, n_permutations=n_permutations, random_state=seed)
        rows.append((float(test.score), float(test.pvalue), slope,
                     float(ys.mean() - slope * xs.mean()), r, m))
    if constant:
        warnings.warn(
            f"rpe_regression: {len(constant)} of {n_targets} targets (time bins / units) have a "
            f"constant signal over the trials used ({pd.Index(constant).tolist()[:5]}"
            f"{' ...' if len(constant) > 5 else ''}); a signal without variance cannot follow "
            "the RPE, so their r2, p_value, slope, intercept and r are NaN.",
            RuntimeWarning, stacklevel=2)
    out = pd.DataFrame(rows, index=index,
                       columns=["r2", "p_value", "slope", "intercept", "r", "n_trials"])
    out.attrs.update(n_permutations=int(n_permutations), cv=repr(cv))
    return out
