"""LinearDecoder / LinearDecoderCV against scikit-learn's Ridge / RidgeCV."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import make_scorer, mean_absolute_error, r2_score
from sklearn.model_selection import GridSearchCV, KFold, ShuffleSplit

import neuroml
from neuroml.decoding.linear import LinearDecoder, LinearDecoderCV
from neuroml.errors import ParameterError

ALPHAS = [0.01, 0.3, 3.0, 30.0, 300.0]


def make_data(n, p, t, seed=0, offset=3.0):
    """A planted linear map with noise; t=0 gives a 1-D target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + offset
    W = rng.normal(size=(p, max(t, 1)))
    y = X @ W + 2.0 * rng.normal(size=(n, max(t, 1))) + 5.0
    return X, (y[:, 0] if t == 0 else y)


SHAPES = [(120, 15, 0), (120, 15, 3), (25, 60, 2), (30, 80, 0)]  # n > p and n < p (dual)


@pytest.mark.parametrize("n, p, t", SHAPES)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-3, 1.0, 30.0])
def test_ridge_equals_sklearn(n, p, t, fit_intercept, alpha):
    X, y = make_data(n, p, t)
    ref = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, y)
    dec = LinearDecoder(alpha, fit_intercept=fit_intercept, device="cpu").fit(X, y)
    assert dec.coef_.shape == ref.coef_.shape
    np.testing.assert_allclose(dec.coef_, ref.coef_, rtol=1e-6, atol=1e-9 * np.abs(ref.coef_).max())
    np.testing.assert_allclose(dec.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dec.predict(X), ref.predict(X), rtol=1e-8)
    assert dec.score(X, y) == pytest.approx(ref.score(X, y), rel=1e-10)
    assert isinstance(dec.intercept_, float) == isinstance(ref.intercept_, float)


def test_per_target_alpha_equals_sklearn():
    X, y = make_data(80, 10, 3)
    alpha = np.array([0.1, 10.0, 1000.0])
    ref = Ridge(alpha=alpha).fit(X, y)
    dec = LinearDecoder(alpha, device="cpu").fit(X, y)
    np.testing.assert_allclose(dec.coef_, ref.coef_, rtol=1e-7)
    np.testing.assert_allclose(dec.intercept_, ref.intercept_, rtol=1e-7)


@pytest.mark.parametrize("n, p", [(60, 10), (20, 50)])
def test_zero_alpha_is_minimum_norm_least_squares(n, p):
    X, y = make_data(n, p, 2)
    dec = LinearDecoder(0.0, device="cpu").fit(X, y)
    Xc, yc = X - X.mean(0), y - y.mean(0)
    ref = np.linalg.lstsq(Xc, yc, rcond=None)[0].T  # minimum-norm solution
    np.testing.assert_allclose(dec.coef_, ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n, p, t", SHAPES)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("scoring", [None, "r2", "neg_mean_absolute_error"])
def test_gcv_equals_ridgecv(n, p, t, fit_intercept, scoring):
    X, y = make_data(n, p, t, seed=1)
    ref = RidgeCV(alphas=ALPHAS, fit_intercept=fit_intercept, scoring=scoring,
                  store_cv_results=True).fit(X, y)
    dec = LinearDecoderCV(alphas=ALPHAS, fit_intercept=fit_intercept, scoring=scoring,
                          device="cpu").fit(X, y)
    assert dec.alpha_ == ref.alpha_
    assert dec.best_score_ == pytest.approx(ref.best_score_, rel=1e-9)
    assert dec.cv_values_.shape == ref.cv_results_.shape
    np.testing.assert_allclose(dec.cv_values_, ref.cv_results_, rtol=1e-7,
                               atol=1e-10 * np.abs(ref.cv_results_).max())
    np.testing.assert_allclose(dec.coef_, np.reshape(ref.coef_, dec.coef_.shape), rtol=1e-6,
                               atol=1e-10)
    np.testing.assert_allclose(dec.intercept_, ref.intercept_, rtol=1e-7, atol=1e-8)
    assert dec.scores_.shape == (len(ALPHAS),)
    assert dec.scores_.max() == pytest.approx(dec.best_score_)


@pytest.mark.parametrize("scoring", [None, "r2"])
def test_gcv_alpha_per_target_equals_ridgecv(scoring):
    X, y = make_data(100, 12, 3, seed=2)
    y[:, 1] += 10 * np.random.default_rng(5).normal(size=100)  # noisier target: more penalty
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True, scoring=scoring,
                  store_cv_results=True).fit(X, y)
    dec = LinearDecoderCV(alphas=ALPHAS, alpha_per_target=True, scoring=scoring,
                          device="cpu").fit(X, y)
    np.testing.assert_array_equal(dec.alpha_, ref.alpha_)
    assert len(set(dec.alpha_)) > 1
    np.testing.assert_allclose(dec.best_score_, ref.best_score_, rtol=1e-9)
    np.testing.assert_allclose(dec.coef_, ref.coef_, rtol=1e-6)
    assert dec.scores_.shape == (len(ALPHAS), 3)


@pytest.mark.parametrize("n, p, t", [(103, 15, 0), (103, 15, 2), (40, 90, 2)])
@pytest.mark.parametrize("cv", [5, KFold(4, shuffle=True, random_state=0),
                                ShuffleSplit(6, test_size=0.3, random_state=0)])
@pytest.mark.parametrize("scoring", [None, "neg_mean_squared_error"])
def test_kfold_equals_ridgecv_gridsearch(n, p, t, cv, scoring):
    """Unequal folds (103 samples), overlapping test sets (ShuffleSplit), the dual case."""
    X, y = make_data(n, p, t, seed=3)
    alphas = [0.0, *ALPHAS]
    with warnings.catch_warnings():  # sklearn's own warnings about alpha=0 in the dual case
        warnings.simplefilter("ignore")
        ref = RidgeCV(alphas=alphas, cv=cv, scoring=scoring).fit(X, y)
        grid = GridSearchCV(Ridge(), {"alpha": alphas}, cv=cv, scoring=scoring).fit(X, y)
    dec = LinearDecoderCV(alphas=alphas, cv=cv, scoring=scoring, device="cpu").fit(X, y)
    assert dec.alpha_ == ref.alpha_
    assert dec.best_score_ == pytest.approx(ref.best_score_, rel=1e-8)
    n_splits = cv if isinstance(cv, int) else cv.get_n_splits()
    fold_ref = np.stack([grid.cv_results_[f"split{i}_test_score"] for i in range(n_splits)])
    np.testing.assert_allclose(dec.fold_scores_, fold_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dec.scores_, grid.cv_results_["mean_test_score"], rtol=1e-8)
    np.testing.assert_allclose(dec.coef_, ref.coef_, rtol=1e-6, atol=1e-10)
    assert not hasattr(dec, "cv_values_")


def test_kfold_alpha_per_target_equals_one_ridgecv_per_target():
    X, y = make_data(90, 10, 3, seed=4)
    y[:, 2] += 15 * np.random.default_rng(1).normal(size=90)
    dec = LinearDecoderCV(alphas=ALPHAS, cv=5, alpha_per_target=True, device="cpu").fit(X, y)
    for j in range(3):
        ref = RidgeCV(alphas=ALPHAS, cv=5).fit(X, y[:, j])
        assert dec.alpha_[j] == ref.alpha_
        assert dec.best_score_[j] == pytest.approx(ref.best_score_, rel=1e-8)
        np.testing.assert_allclose(dec.coef_[j], ref.coef_, rtol=1e-6)
    assert dec.fold_scores_.shape == (5, len(ALPHAS), 3)


def test_callable_scorer_matches_string():
    X, y = make_data(80, 8, 2, seed=6)
    for cv in (None, 4):
        a = LinearDecoderCV(alphas=ALPHAS, cv=cv, scoring="neg_mean_absolute_error",
                            device="cpu").fit(X, y)
        b = LinearDecoderCV(alphas=ALPHAS, cv=cv, device="cpu",
                            scoring=make_scorer(mean_absolute_error,
                                                greater_is_better=False)).fit(X, y)
        np.testing.assert_allclose(a.scores_, b.scores_, rtol=1e-9)
        assert a.alpha_ == b.alpha_
    ref = RidgeCV(alphas=ALPHAS, scoring=make_scorer(r2_score)).fit(X, y)
    dec = LinearDecoderCV(alphas=ALPHAS, scoring=make_scorer(r2_score), device="cpu").fit(X, y)
    assert dec.best_score_ == pytest.approx(ref.best_score_, rel=1e-9)


def test_planted_decoder_recovers_velocity():
    """Units tuned to 2-D velocity (cosine tuning): decoding recovers it with R^2 > 0.9."""
    rng = np.random.default_rng(7)
    n, units = 600, 40
    angle = np.cumsum(rng.normal(0, 0.2, n))
    vel = np.c_[np.cos(angle), np.sin(angle)] * (1 + 0.3 * np.sin(np.arange(n) / 30))[:, None]
    pref = rng.uniform(0, 2 * np.pi, units)
    rates = 5 + 3 * (vel @ np.stack([np.cos(pref), np.sin(pref)]))
    counts = rng.poisson(np.clip(rates, 0, None)).astype(float)
    dec = LinearDecoderCV(alphas=np.logspace(-2, 3, 11), cv=5, device="cpu")
    dec.fit(counts[:400], vel[:400])
    assert dec.score(counts[400:], vel[400:]) > 0.9


def test_float32_stays_float32():
    X, y = make_data(100, 10, 2)
    d64 = LinearDecoder(1.0, device="cpu").fit(X, y)
    d32 = LinearDecoder(1.0, device="cpu").fit(X.astype(np.float32), y.astype(np.float32))
    assert d32.coef_.dtype == np.float32 and d32.intercept_.dtype == np.float32
    np.testing.assert_allclose(d32.coef_, d64.coef_, rtol=1e-3, atol=1e-4)
    assert d32.predict(X.astype(np.float32)).dtype == np.float32
    cv32 = LinearDecoderCV(alphas=ALPHAS, device="cpu").fit(X.astype(np.float32), y)
    assert cv32.alpha_ == LinearDecoderCV(alphas=ALPHAS, device="cpu").fit(X, y).alpha_


def test_dataarray_in_dataarray_out():
    X, y = make_data(50, 6, 2)
    time = np.arange(50) * 0.01
    Xda = xr.DataArray(X, dims=("time", "unit"),
                       coords={"time": time, "unit": [f"u{i}" for i in range(6)],
                               "trial": ("time", np.repeat(np.arange(5), 10))})
    yda = xr.DataArray(y, dims=("time", "kinematic"), coords={"kinematic": ["vx", "vy"]})
    dec = LinearDecoder(1.0, device="cpu").fit(Xda, yda)
    out = dec.predict(Xda)
    assert isinstance(out, xr.DataArray) and out.dims == ("time", "kinematic")
    np.testing.assert_array_equal(out["kinematic"], ["vx", "vy"])
    np.testing.assert_array_equal(out["time"], time)
    np.testing.assert_array_equal(out["trial"], Xda["trial"])
    np.testing.assert_allclose(out.values, Ridge(1.0).fit(X, y).predict(X), rtol=1e-8)
    # plain 2-D y: dimension "output"; 1-D y: only the sample dimension
    assert LinearDecoder(device="cpu").fit(Xda, y).predict(Xda).dims == ("time", "output")
    one = LinearDecoderCV(device="cpu").fit(Xda, y[:, 0]).predict(Xda)
    assert one.dims == ("time",) and "trial" in one.coords


def test_tensor_in_tensor_out():
    X, y = make_data(60, 5, 0)
    Xt = torch.as_tensor(X)
    dec = LinearDecoder(2.0, device="cpu").fit(Xt, torch.as_tensor(y))
    out = dec.predict(Xt)
    assert isinstance(out, torch.Tensor) and out.device.type == "cpu" and out.shape == (60,)
    np.testing.assert_allclose(out.numpy(), Ridge(2.0).fit(X, y).predict(X), rtol=1e-8)
    assert dec.score(Xt, torch.as_tensor(y)) == pytest.approx(Ridge(2.0).fit(X, y).score(X, y))


def test_multioutput_score_is_uniform_average():
    X, y = make_data(80, 6, 3)
    y[:, 2] *= 50  # very different scales: a pooled R^2 would differ from the average
    dec = LinearDecoder(100.0, device="cpu").fit(X[:60], y[:60])
    expected = r2_score(y[60:], dec.predict(X[60:]), multioutput="uniform_average")
    assert dec.score(X[60:], y[60:]) == pytest.approx(expected, rel=1e-12)


def test_save_load_and_pickle_round_trip(tmp_path):
    X, y = make_data(70, 8, 2)
    for est in (LinearDecoder(3.0, device="cpu"), LinearDecoderCV(ALPHAS, cv=3, device="cpu")):
        est.fit(X, y)
        loaded = neuroml.load(est.save(tmp_path / "dec.pt"))
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
        assert loaded.get_params() == est.get_params()
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(X), est.predict(X))
    assert loaded.alpha_ == est.alpha_


def test_refit_with_other_cv_drops_stale_results():
    X, y = make_data(60, 5, 0)
    dec = LinearDecoderCV(ALPHAS, device="cpu").fit(X, y)
    assert hasattr(dec, "cv_values_")
    dec.set_params(cv=3).fit(X, y)
    assert hasattr(dec, "fold_scores_") and not hasattr(dec, "cv_values_")


@pytest.mark.parametrize("est, match", [
    (LinearDecoderCV(alphas=[0.0, 1.0]), r"'alphas' parameter .* > 0 .*Got \[0.0, 1.0\]"),
    (LinearDecoderCV(alphas=[-1.0], cv=3), r"'alphas' parameter .* >= 0"),
    (LinearDecoderCV(alphas=[]), r"'alphas' parameter .* non-empty"),
    (LinearDecoderCV(cv=1), r"'cv' parameter of LinearDecoderCV must be None, an int"),
    (LinearDecoderCV(cv="five"), r"'cv' parameter .*Got 'five' instead"),
    (LinearDecoderCV(scoring="accuracy"), r"'scoring' parameter of LinearDecoderCV must be"),
    (LinearDecoder(alpha=-1.0), r"'alpha' parameter of LinearDecoder must be"),
    (LinearDecoder(alpha=[1.0, 2.0, 3.0]), r"array of 2 such floats"),
    (LinearDecoder(device="gpu"), r"'device' parameter"),
])
def test_bad_parameters(est, match):
    X, y = make_data(30, 4, 2)
    with pytest.raises(ParameterError, match=match):
        est.fit(X, y)


def test_iterable_of_splits_equals_splitter():
    X, y = make_data(60, 6, 0, seed=8)
    splitter = KFold(4, shuffle=True, random_state=1)
    a = LinearDecoderCV(ALPHAS, cv=splitter, device="cpu").fit(X, y)
    b = LinearDecoderCV(ALPHAS, cv=list(splitter.split(X)), device="cpu").fit(X, y)
    np.testing.assert_array_equal(a.fold_scores_, b.fold_scores_)
    assert a.alpha_ == b.alpha_


# ---------------------------------------------------------------------- batched protocol
def _fold_masks(splits, n):
    train = np.zeros((1, len(splits), n), bool)
    test = np.zeros((1, len(splits), n), bool)
    for f, (tr, te) in enumerate(splits):
        train[0, f, tr] = True
        test[0, f, te] = True
    return train, test


@pytest.mark.parametrize("G, n, F, t", [(3, 40, 6, 0), (2, 24, 30, 2)])  # primal and dual
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("per_target_set_folds", [False, True])
def test_batched_cv_scores_equal_one_ridge_per_problem(G, n, F, t, fit_intercept,
                                                        per_target_set_folds):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(G, n, F)) + 2.0
    y = X[0, :, :max(t, 1)] + rng.normal(size=(n, max(t, 1)))
    y = y[:, 0] if t == 0 else y
    Y = np.stack([y] + [y[rng.permutation(n)] for _ in range(3)])
    splits = list(KFold(4, shuffle=True, random_state=0).split(X[0]))
    train, test = _fold_masks(splits, n)
    if per_target_set_folds:
        train = np.repeat(train, len(Y), axis=0)
    est = LinearDecoder(2.0, fit_intercept=fit_intercept, device="cpu")
    Xt = torch.as_tensor(X)
    scores = est._batched_cv_scores(Xt, Y, train, test)
    general = est._batched_cv_scores(Xt, Y, train, test, scoring="neg_mean_absolute_error",
                                     generalize=True)
    assert scores.shape == (4, 4, G) and general.shape == (4, 4, G, G)
    for b in range(len(Y)):
        for f, (tr, te) in enumerate(splits):
            for g in range(G):
                ref = Ridge(2.0, fit_intercept=fit_intercept).fit(X[g][tr], Y[b][tr])
                assert scores[b, f, g] == pytest.approx(
                    r2_score(Y[b][te], ref.predict(X[g][te])), abs=1e-10)
                for h in range(G):
                    assert general[b, f, g, h] == pytest.approx(
                        -mean_absolute_error(Y[b][te], ref.predict(X[h][te])), abs=1e-10)
    two_d = est._batched_cv_scores(Xt[0], Y, train, test)
    np.testing.assert_allclose(two_d, scores[..., 0], rtol=1e-12)


def test_batched_permutation_null_equals_sklearn_permutation_test_score():
    from sklearn.model_selection import permutation_test_score

    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 8))
    y = X[:, 0] + rng.normal(size=120)
    cv = KFold(5)
    score, null, _ = permutation_test_score(Ridge(1.0), X, y, cv=cv, n_permutations=30,
                                            random_state=0)
    draws = np.random.RandomState(0)  # the same draws as scikit-learn's _shuffle
    Y = np.stack([y] + [y[draws.permutation(len(y))] for _ in range(30)])
    train, test = _fold_masks(list(cv.split(X)), len(y))
    ours = LinearDecoder(1.0, device="cpu")._batched_cv_scores(torch.as_tensor(X), Y, train,
                                                                test).mean(axis=1)
    assert ours[0] == pytest.approx(score, rel=1e-10)
    np.testing.assert_allclose(ours[1:], null, rtol=1e-9, atol=1e-12)


def test_batched_fit_equals_ridge_per_feature_set():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 50, 5))
    y = rng.normal(size=(50, 2))
    fits = LinearDecoder(0.5, device="cpu")._batched_fit(torch.as_tensor(X), y)
    assert len(fits) == 3
    for g, est in enumerate(fits):
        ref = Ridge(0.5).fit(X[g], y)
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10)
        np.testing.assert_allclose(est.predict(X[g]), ref.predict(X[g]), rtol=1e-10)
        assert est.alpha == 0.5 and est.n_features_in_ == 5


def test_batched_scoring_must_be_batched():
    est = LinearDecoder(device="cpu")
    train, test = _fold_masks(list(KFold(2).split(np.zeros((10, 1)))), 10)
    with pytest.raises(ParameterError, match="is not batched"):
        est._batched_cv_scores(torch.zeros(10, 2), np.zeros((1, 10)), train, test,
                               scoring="accuracy")


def test_permutation_test_with_ridge_is_batched_and_equals_sklearn():
    from sklearn.model_selection import permutation_test_score

    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 10))
    y = X[:, 0] + rng.normal(size=150)
    res = neuroml.permutation_test(LinearDecoder(1.0, device="cpu"), X, y, n_permutations=50,
                                   cv=KFold(5), random_state=0)
    score, null, pvalue = permutation_test_score(Ridge(1.0), X, y, cv=KFold(5),
                                                 n_permutations=50, random_state=0)
    assert res.batched
    assert res.score == pytest.approx(score, rel=1e-10)
    np.testing.assert_allclose(np.sort(res.null), np.sort(null), rtol=1e-9, atol=1e-12)
    assert res.pvalue == pytest.approx(pvalue)


def test_time_resolved_ridge_equals_cross_val_score_per_bin():
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 6, 5))  # trials, time bins, units
    y = X[:, :, 0].mean(axis=1) + 0.1 * rng.normal(size=60)
    trd = neuroml.TimeResolvedDecoder(LinearDecoder(1.0, device="cpu"), cv=KFold(5),
                                      device="cpu").fit(X, y)
    expected = [cross_val_score(Ridge(1.0), X[:, t], y, cv=KFold(5)).mean() for t in range(6)]
    np.testing.assert_allclose(trd.mean_scores_.values, expected, rtol=1e-9, atol=1e-12)
    for t, est in enumerate(trd.estimators_):
        np.testing.assert_allclose(est.coef_, Ridge(1.0).fit(X[:, t], y).coef_, rtol=1e-9)
