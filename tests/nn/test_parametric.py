"""ParametricRegressor against SciPy's curve_fit neuron by neuron, closed-form least
squares, and torch's own autodiff."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from scipy.optimize import curve_fit
from sklearn.linear_model import LinearRegression

import neuroml
from neuroml.errors import NotFittedError, ParameterError
from neuroml.nn._parametric_models import PRESETS
from neuroml.nn.parametric import ParametricRegressor

CPU = dict(device="cpu")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
cuda = pytest.mark.cuda


# ---------------------------------------------------------------------- NumPy twins of the presets
def np_sine(x, amplitude, frequency, phase):
    return amplitude * np.sin(frequency * x + phase)


def np_von_mises(x, b, a, kappa, mu):
    return b + a * np.exp(kappa * (np.cos(x - mu) - 1))


def np_gaussian(x, b, a, mu, sigma):
    return b + a * np.exp(-((x - mu) ** 2) / (2 * sigma**2))


def np_sigmoid(x, b, a, x0, slope):
    return b + a / (1 + np.exp(-slope * (x - x0)))


def planted(model: str, n_neurons: int = 30, seed: int = 0, noise: float = 0.3):
    """x, noisy responses (n_samples, n_neurons), the planted parameters, the NumPy model."""
    rng = np.random.default_rng(seed)
    u = lambda lo, hi: rng.uniform(lo, hi, n_neurons)  # noqa: E731
    if model == "sine":
        x, f = np.linspace(0, 10, 150), np_sine
        P = np.c_[u(1, 3), u(1, 3), u(-3, 3)]
    elif model == "sine_irregular":  # not evenly spaced: a periodogram instead of an FFT
        x, f = np.sort(rng.uniform(0, 10, 150)), np_sine
        P = np.c_[u(1, 3), u(1, 3), u(-3, 3)]
    elif model == "von_mises":
        x, f = np.repeat(np.linspace(-np.pi, np.pi, 16, endpoint=False), 5), np_von_mises
        P = np.c_[u(0.5, 1.5), u(2, 6), u(1, 4), u(-3, 3)]
    elif model == "gaussian":
        x, f = np.linspace(-5, 5, 100), np_gaussian
        P = np.c_[u(0.5, 1.5), u(2, 5), u(-2, 2), u(0.5, 2)]
    else:
        x, f = np.linspace(-5, 5, 100), np_sigmoid
        P = np.c_[u(0.5, 1.5), u(2, 5), u(-2, 2), u(0.8, 3) * rng.choice([-1, 1], n_neurons)]
    Y = f(x[:, None], *P.T) + rng.normal(0, noise, (len(x), n_neurons))
    return x, Y, P, f


def circular(a):
    return np.mod(a + np.pi, 2 * np.pi) - np.pi


# ---------------------------------------------------------------------- agreement with SciPy
@pytest.mark.parametrize("case", ["sine", "sine_irregular", "von_mises", "gaussian", "sigmoid"])
def test_parameters_equal_curve_fit_neuron_by_neuron(case):
    x, Y, P, f = planted(case)
    model = case.removesuffix("_irregular")
    fit = ParametricRegressor(model, **CPU).fit(x, Y)
    assert fit.converged_.all()
    ref = np.array([curve_fit(f, x, Y[:, i], p0=P[i], method="lm")[0] for i in range(Y.shape[1])])
    names = PRESETS[model].names
    periodic = [names.index(n) for n in PRESETS[model].periodic]
    ref[:, periodic] = circular(ref[:, periodic])
    ours = fit.params_[list(names)].to_numpy()
    rel = np.abs(ours - ref) / np.abs(ref)
    rel[:, periodic] = np.abs(circular(ours[:, periodic] - ref[:, periodic])) / np.pi
    assert rel.max() <= 1e-3, rel.max(axis=0)
    # the same minimum: equal losses, and both near the planted parameters
    ref_loss = ((Y - f(x[:, None], *ref.T)) ** 2).mean(axis=0)
    np.testing.assert_allclose(fit.loss_, ref_loss, rtol=1e-7)
    np.testing.assert_allclose(fit.predict(x), f(x[:, None], *ref.T), atol=1e-3)


def test_cosine_is_the_closed_form_least_squares_fit():
    rng = np.random.default_rng(1)
    x = rng.uniform(-np.pi, np.pi, 90)
    Y = 2 + 1.5 * np.cos(x[:, None] - rng.uniform(-3, 3, 25)) + rng.normal(0, 0.4, (90, 25))
    fit = ParametricRegressor("cosine", **CPU).fit(x, Y)
    design = np.c_[np.ones_like(x), np.cos(x), np.sin(x)]
    c = np.linalg.lstsq(design, Y, rcond=None)[0]  # b, a cos(mu), a sin(mu)
    np.testing.assert_allclose(fit.params_["b"], c[0], rtol=1e-6)
    np.testing.assert_allclose(fit.params_["a"], np.hypot(c[1], c[2]), rtol=1e-6)
    np.testing.assert_allclose(fit.params_["mu"], np.arctan2(c[2], c[1]), atol=1e-6)


def test_default_linear_model_equals_least_squares():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    Y = X @ rng.normal(size=(3, 6)) + 0.5 + rng.normal(0, 0.1, (120, 6))
    fit = ParametricRegressor(**CPU).fit(X, Y)
    lr = LinearRegression().fit(X, Y)
    assert list(fit.params_.columns) == ["b", "w0", "w1", "w2"]
    np.testing.assert_allclose(fit.params_[["w0", "w1", "w2"]].to_numpy(), lr.coef_, rtol=1e-8)
    np.testing.assert_allclose(fit.params_["b"], lr.intercept_, rtol=1e-8)
    assert fit.score(X, Y) == pytest.approx(lr.score(X, Y), rel=1e-10)


def test_r2_is_per_neuron_and_score_is_their_mean():
    x, Y, _, _ = planted("von_mises", n_neurons=8)
    fit = ParametricRegressor("von_mises", **CPU).fit(x, Y)
    pred = fit.predict(x)
    r2 = 1 - ((Y - pred) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(fit.r2_, r2, rtol=1e-10)
    assert fit.score(x, Y) == pytest.approx(r2.mean())
    np.testing.assert_allclose(fit.loss_, ((Y - pred) ** 2).mean(0), rtol=1e-10)


@pytest.mark.parametrize("model", sorted(PRESETS))
def test_preset_jacobians_equal_autodiff(model):
    rng = np.random.default_rng(3)
    preset = PRESETS[model]
    d = 2 if model == "linear" else 1
    k = len(preset.param_names(d))
    x = torch.as_tensor(rng.uniform(-2, 2, (30, d) if d > 1 else 30))
    theta = torch.as_tensor(rng.uniform(0.3, 2, (5, k)))
    value, J = preset.value_and_jac(x, theta)
    for b in range(5):
        auto = torch.func.jacfwd(lambda t: preset.function(x, *t[:, None]).reshape(-1))(theta[b])
        np.testing.assert_allclose(J[b].T.numpy(), auto.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(value[b].numpy(),
                                   preset.function(x, *theta[b][:, None]).reshape(-1).numpy())


# ---------------------------------------------------------------------- user functions
def decay(x, gain, rate=1.0, offset=0.0):
    return gain * torch.exp(-rate * x) + offset


def test_user_function_with_named_parameters_equals_curve_fit():
    rng = np.random.default_rng(4)
    x = np.linspace(0, 4, 60)
    P = np.c_[rng.uniform(1, 3, 20), rng.uniform(0.5, 2, 20), rng.uniform(-1, 1, 20)]
    Y = P[:, 0] * np.exp(-P[:, 1] * x[:, None]) + P[:, 2] + rng.normal(0, 0.05, (60, 20))
    fit = ParametricRegressor(decay, p0={"gain": 2.0}, **CPU).fit(x, Y)
    assert list(fit.params_.columns) == ["gain", "rate", "offset"]
    f = lambda x, g, r, o: g * np.exp(-r * x) + o  # noqa: E731
    ref = np.array([curve_fit(f, x, Y[:, i], p0=[2.0, 1.0, 0.0])[0] for i in range(20)])
    np.testing.assert_allclose(fit.param_values_, ref, rtol=1e-3)


def test_user_function_of_several_features():
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (200, 2))

    def plane_bump(x, a, cx, cy):
        return a * torch.exp(-((x[:, 0] - cx) ** 2 + (x[:, 1] - cy) ** 2))

    truth = np.array([[2.0, 0.3, -0.2], [1.0, -0.5, 0.4]])
    Y = np.stack([t[0] * np.exp(-((X[:, 0] - t[1]) ** 2 + (X[:, 1] - t[2]) ** 2)) for t in truth], 1)
    fit = ParametricRegressor(plane_bump, **CPU).fit(X, Y + rng.normal(0, 0.01, Y.shape))
    np.testing.assert_allclose(fit.param_values_, truth, atol=0.02)
    assert fit.predict(X).shape == (200, 2)


def test_per_neuron_p0_and_bounds_are_respected():
    rng = np.random.default_rng(6)
    x = np.linspace(0, 1, 50)
    Y = np.c_[3.0 * x, 0.5 * x, -1.0 * x] + rng.normal(0, 0.01, (50, 3))

    def slope(x, k):
        return k * x

    fit = ParametricRegressor(slope, p0={"k": [0.5, 0.5, 0.5]}, bounds={"k": (0, 2)}, **CPU)
    k = fit.fit(x, Y).params_["k"].to_numpy()
    assert ((k >= 0) & (k <= 2)).all()  # closed: a sigmoid saturates in float64
    assert k[0] > 2 - 1e-3 and k[2] < 1e-3  # pinned against the bounds the optimum lies past
    assert k[1] == pytest.approx(np.linalg.lstsq(x[:, None], Y[:, 1], rcond=None)[0][0], rel=1e-6)


def test_preset_default_bounds_hold_on_noise():
    rng = np.random.default_rng(7)
    x = np.repeat(np.linspace(-np.pi, np.pi, 8, endpoint=False), 3)
    fit = ParametricRegressor("von_mises", **CPU).fit(x, rng.normal(size=(24, 20)))
    assert (fit.params_["kappa"] > 0).all()
    assert ((fit.params_["mu"] >= -np.pi) & (fit.params_["mu"] < np.pi)).all()


def test_restarts_find_the_global_optimum_of_a_multimodal_fit():
    """A sine's frequency has many local optima: from a wrong guess one start fails."""
    rng = np.random.default_rng(8)
    x = np.linspace(0, 10, 200)
    freq = rng.uniform(2, 5, 20)
    Y = 2 * np.sin(freq * x[:, None] + 0.5) + rng.normal(0, 0.3, (200, 20))

    def sine(x, amplitude, frequency, phase):
        return amplitude * torch.sin(frequency * x + phase)

    kw = dict(p0={"amplitude": 1.0, "frequency": 0.7, "phase": 0.0},
              bounds={"frequency": (0.1, 8.0)}, random_state=0, **CPU)
    one = ParametricRegressor(sine, n_starts=1, **kw).fit(x, Y)
    many = ParametricRegressor(sine, n_starts=40, **kw).fit(x, Y)
    assert np.median(one.r2_) < 0.3
    assert many.r2_.min() > 0.9
    # the optimum the fit started at the planted frequencies reaches
    truth = ParametricRegressor(sine, **{**kw, "p0": {"amplitude": 2.0, "frequency": freq,
                                                     "phase": 0.5}}).fit(x, Y)
    np.testing.assert_allclose(many.loss_, truth.loss_, rtol=1e-8)
    np.testing.assert_allclose(many.params_["frequency"], truth.params_["frequency"], rtol=1e-6)
    np.testing.assert_allclose(many.predict(x), truth.predict(x), atol=1e-5)
    assert many.start_losses_.shape == (20, 40)
    np.testing.assert_allclose(many.loss_, many.start_losses_.min(1), rtol=1e-8)


def test_sine_preset_frequency_guess_comes_from_the_spectrum():
    x, Y, P, _ = planted("sine", n_neurons=10)
    fit = ParametricRegressor("sine", max_iter=1, **CPU).fit(x, Y)  # one step from the guess
    np.testing.assert_allclose(fit.params_["frequency"], P[:, 1], rtol=0.05)


def test_same_random_state_same_fit():
    rng = np.random.default_rng(9)
    x = np.linspace(0, 4, 40)
    Y = np.exp(-x)[:, None] * rng.uniform(1, 2, 5) + rng.normal(0, 0.05, (40, 5))
    a = ParametricRegressor(decay, n_starts=4, random_state=3, **CPU).fit(x, Y)
    b = ParametricRegressor(decay, n_starts=4, random_state=3, **CPU).fit(x, Y)
    np.testing.assert_array_equal(a.param_values_, b.param_values_)
    np.testing.assert_array_equal(a.start_losses_, b.start_losses_)


def test_adam_through_the_trainer_approaches_the_lm_fit():
    x, Y, _, _ = planted("gaussian", n_neurons=10)
    lm = ParametricRegressor("gaussian", **CPU).fit(x, Y)
    gd = ParametricRegressor("gaussian", solver="adam", lr=0.05, max_iter=1500, **CPU).fit(x, Y)
    assert list(gd.history_.columns[:3]) == ["epoch", "train_loss", "val_loss"]
    assert len(gd.history_) == gd.n_iter_
    assert gd.history_["train_loss"].iloc[-1] < gd.history_["train_loss"].iloc[0]
    np.testing.assert_allclose(gd.loss_, lm.loss_, rtol=1e-3)
    np.testing.assert_allclose(gd.param_values_, lm.param_values_, rtol=0.02, atol=0.02)
    assert "n_active" in lm.history_.columns


def test_repeated_x_merge_gives_the_fit_on_all_samples():
    """Merging repeats is exact: the fit equals the fit on slightly jittered x."""
    x, Y, _, _ = planted("von_mises", n_neurons=6)
    merged = ParametricRegressor("von_mises", tol=1e-12, **CPU).fit(x, Y)
    jitter = x + np.tile(np.arange(5), 16) * 1e-9  # all distinct: no merging
    plain = ParametricRegressor("von_mises", tol=1e-12, **CPU).fit(jitter, Y)
    np.testing.assert_allclose(merged.param_values_, plain.param_values_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(merged.loss_, plain.loss_, rtol=1e-8)


# ---------------------------------------------------------------------- types and persistence
def test_output_types_follow_the_input():
    x, Y, _, _ = planted("von_mises", n_neurons=4)
    units = np.array([101, 102, 205, 307])
    Yda = xr.DataArray(Y, dims=("direction", "unit"), coords={"unit": units})
    xda = xr.DataArray(x, dims=("direction",), coords={"direction": x, "trial": ("direction",
                                                                                 np.arange(80))})
    fit = ParametricRegressor("von_mises", **CPU).fit(xda, Yda)
    assert isinstance(fit.params_, pd.DataFrame) and fit.params_.index.name == "unit"
    np.testing.assert_array_equal(fit.params_.index, units)
    out = fit.predict(xda)
    assert out.dims == ("direction", "unit")
    np.testing.assert_array_equal(out.coords["unit"], units)
    np.testing.assert_array_equal(out.coords["trial"], np.arange(80))
    assert isinstance(fit.predict(x), np.ndarray) and fit.predict(x).shape == (80, 4)
    np.testing.assert_allclose(fit.predict(x[:, None]), out.values)
    t = fit.predict(torch.as_tensor(x))
    assert isinstance(t, torch.Tensor) and t.device == fit.device_
    np.testing.assert_allclose(t.numpy(), out.values)
    fit_t = ParametricRegressor("von_mises", **CPU).fit(torch.as_tensor(x), torch.as_tensor(Y))
    np.testing.assert_allclose(fit_t.param_values_, fit.param_values_, rtol=1e-10)
    one = ParametricRegressor("von_mises", **CPU).fit(x[:, None], Y[:, 0])
    assert one.predict(x[:, None]).shape == (80,) and one.params_.shape == (1, 4)
    np.testing.assert_allclose(one.param_values_[0], fit.param_values_[0], rtol=1e-10)


def test_save_load_round_trip(tmp_path):
    x, Y, _, _ = planted("sigmoid", n_neurons=5)
    Yda = xr.DataArray(Y, dims=("sample", "neuron"), coords={"neuron": list("abcde")})
    fit = ParametricRegressor("sigmoid", **CPU).fit(x, Yda)
    loaded = neuroml.load(fit.save(tmp_path / "fit.pt"))
    pd.testing.assert_frame_equal(loaded.params_, fit.params_)
    np.testing.assert_array_equal(loaded.predict(x), fit.predict(x))


@pytest.mark.parametrize("model", ["sine", "sigmoid"])
def test_history_is_made_on_first_use_and_kept_everywhere(tmp_path, model):
    """history_ (one row per iteration) is made from the solver's records when first
    read; a pickle, a saved file and a fit saved inside another estimator keep it, and a
    refit replaces it."""
    import pickle

    from neuroml._serialization import _from_json, _to_json

    x, Y, _, _ = planted(model, n_neurons=5)
    fit = ParametricRegressor(model, **CPU).fit(x, Y)
    assert "history_" not in vars(fit)
    copies = [pickle.loads(pickle.dumps(fit)), neuroml.load(fit.save(tmp_path / "f.pt"))]
    blobs: list = []
    copies.append(_from_json(_to_json(fit, blobs), blobs, None))  # nested in another
    for other in copies:
        pd.testing.assert_frame_equal(other.history_, fit.history_)
    assert len(fit.history_) == fit.n_iter_
    assert list(fit.history_.columns) == ["epoch", "train_loss", "val_loss", "n_active",
                                          "seconds"]
    fit.set_params(solver="adam", max_iter=7).fit(x, Y)
    assert len(fit.history_) == 7 and "_history_records" not in vars(fit)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        ParametricRegressor(**CPU).predict(np.zeros((3, 1)))
    with pytest.raises(NotFittedError):
        ParametricRegressor(**CPU).params_  # noqa: B018


# ---------------------------------------------------------------------- errors
def wrong_shape(x, a):
    return a * x[:, None]


def no_params(x):
    return x


def star_args(x, *a):
    return x


def data_dependent(x, a):
    if a > 0:
        return a * x
    return x


X1 = np.linspace(0, 1, 20)
Y2 = np.random.default_rng(0).normal(size=(20, 3))

ERRORS = [
    (dict(model="von_mises", bounds={"kappa": (5.0, 1.0)}), X1, Y2,
     r"lower bound of 'kappa' must be less than its upper bound; got lower 5.0 >= upper 1.0"),
    (dict(model="von_mises", bounds={"kapa": (0, 1)}), X1, Y2,
     r"names 'kapa', which is not a parameter.*\['b', 'a', 'kappa', 'mu'\]"),
    (dict(model="von_mises", bounds={"kappa": 3}), X1, Y2, r"must map each name to \(lower, upper\)"),
    (dict(model="gaussian", p0={"sigma": [1.0, 2.0]}), X1, Y2, r"array of 3 floats"),
    (dict(model="gaussian", p0={"sigma": -1.0}), X1, Y2, r"'sigma' \(-1.0\) lies outside its bounds"),
    (dict(model="gaussian", p0={"width": 1.0}), X1, Y2, r"names 'width', which is not a parameter"),
    (dict(model=wrong_shape), X1, Y2,
     r"must return a tensor of shape \(n_samples,\) = \(20,\) for x of shape \(20,\).*got \(20, 1\)"),
    (dict(model=no_params), X1, Y2, r"must name its parameters after x"),
    (dict(model=star_args), X1, Y2, r"\*a / \*\*a cannot be fitted"),
    (dict(model=data_dependent), X1, Y2, r"cannot be batched over neurons with torch.func.vmap"),
    (dict(model="sine"), np.zeros((20, 2)), Y2, r"'sine' model .* takes one feature.*got 2"),
    (dict(model="sigmoid"), X1, Y2[:, 0], r"Expected 2D array, got 1D array.*x.reshape\(-1, 1\)"),
    (dict(model="tanh"), X1, Y2, r"The 'model' parameter of ParametricRegressor must be"),
    (dict(model="sine", n_starts=0), X1, Y2, r"The 'n_starts' parameter"),
    (dict(model="sine", solver="bfgs"), X1, Y2, r"The 'solver' parameter"),
    (dict(model="sine"), X1, np.where(Y2 > 1, np.nan, Y2), r"NaN"),
    (dict(model="sine"), X1[:10], Y2, r"inconsistent numbers of samples|samples"),
]


@pytest.mark.parametrize("params, x, y, match", ERRORS)
def test_bad_input_gets_a_clear_error(params, x, y, match):
    with pytest.raises(ParameterError if not np.isnan(y).any() and len(x) == len(y)
                       else ValueError, match=match):
        ParametricRegressor(**params, **CPU).fit(x, y)


def test_predict_with_the_wrong_number_of_features():
    fit = ParametricRegressor(**CPU).fit(np.random.default_rng(0).normal(size=(30, 3)), Y2[:10].ravel())
    with pytest.raises(ValueError, match="Reshape your data"):
        fit.predict(np.zeros(3))
    with pytest.raises(ValueError, match="X has 2 features"):
        fit.predict(np.zeros((4, 2)))


# ---------------------------------------------------------------------- device
@cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("model", ["sine", "von_mises", decay])
def test_cuda_matches_cpu(model):
    x, Y, _, _ = planted("sine" if model is decay else model, n_neurons=10)
    if model is decay:
        x, Y = x / 3, np.exp(-x / 3)[:, None] * np.arange(1, 11) + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = ParametricRegressor(model, device="cpu").fit(x, Y)
        gpu = ParametricRegressor(model, device="cuda").fit(x, Y)
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.param_values_, cpu.param_values_, rtol=1e-6, atol=1e-8)
    pred = gpu.predict(torch.as_tensor(x, device="cuda"))
    assert pred.device.type == "cuda"
    np.testing.assert_allclose(pred.cpu().numpy(), cpu.predict(x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", ["sine", "von_mises"])
def test_sample_order_does_not_change_the_fit(case):
    """Shuffled samples (with and without repeated x) give the fit of the sorted ones, and
    the sine's blocked initial guess covers neurons beyond its first block."""
    x, Y, P, _ = planted(case, n_neurons=1000 if case == "sine" else 30)
    order = np.random.default_rng(1).permutation(len(x))
    ref = ParametricRegressor(case, **CPU).fit(x, Y)
    shuffled = ParametricRegressor(case, **CPU).fit(x[order], Y[order])
    np.testing.assert_allclose(shuffled.param_values_, ref.param_values_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(shuffled.loss_, ref.loss_, rtol=1e-9)
    if case == "sine":  # the last block of neurons is fitted as well as the first
        assert np.median(ref.r2_[-100:]) > 0.8 and np.median(ref.r2_[:100]) > 0.8


@pytest.mark.parametrize("frequency, n_starts", [(0.3, 1), (0.3, 4), (0.5, 4)])
def test_sine_below_one_cycle_is_found_with_any_number_of_starts(frequency, n_starts):
    """Less than one cycle over the range: the lowest frequencies are peaks too."""
    x = np.linspace(0, 5, 60)
    y = np.sin(frequency * x + 0.3)[:, None] + 0.01 * np.random.default_rng(0).normal(size=(60, 1))
    fit = ParametricRegressor("sine", n_starts=n_starts, **CPU).fit(x, y)
    assert fit.r2_[0] > 0.99
    assert fit.params_["frequency"].iloc[0] == pytest.approx(frequency, rel=0.05)


@pytest.mark.parametrize("n_starts", [1, 3])
def test_sine_at_the_nyquist_frequency_keeps_a_finite_amplitude(n_starts):
    """cos(pi x) on integers: sin(pi x) vanishes on every sample, so the guess must not
    divide by it (it once started, and stayed, at an amplitude of 1e12). At this frequency
    only amplitude * sin(phase) is identified (sin(pi x + p) = cos(pi x) sin p); just
    below it, sin((pi - e) x + p) = cos(pi x) sin(p - e x) on integers, and least squares
    trades a larger amplitude for a slope that fits the noise: a local optimum of a lower
    sum of squares than the planted sine's (curve_fit from pi does not converge)."""
    x = np.arange(20.0)
    y = (2.0 * np.cos(np.pi * x))[:, None] + 0.05 * np.random.default_rng(1).normal(size=(20, 1))
    fit = ParametricRegressor("sine", n_starts=n_starts, **CPU).fit(x, y)
    p = fit.params_.iloc[0]
    assert fit.r2_[0] > 0.99 and fit.converged_[0]
    assert p["amplitude"] < 100
    assert p["amplitude"] * abs(np.sin(p["phase"])) == pytest.approx(2.0, abs=0.05)
    assert p["frequency"] == pytest.approx(np.pi, abs=1e-3)
    assert fit.loss_[0] <= np.mean((y[:, 0] - 2.0 * np.cos(np.pi * x)) ** 2)
