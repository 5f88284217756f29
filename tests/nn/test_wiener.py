"""WienerFilter: the closed-form ridge solution on lagged activity, trials, types, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from neuroml.base import load
from neuroml.errors import NotFittedError, ParameterError
from neuroml.nn.wiener import WienerFilter

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _trials(seed=0, n_trials=12, n_times=30, n_units=5, k=2, short=True):
    """NaN-padded trials whose behaviour is a lagged linear read-out plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_trials, n_times, n_units))
    w = rng.normal(size=(3, n_units, k))
    y = np.zeros((n_trials, n_times, k))
    for lag in range(3):
        y[:, lag:] += X[:, : n_times - lag] @ w[lag]
    y += 0.1 * rng.normal(size=y.shape)
    lengths = np.full(n_trials, n_times)
    if short:
        lengths[::3] = rng.integers(8, n_times, size=len(lengths[::3]))
        for i, n in enumerate(lengths):
            X[i, n:] = np.nan
            y[i, n:] = np.nan
    return X, y, lengths


def _design(X, y, lengths, n_lags):
    """The lagged design matrix built bin by bin (lag-major features), and its targets."""
    rows, targets = [], []
    for i, n in enumerate(lengths):
        for t in range(n_lags - 1, n):
            rows.append(np.concatenate([X[i, t - lag] for lag in range(n_lags)]))
            targets.append(y[i, t])
    return np.array(rows), np.array(targets)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_least_squares_equals_lstsq(fit_intercept):
    X, y, lengths = _trials()
    wf = WienerFilter(n_lags=4, alpha=0.0, fit_intercept=fit_intercept, device="cpu").fit(X, y)
    D, T = _design(X, y, lengths, 4)
    A = np.c_[D, np.ones(len(D))] if fit_intercept else D
    sol = np.linalg.lstsq(A, T, rcond=None)[0]
    coef = sol[: D.shape[1]].reshape(4, 5, 2)
    np.testing.assert_allclose(wf.coef_, coef, rtol=1e-6, atol=1e-9)
    if fit_intercept:
        np.testing.assert_allclose(wf.intercept_, sol[-1], rtol=1e-6, atol=1e-9)
    else:
        assert wf.intercept_ == 0.0
    assert wf.n_samples_fit_ == len(D)


@pytest.mark.parametrize("alpha", [0.5, [1.0, 30.0]])
def test_ridge_equals_sklearn(alpha):
    X, y, lengths = _trials(seed=1)
    wf = WienerFilter(n_lags=3, alpha=alpha, device="cpu").fit(X, y)
    D, T = _design(X, y, lengths, 3)
    ref = Ridge(alpha=np.asarray(alpha), solver="svd").fit(D, T)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(wf.coef_.reshape(-1, 2).T, ref.coef_, rtol=1e-6,
                               atol=1e-9 * scale)
    np.testing.assert_allclose(wf.intercept_, ref.intercept_, rtol=1e-6, atol=1e-9)


def test_predictions_are_the_design_times_the_weights_nan_without_history():
    X, y, lengths = _trials(seed=2)
    wf = WienerFilter(n_lags=5, alpha=1.0, device="cpu").fit(X, y)
    pred = wf.predict(X)
    assert pred.shape == y.shape
    D, _ = _design(X, y, lengths, 5)
    ref = D @ wf.coef_.reshape(-1, 2) + wf.intercept_
    have = np.concatenate([pred[i, 4:n] for i, n in enumerate(lengths)])
    np.testing.assert_allclose(have, ref, rtol=1e-10, atol=1e-10)
    assert np.isnan(pred[:, :4]).all()  # incomplete history
    for i, n in enumerate(lengths):
        assert np.isnan(pred[i, n:]).all()  # padding


def test_recovers_planted_filter():
    X, y, _ = _trials(seed=3, n_trials=40, short=False)
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 5, 2))
    y = np.zeros_like(y)
    for lag in range(3):
        y[:, lag:] += X[:, : 30 - lag] @ w[lag]
    wf = WienerFilter(n_lags=5, alpha=1e-8, device="cpu").fit(X, y)
    np.testing.assert_allclose(wf.coef_[:3], w, atol=1e-6)
    np.testing.assert_allclose(wf.coef_[3:], 0.0, atol=1e-6)


def test_lags_do_not_cross_trials_and_padding_is_ignored():
    X, y, lengths = _trials(seed=4)
    wf = WienerFilter(n_lags=4, alpha=1.0, device="cpu").fit(X, y)
    batch = wf.predict(X)
    for i, n in enumerate(lengths):
        alone = wf.predict(X[i: i + 1, :n])
        np.testing.assert_allclose(batch[i, :n], alone[0], rtol=1e-12, atol=1e-12)
    # changing one trial changes neither the other trials' predictions ...
    X2 = X.copy()
    X2[0, : lengths[0]] += 5.0
    np.testing.assert_allclose(wf.predict(X2)[1:], batch[1:], rtol=1e-12, atol=1e-12)
    # ... nor does the length of the padding change the fit
    Xp = np.concatenate([X, np.full((12, 7, 5), np.nan)], axis=1)
    yp = np.concatenate([y, np.full((12, 7, 2), np.nan)], axis=1)
    refit = WienerFilter(n_lags=4, alpha=1.0, device="cpu").fit(Xp, yp)
    np.testing.assert_allclose(refit.coef_, wf.coef_, rtol=1e-9, atol=1e-12)


def test_continuous_recording_is_one_trial():
    X, y, _ = _trials(seed=5, n_trials=1, n_times=200, short=False)
    one = WienerFilter(n_lags=3, device="cpu").fit(X, y)
    cont = WienerFilter(n_lags=3, device="cpu").fit(X[0], y[0])
    np.testing.assert_allclose(cont.coef_, one.coef_, rtol=1e-10)
    pred = cont.predict(X[0])
    assert pred.shape == (200, 2)
    np.testing.assert_allclose(pred, one.predict(X)[0], rtol=1e-12, equal_nan=True)
    single = WienerFilter(n_lags=3, device="cpu").fit(X[0], y[0, :, 0])
    assert single.coef_.shape == (3, 5)
    assert single.predict(X[0]).shape == (200,)
    assert isinstance(single.intercept_, float)


def test_score_is_r2_over_bins_with_a_prediction():
    X, y, lengths = _trials(seed=6)
    wf = WienerFilter(n_lags=3, device="cpu").fit(X, y)
    pred = wf.predict(X)
    ok = ~np.isnan(pred).any(-1)
    assert ok.sum() == sum(n - 2 for n in lengths)
    assert wf.score(X, y) == pytest.approx(r2_score(y[ok], pred[ok]), rel=1e-12)
    assert wf.score(X, y) > 0.9


def test_dataarray_and_tensor_round_trip():
    X, y, _ = _trials(seed=7)
    trial = np.arange(12) + 100
    time = np.arange(30) * 0.05
    Xd = xr.DataArray(X, dims=("trial", "time", "unit"),
                      coords={"trial": trial, "time": time, "unit": list("abcde"),
                              "condition": ("trial", np.arange(12) % 3)})
    yd = xr.DataArray(y, dims=("trial", "time", "axis"),
                      coords={"trial": trial, "time": time, "axis": ["vx", "vy"]})
    wf = WienerFilter(n_lags=2, device="cpu").fit(Xd, yd)
    out = wf.predict(Xd)
    assert isinstance(out, xr.DataArray)
    assert out.dims == ("trial", "time", "axis")
    np.testing.assert_array_equal(out.trial, trial)
    np.testing.assert_array_equal(out.axis, ["vx", "vy"])
    np.testing.assert_array_equal(out.condition, np.arange(12) % 3)
    np.testing.assert_allclose(out.values, wf.predict(X), equal_nan=True)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    tout = wf.predict(Xt)
    assert isinstance(tout, torch.Tensor) and tout.dtype == torch.float32
    np.testing.assert_allclose(tout.numpy(), wf.predict(X), rtol=1e-4, atol=1e-4,
                               equal_nan=True)


def test_save_load_round_trip(tmp_path):
    X, y, _ = _trials(seed=8)
    wf = WienerFilter(n_lags=3, device="cpu").fit(X, y[..., 0])
    back = load(wf.save(tmp_path / "wf.pt"))
    np.testing.assert_array_equal(back.coef_, wf.coef_)
    np.testing.assert_array_equal(back.predict(X), wf.predict(X))
    assert back.predict(X).shape == (12, 30)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        WienerFilter().predict(np.zeros((2, 5, 3)))


def _mid_nan():
    X, y, _ = _trials(seed=9)
    X[1, 4, 2] = np.nan
    return X, y


def _all_nan_trial():
    X, y, _ = _trials(seed=9)
    X[2] = np.nan
    return X, y


def _bad(kind):
    X, y, _ = _trials(seed=9)
    return {
        "1d": (X[0, :, 0], y[0, :, 0]),
        "time": (X, y[:, :-1]),
        "trials": (X, y[:-1]),
        "mid_nan": _mid_nan(),
        "all_nan": _all_nan_trial(),
        "y_none": (X, None),
        "y_nan": (X, np.where(np.arange(30)[None, :, None] == 3, np.nan, np.nan_to_num(y))),
        "too_short": (X[:, :2], y[:, :2]),
    }[kind]


@pytest.mark.parametrize("kind, match", [
    ("1d", r"\(trial, time, unit\) or one continuous recording of shape \(time, unit\); "
           r"got 1-D input"),
    ("time", r"y has 29 time bins but X has 30"),
    ("trials", r"y has 11 trials but X has 12"),
    ("mid_nan", r"NaN in the middle of 1 trial.*trial index 1, time bin 4"),
    ("all_nan", r"all NaN \(trial index 2\)"),
    ("y_none", r"requires y to be passed"),
    ("y_nan", r"y contains NaN or infinity"),
    ("too_short", r"n_lags=3 needs a trial .* of at least n_lags time bins, .*the longest has 2"),
])
def test_bad_input_errors(kind, match):
    X, y = _bad(kind)
    with pytest.raises(ParameterError, match=match):
        WienerFilter(n_lags=3, device="cpu").fit(X, y)


@pytest.mark.parametrize("params, match", [
    ({"n_lags": 0}, r"'n_lags' parameter of WienerFilter must be an int in the range \[1, inf\)"),
    ({"alpha": -1.0}, r"'alpha' parameter of WienerFilter"),
    ({"alpha": [1.0, 2.0, 3.0]}, r"'alpha' parameter of WienerFilter must be .* array of 2"),
])
def test_bad_parameters(params, match):
    X, y, _ = _trials(seed=10)
    with pytest.raises(ParameterError, match=match):
        WienerFilter(device="cpu", **params).fit(X, y)


def test_predict_checks_the_number_of_units():
    X, y, _ = _trials(seed=11)
    wf = WienerFilter(n_lags=2, device="cpu").fit(X, y)
    with pytest.raises(ParameterError, match="X has 4 features, but WienerFilter is expecting 5"):
        wf.predict(X[..., :4])


@cuda
@needs_cuda
def test_cuda_matches_cpu():
    X, y, _ = _trials(seed=12)
    cpu = WienerFilter(n_lags=3, device="cpu").fit(X, y)
    gpu = WienerFilter(n_lags=3, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-8, atol=1e-10)
    out = gpu.predict(torch.as_tensor(X, device="cuda"))
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), cpu.predict(X), rtol=1e-8, atol=1e-10,
                               equal_nan=True)


def test_nonlinear_latent_dynamics_defeat_a_linear_filter_in_part():
    from neuroml.datasets.latent_dynamics import make_latent_dynamics

    counts, behaviour = make_latent_dynamics(n_units=30, n_trials=80, min_length=50,
                                             random_state=0)
    wf = WienerFilter(n_lags=5, device="cpu").fit(counts[:60], behaviour[:60])
    pred = wf.predict(counts[60:])
    assert pred.dims == ("trial", "time", "channel")
    np.testing.assert_array_equal(pred.length, counts.length[60:])
    assert np.isnan(pred.values[np.arange(100)[None] >= counts.length.values[60:, None]]).all()
    # the behaviour is an even function of the latent state: a linear filter gets part
    assert 0.3 < wf.score(counts[60:], behaviour[60:]) < 0.75
