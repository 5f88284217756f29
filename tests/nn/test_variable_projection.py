"""The sine preset's variable projection: grid detection, the Taylor-expanded sums
against direct sums, and fits equal to the Levenberg-Marquardt path and to SciPy."""

import numpy as np
import pytest
import torch
from scipy.optimize import curve_fit

from neuroml.nn._variable_projection import _Expansion, uniform_grid
from neuroml.nn.parametric import ParametricRegressor

CPU = dict(device="cpu")
F64 = torch.float64


def np_sine(x, amplitude, frequency, phase):
    return amplitude * np.sin(frequency * x + phase)


def test_uniform_grid_is_found_with_gaps_and_not_on_irregular_x():
    x = np.linspace(-3, 7, 101)
    x0, dx, n = uniform_grid(torch.as_tensor(x))
    assert x0 == -3 and dx == pytest.approx(0.1, rel=1e-12)
    np.testing.assert_array_equal(n.numpy(), np.arange(101))
    gappy = np.delete(x, [5, 6, 40, 77])
    _, _, n = uniform_grid(torch.as_tensor(gappy))
    np.testing.assert_array_equal(n.numpy(), np.delete(np.arange(101), [5, 6, 40, 77]))
    irregular = np.sort(np.random.default_rng(0).uniform(0, 10, 100))
    assert uniform_grid(torch.as_tensor(irregular)) is None
    assert uniform_grid(torch.as_tensor(x + 1e-9 * np.sin(np.arange(101)))) is None
    assert uniform_grid(torch.as_tensor(x[::3][:20] ** 1)) is not None  # a coarser grid
    sparse = np.r_[np.arange(20.0), 1000.0]  # most of the grid would be empty
    assert uniform_grid(torch.as_tensor(sparse)) is None


@pytest.mark.parametrize("layout", ["grid", "gappy", "irregular"])
def test_expanded_sums_equal_direct_sums(layout):
    """D_q = sum w y u^q e^{i g u} and S_q = sum w u^q e^{2 i g u} from the series around
    a centre equal the sums computed directly, to 1e-13 of their scale."""
    rng = np.random.default_rng(1)
    x = np.linspace(0, 10, 120)
    if layout == "gappy":
        x = np.delete(x, rng.choice(120, 15, replace=False))
    elif layout == "irregular":
        x = np.sort(rng.uniform(0, 10, 120))
    w = rng.integers(1, 4, len(x)).astype(float)
    Y = rng.normal(size=(7, len(x)))
    xt = torch.as_tensor(x)
    exp = _Expansion(xt, torch.as_tensor(Y), torch.as_tensor(w))
    assert exp.grid == (layout != "irregular")
    centre = torch.as_tensor(rng.uniform(2, 15, 7))
    t = torch.as_tensor(rng.uniform(-1, 1, 7) * exp.RADIUS)
    dw, sw = exp.moments(centre, None)
    im_d, re_d, im_s, re_s = (v.numpy() for v in exp.sums(dw, sw, t))
    u = (x - exp.centre) / exp.R
    g = (centre + t).numpy()[:, None]
    for q in range(3):
        D = (w * Y * u**q * np.exp(1j * g * u)).sum(1)
        S = (w * u**q * np.exp(2j * g * u)).sum(1)
        scale_d, scale_s = (w * np.abs(Y)).sum(1), w.sum()
        np.testing.assert_allclose(re_d[:, q], D.real, atol=1e-13 * scale_d.max())
        np.testing.assert_allclose(im_d[:, q], D.imag, atol=1e-13 * scale_d.max())
        np.testing.assert_allclose(re_s[:, q], S.real, atol=1e-13 * scale_s)
        np.testing.assert_allclose(im_s[:, q], S.imag, atol=1e-13 * scale_s)


def _planted(x, n=12, seed=2, noise=0.3):
    rng = np.random.default_rng(seed)
    P = np.c_[rng.uniform(1, 3, n), rng.uniform(0.8, 3, n), rng.uniform(-3, 3, n)]
    return np_sine(x[:, None], *P.T) + rng.normal(0, noise, (len(x), n)), P


@pytest.mark.parametrize("layout", ["repeats", "gappy", "irregular"])
def test_projection_equals_levenberg_marquardt_and_curve_fit(layout):
    """Repeated x (merged with weights), a grid with gaps and irregular x: the projected
    fit reaches the minimum that Levenberg-Marquardt (forced by a phase bound that
    changes nothing) and SciPy's curve_fit reach from the same start."""
    rng = np.random.default_rng(3)
    x = np.linspace(0, 8, 90)
    if layout == "repeats":
        x = np.repeat(x[::3], 4)
    elif layout == "gappy":
        x = np.delete(x, rng.choice(90, 20, replace=False))
    else:
        x = np.sort(rng.uniform(0, 8, 90))
    Y, _ = _planted(x)
    vp = ParametricRegressor("sine", **CPU).fit(x, Y)
    lm = ParametricRegressor("sine", bounds={"phase": (-100, 100)}, **CPU).fit(x, Y)
    assert vp.converged_.all()
    # the same minimum, which each solver stops near (tol=1e-8 on the sum of squares)
    np.testing.assert_allclose(vp.loss_, lm.loss_, rtol=1e-9)
    np.testing.assert_allclose(vp.predict(x), lm.predict(x), atol=1e-4)
    start = vp.params_.to_numpy()
    for i in range(Y.shape[1]):
        ref = curve_fit(np_sine, x, Y[:, i], p0=start[i] * [1.1, 1.001, 1.0], method="lm",
                        xtol=1e-12, ftol=1e-12)[0]
        np.testing.assert_allclose(np_sine(x, *ref), vp.predict(x)[:, i], atol=1e-6)


def test_a_frequency_far_from_its_guess_is_reached_by_expanding_again():
    """A start half a period-per-range away: steps beyond the series' radius expand the
    sums again at the new frequency, and the fit still lands on curve_fit's minimum."""
    x = np.linspace(0, 10, 200)
    y = 2.0 * np.sin(2.3 * x + 0.4) + np.random.default_rng(4).normal(0, 0.2, 200)
    fit = ParametricRegressor("sine", p0={"frequency": 2.15}, **CPU).fit(x, y[:, None])
    ref = curve_fit(np_sine, x, y, p0=[2.0, 2.3, 0.4], method="lm")[0]
    assert fit.converged_[0]
    np.testing.assert_allclose(fit.params_.iloc[0][["amplitude", "frequency"]], ref[:2],
                               rtol=1e-6)
