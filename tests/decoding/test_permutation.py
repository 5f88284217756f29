"""permutation_test: scores and nulls against scikit-learn, calibration, planted signal."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, permutation_test_score
from threadpoolctl import threadpool_limits

from neuroml.decoding import LinearDecoder, LogisticDecoder, TimeResolvedDecoder, permutation_test
from neuroml.decoding.cv import shuffle_labels
from neuroml.errors import ParameterError

TIGHT = dict(tol=1e-10, max_iter=10_000)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small solves single-threaded (BLAS threads waiting for a core on a loaded machine
    slow scikit-learn's small fits down 40x)."""
    with threadpool_limits(1):
        yield


def _sk_lr(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegression(**kw)


def _data(n=90, F=4, K=3, shift=0.8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    X = rng.normal(size=(n, F)) + shift * np.eye(K, F)[y]
    return X, y


@pytest.mark.parametrize("cv", [StratifiedKFold(3), KFold(3, shuffle=True, random_state=2)],
                         ids=["stratified (folds follow the labels)", "kfold"])
@pytest.mark.parametrize("scoring", [None, "neg_log_loss"])
def test_score_and_null_equal_sklearn(cv, scoring):
    """Same splits, same permutations (same seed): same observed score and null."""
    X, y = _data()
    res = permutation_test(LogisticDecoder(device="cpu", **TIGHT), X, y, n_permutations=15,
                           cv=cv, scoring=scoring, random_state=3)
    score, null, pvalue = permutation_test_score(_sk_lr(**TIGHT), X, y, cv=cv, n_permutations=15,
                                                 scoring=scoring, random_state=3)
    assert res.batched
    assert res.score == pytest.approx(score, abs=1e-6)
    np.testing.assert_allclose(res.null, null, atol=1e-6)
    assert res.pvalue == pytest.approx(pvalue)
    assert res.fold_scores.shape == (3,)


def test_groups_permute_within_groups_like_sklearn():
    X, y = _data(n=60, K=2)
    groups = np.repeat(np.arange(6), 10)
    res = permutation_test(LogisticDecoder(device="cpu", **TIGHT), X, y, n_permutations=10,
                           cv=GroupKFold(3), groups=groups, random_state=0)
    score, null, _ = permutation_test_score(_sk_lr(**TIGHT), X, y, groups=groups,
                                            cv=GroupKFold(3), n_permutations=10, random_state=0)
    assert res.score == pytest.approx(score, abs=1e-9)
    np.testing.assert_allclose(res.null, null, atol=1e-9)
    rs = np.random.RandomState(0)
    for _ in range(5):
        yp = shuffle_labels(y, groups, rs)
        for g in range(6):
            np.testing.assert_array_equal(np.sort(yp[groups == g]), np.sort(y[groups == g]))


def test_planted_signal_gives_smallest_pvalue():
    X, y = _data(n=120, K=2, shift=2.5)
    res = permutation_test(LogisticDecoder(device="cpu"), X, y, n_permutations=199, random_state=0)
    assert res.score > 0.85
    assert res.pvalue == pytest.approx(1 / 200)
    assert res.null.shape == (199,) and res.null.max() < res.score
    assert 0.3 < res.null.mean() < 0.7


def test_calibration_under_no_signal():
    """Random labels: p-values of independent small problems are uniform.

    A continuous score (log loss) has no ties, so a p-value is uniform on the grid
    {1/20, ..., 20/20}: P(p <= k/20) = k/20. 200 independent repetitions.
    """
    rng = np.random.default_rng(11)
    est = LogisticDecoder(device="cpu")
    p = np.empty(200)
    for r in range(200):
        X = rng.normal(size=(40, 3))
        y = rng.integers(0, 2, 40)
        p[r] = permutation_test(est, X, y, n_permutations=19, cv=KFold(4),
                                scoring="neg_log_loss", random_state=r).pvalue
    grid = np.arange(1, 21) / 20
    assert set(np.round(p * 20).astype(int)) <= set(range(1, 21))
    # counts in the 20 grid cells are multinomial(200, 1/20 each)
    counts = np.bincount(np.round(p * 20).astype(int) - 1, minlength=20)
    assert stats.chisquare(counts).pvalue > 0.01
    # the 5% level holds: fraction with p <= 0.05 within the binomial 99.9% range
    lo, hi = stats.binom.ppf([0.0005, 0.9995], 200, 0.05)
    assert lo <= np.sum(p <= 0.05) <= hi
    np.testing.assert_allclose(np.mean(p[:, None] <= grid, axis=0), grid, atol=0.1)


def test_fallback_for_other_estimators_is_sklearn():
    X, y = _data(n=60, K=2)
    res = permutation_test(_sk_lr(), X, y, n_permutations=8, cv=KFold(3), random_state=1)
    score, null, pvalue = permutation_test_score(_sk_lr(), X, y, cv=KFold(3), n_permutations=8,
                                                 random_state=1)
    assert not res.batched
    assert res.score == score and res.pvalue == pvalue
    np.testing.assert_array_equal(res.null, null)
    # a scoring outside the batched set also falls back
    res = permutation_test(LogisticDecoder(device="cpu"), X, y, n_permutations=5, cv=KFold(3),
                           scoring="roc_auc", random_state=1)
    assert not res.batched and res.null.shape == (5,)


def test_ridge_decoder_plugs_in():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 5))
    y = X[:, 0] + 0.5 * rng.normal(size=80)
    res = permutation_test(LinearDecoder(1.0, device="cpu"), X, y, n_permutations=20, cv=KFold(4),
                           random_state=0)
    score, null, _ = permutation_test_score(Ridge(1.0), X, y, cv=KFold(4), n_permutations=20,
                                            random_state=0)
    assert res.batched
    assert res.score == pytest.approx(score, rel=1e-9)
    np.testing.assert_allclose(res.null, null, rtol=1e-8, atol=1e-10)


def test_dataarray_coordinate_labels_and_unpacking():
    X, y = _data(n=60, K=2, shift=2.0)
    da = xr.DataArray(X, dims=("trial", "unit"), coords={"side": ("trial", y)})
    score, null, pvalue = permutation_test(LogisticDecoder(device="cpu"), da, "side",
                                           n_permutations=9, cv=3, random_state=0)
    assert score > 0.8 and null.shape == (9,) and pvalue == pytest.approx(0.1)


def test_repr_is_a_summary():
    X, y = _data(n=60, K=2, shift=2.0)
    res = permutation_test(LogisticDecoder(device="cpu"), X, y, n_permutations=200, cv=3,
                           random_state=0)
    text = repr(res)
    null = np.asarray(res.null)
    assert text.startswith(f"PermutationResult(score={res.score:.4g}, pvalue={res.pvalue:.4g}, "
                           "n_permutations=200, ")
    assert f"null mean={null.mean():.4g}" in text and len(text) < 200
    X3 = np.repeat(X[:, None, :], 4, axis=1)  # (trial, time, unit)
    da = xr.DataArray(X3, dims=("trial", "time", "unit"))
    res3 = permutation_test(TimeResolvedDecoder(cv=3, device="cpu"), da, y, n_permutations=9,
                            cv=3, random_state=0)
    assert repr(res3) == ("PermutationResult(score and pvalue of shape (4,) over ('time',), "
                          "n_permutations=9, smallest pvalue=0.1, batched=True)")


def test_errors():
    X, y = _data(n=30, K=2)
    with pytest.raises(ParameterError, match="'n_permutations' parameter of permutation_test"):
        permutation_test(LogisticDecoder(), X, y, n_permutations=0)
    with pytest.raises(ParameterError, match="'cv' parameter of permutation_test"):
        permutation_test(LogisticDecoder(), X, y, cv=0)
    with pytest.raises(ParameterError, match="needs a DataArray"):
        permutation_test(LogisticDecoder(), X, "side")
    da = xr.DataArray(X, dims=("trial", "unit"), coords={"side": ("trial", y)})
    with pytest.raises(ParameterError, match=r"available: \['side'\]"):
        permutation_test(LogisticDecoder(), da, "choice")
