"""KalmanDecoder: least-squares model fits, the filter recursion, a planted system, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.metrics import r2_score

from neuroml.base import load
from neuroml.errors import NotFittedError, ParameterError
from neuroml.nn.kalman import KalmanDecoder

cuda = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

A_TRUE = np.array([[0.95, 0.15], [-0.15, 0.95]])


def _system(seed=0, n_trials=20, n_times=60, n_units=12, obs_noise=1.0, short=True):
    """A planted linear-Gaussian system: rotating 2-D state, noisy linear neurons."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_trials, n_times, 2))
    x[:, 0] = rng.normal(size=(n_trials, 2))
    for t in range(1, n_times):
        x[:, t] = x[:, t - 1] @ A_TRUE.T + 0.5 * rng.normal(size=(n_trials, 2))
    H = rng.normal(size=(n_units, 2))
    mix = 0.3 * rng.normal(size=(n_units, n_units))
    noise = rng.normal(size=(n_trials, n_times, n_units)) @ (np.eye(n_units) + mix).T
    Y = x @ H.T + 1.0 + obs_noise * noise
    lengths = np.full(n_trials, n_times)
    if short:
        lengths[::4] = rng.integers(5, n_times, size=len(lengths[::4]))
        for i, n in enumerate(lengths):
            Y[i, n:] = np.nan
            x[i, n:] = np.nan
    return Y, x, lengths, H


def _closed_form(Y, x, lengths, lag=0, fit_intercept=True):
    """Wu et al.'s least-squares A, W, H, Q (and offsets) computed with NumPy."""
    prev = np.concatenate([x[i, : n - 1] for i, n in enumerate(lengths)])
    curr = np.concatenate([x[i, 1:n] for i, n in enumerate(lengths)])
    state = np.concatenate([x[i, lag:n] for i, n in enumerate(lengths)])
    obs = np.concatenate([Y[i, : n - lag] for i, n in enumerate(lengths)])

    def lstsq(a, b):
        design = np.c_[a, np.ones(len(a))] if fit_intercept else a
        sol = np.linalg.lstsq(design, b, rcond=None)[0]
        resid = b - design @ sol
        offset = sol[-1] if fit_intercept else np.zeros(b.shape[1])
        return sol[: a.shape[1]].T, offset, resid.T @ resid / len(b)

    A, b, W = lstsq(prev, curr)
    H, d, Q = lstsq(state, obs)
    valid = np.concatenate([x[i, :n] for i, n in enumerate(lengths)])
    return dict(A=A, b=b, W=W, H=H, d=d, Q=Q, m0=valid.mean(0),
                S0=np.cov(valid.T, bias=True))


def _numpy_filter(Y, lengths, p, lag=0):
    """The textbook Kalman filter, one trial and one bin at a time, NaN after the end."""
    n_trials, n_times, _ = Y.shape
    out = np.full((n_trials, n_times, len(p["m0"])), np.nan)
    for i in range(n_trials):
        x, P = p["m0"].copy(), p["S0"].copy()
        for t in range(lengths[i]):
            if t > 0:
                x = p["A"] @ x + p["b"]
                P = p["A"] @ P @ p["A"].T + p["W"]
            if t >= lag:
                S = p["H"] @ P @ p["H"].T + p["Q"]
                K = P @ p["H"].T @ np.linalg.inv(S)
                x = x + K @ (Y[i, t - lag] - p["H"] @ x - p["d"])
                P = (np.eye(len(x)) - K @ p["H"]) @ P
            out[i, t] = x
    return out


@pytest.mark.parametrize("lag, fit_intercept", [(0, True), (2, True), (0, False)])
def test_model_matrices_equal_least_squares(lag, fit_intercept):
    Y, x, lengths, _ = _system()
    kf = KalmanDecoder(lag=lag, fit_intercept=fit_intercept, device="cpu").fit(Y, x)
    ref = _closed_form(Y, x, lengths, lag, fit_intercept)
    for name, attr in [("A", "A_"), ("W", "W_"), ("H", "H_"), ("Q", "Q_"),
                       ("b", "state_offset_"), ("d", "observation_offset_"),
                       ("m0", "initial_mean_"), ("S0", "initial_cov_")]:
        got = getattr(kf, attr)
        scale = np.abs(ref[name]).max() if np.abs(ref[name]).max() > 0 else 1.0
        np.testing.assert_allclose(got, ref[name], rtol=1e-6, atol=1e-9 * scale, err_msg=name)


@pytest.mark.parametrize("lag", [0, 3])
def test_filter_equals_textbook_loop(lag):
    Y, x, lengths, _ = _system(seed=1)
    kf = KalmanDecoder(lag=lag, device="cpu").fit(Y, x)
    params = dict(A=kf.A_, W=kf.W_, H=kf.H_, Q=kf.Q_, b=kf.state_offset_,
                  d=kf.observation_offset_, m0=kf.initial_mean_, S0=kf.initial_cov_)
    Yt, _, lengths_t, _ = _system(seed=2)  # held-out trials
    np.testing.assert_allclose(kf.predict(Yt), _numpy_filter(Yt, lengths_t, params, lag),
                               rtol=1e-8, atol=1e-10, equal_nan=True)


def test_ridge_penalty_shrinks_the_regressions():
    Y, x, lengths, _ = _system(seed=3)
    alpha = 50.0
    kf = KalmanDecoder(alpha=alpha, device="cpu").fit(Y, x)
    state = np.concatenate([x[i, :n] for i, n in enumerate(lengths)])
    obs = np.concatenate([Y[i, :n] for i, n in enumerate(lengths)])
    sc, oc = state - state.mean(0), obs - obs.mean(0)
    H = np.linalg.solve(sc.T @ sc + alpha * np.eye(2), sc.T @ oc).T
    np.testing.assert_allclose(kf.H_, H, rtol=1e-8)
    np.testing.assert_allclose(kf.observation_offset_, obs.mean(0) - H @ state.mean(0),
                               rtol=1e-8)


def test_planted_system_filter_beats_the_observation_model_alone():
    Y, x, _, H_true = _system(seed=4, n_trials=60, obs_noise=10.0, short=False)
    train, test = slice(0, 40), slice(40, 60)
    kf = KalmanDecoder(device="cpu").fit(Y[train], x[train])
    np.testing.assert_allclose(kf.A_, A_TRUE, atol=0.03)
    assert np.corrcoef(kf.H_.ravel(), H_true.ravel())[0, 1] > 0.95
    truth = x[test].reshape(-1, 2)
    r2_filter = r2_score(truth, kf.predict(Y[test]).reshape(-1, 2))
    # the same fitted models without the state dynamics: each bin decoded on its own,
    # by generalised least squares and by the posterior mean under the stationary prior
    Qi = np.linalg.inv(kf.Q_)
    innov = Y[test].reshape(-1, 12) - kf.observation_offset_
    gls = np.linalg.solve(kf.H_.T @ Qi @ kf.H_, kf.H_.T @ Qi @ innov.T).T
    S0, m0 = kf.initial_cov_, kf.initial_mean_
    gain = S0 @ kf.H_.T @ np.linalg.inv(kf.H_ @ S0 @ kf.H_.T + kf.Q_)
    static = m0 + (innov - m0 @ kf.H_.T) @ gain.T
    r2_gls, r2_static = r2_score(truth, gls), r2_score(truth, static)
    assert r2_filter > 0.85
    assert r2_filter > r2_static + 0.05 and r2_static > r2_gls + 0.05


def test_singular_observation_noise_ignores_a_silent_unit():
    Y, x, _, _ = _system(seed=5, short=False)
    Ys = np.concatenate([Y, np.zeros(Y.shape[:2] + (1,))], axis=-1)  # unit 12 never fires
    kf = KalmanDecoder(device="cpu").fit(Ys, x)
    ref = KalmanDecoder(device="cpu").fit(Y, x)
    assert np.abs(kf.Q_[12]).max() == 0 and np.abs(kf.H_[12]).max() == 0
    Yt, _, _, _ = _system(seed=6, short=False)
    Yts = np.concatenate([Yt, np.random.default_rng(0).normal(size=Yt.shape[:2] + (1,))], -1)
    np.testing.assert_allclose(kf.predict(Yts), ref.predict(Yt), rtol=1e-8, atol=1e-10)


def test_padded_batch_equals_trials_alone():
    Y, x, lengths, _ = _system(seed=7)
    kf = KalmanDecoder(lag=1, device="cpu").fit(Y, x)
    batch = kf.predict(Y)
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(batch[i, :n], kf.predict(Y[i: i + 1, :n])[0],
                                   rtol=1e-10, atol=1e-12)
        assert np.isnan(batch[i, n:]).all()


def test_continuous_recording_and_single_target():
    Y, x, _, _ = _system(seed=8, n_trials=1, n_times=400, short=False)
    one = KalmanDecoder(device="cpu").fit(Y, x)
    cont = KalmanDecoder(device="cpu").fit(Y[0], x[0])
    np.testing.assert_allclose(cont.A_, one.A_, rtol=1e-10)
    pred = cont.predict(Y[0])
    assert pred.shape == (400, 2)
    np.testing.assert_allclose(pred, one.predict(Y)[0], rtol=1e-10)
    single = KalmanDecoder(device="cpu").fit(Y[0], x[0, :, 0])
    assert single.A_.shape == (1, 1) and single.H_.shape == (12, 1) and single.flat_target_
    assert single.predict(Y[0]).shape == (400,)
    assert single.score(Y[0], x[0, :, 0]) == pytest.approx(
        r2_score(x[0, :, 0], single.predict(Y[0])), rel=1e-12)


def test_dataarray_and_tensor_round_trip():
    Y, x, _, _ = _system(seed=9)
    trial, time = np.arange(20), np.arange(60) * 0.1
    Yd = xr.DataArray(Y, dims=("trial", "time", "unit"),
                      coords={"trial": trial, "time": time, "rewarded": ("trial", trial % 2)})
    xd = xr.DataArray(x, dims=("trial", "time", "axis"), coords={"axis": ["vx", "vy"]})
    kf = KalmanDecoder(device="cpu").fit(Yd, xd)
    out = kf.predict(Yd)
    assert out.dims == ("trial", "time", "axis")
    np.testing.assert_array_equal(out.rewarded, trial % 2)
    np.testing.assert_array_equal(out.time, time)
    np.testing.assert_allclose(out.values, kf.predict(Y), equal_nan=True)
    tout = kf.predict(torch.as_tensor(Y))
    assert isinstance(tout, torch.Tensor) and tout.dtype == torch.float64
    np.testing.assert_allclose(tout.numpy(), kf.predict(Y), equal_nan=True)


def test_save_load_round_trip(tmp_path):
    Y, x, _, _ = _system(seed=10)
    kf = KalmanDecoder(lag=1, device="cpu").fit(Y, x[..., 1])
    back = load(kf.save(tmp_path / "kf.pt"))
    np.testing.assert_array_equal(back.Q_, kf.Q_)
    assert back.predict(Y).shape == (20, 60)
    np.testing.assert_array_equal(back.predict(Y), kf.predict(Y))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        KalmanDecoder().predict(np.zeros((2, 5, 3)))


def _bad(kind):
    Y, x, _, _ = _system(seed=11)
    if kind == "mid_nan":
        Y = Y.copy()
        Y[3, 2, 0] = np.nan
    return {
        "1d": (Y[1, :, 0], x[1, :, 0]),
        "time": (Y, x[:, 1:]),
        "trials": (Y, x[1:]),
        "mid_nan": (Y, x),
        "one_bin": (Y[:, :1], x[:, :1]),
        "y_none": (Y, None),
    }[kind]


@pytest.mark.parametrize("kind, match", [
    ("1d", r"\(trial, time, unit\) or one continuous recording of shape \(time, unit\)"),
    ("time", r"y has 59 time bins but X has 60"),
    ("trials", r"y has 19 trials but X has 20"),
    ("mid_nan", r"NaN in the middle of 1 trial.*trial index 3, time bin 2"),
    ("one_bin", r"needs a trial \(or recording\) of at least 2 bins; the longest has 1"),
    ("y_none", r"requires y to be passed"),
])
def test_bad_input_errors(kind, match):
    Y, x = _bad(kind)
    with pytest.raises(ParameterError, match=match):
        KalmanDecoder(device="cpu").fit(Y, x)


@pytest.mark.parametrize("params, match", [
    ({"lag": -1}, r"'lag' parameter of KalmanDecoder must be an int in the range \[0, inf\)"),
    ({"alpha": -0.5}, r"'alpha' parameter of KalmanDecoder"),
    ({"lag": 100}, r"lag=100 needs a trial \(or recording\) longer than lag bins"),
])
def test_bad_parameters(params, match):
    Y, x, _, _ = _system(seed=12)
    with pytest.raises(ParameterError, match=match):
        KalmanDecoder(device="cpu", **params).fit(Y, x)


@cuda
@needs_cuda
def test_cuda_matches_cpu():
    Y, x, _, _ = _system(seed=13)
    cpu = KalmanDecoder(device="cpu").fit(Y, x)
    gpu = KalmanDecoder(device="cuda").fit(Y, x)
    np.testing.assert_allclose(gpu.Q_, cpu.Q_, rtol=1e-8, atol=1e-10)
    out = gpu.predict(torch.as_tensor(Y, device="cuda"))
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), cpu.predict(Y), rtol=1e-7, atol=1e-9,
                               equal_nan=True)


def test_nonlinear_latent_dynamics_defeat_the_linear_gaussian_model_in_part():
    from neuroml.datasets.latent_dynamics import make_latent_dynamics

    counts, behaviour = make_latent_dynamics(n_units=30, n_trials=80, min_length=50,
                                             random_state=0)
    kf = KalmanDecoder(device="cpu").fit(counts[:60], behaviour[:60])
    pred = kf.predict(counts[60:])
    assert pred.dims == ("trial", "time", "channel")
    valid = np.arange(100)[None] < counts.length.values[60:, None]
    assert np.isfinite(pred.values[valid]).all() and np.isnan(pred.values[~valid]).all()
    assert 0.3 < kf.score(counts[60:], behaviour[60:]) < 0.75
