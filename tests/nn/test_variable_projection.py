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
    g = centre + t
    # Gram lattice points as far as a row keeps them (RADIUS / 2): those of g -+ RADIUS / 4
    gram, lattice = exp.gram(g - torch.as_tensor(rng.choice([-1, 1], 7)) * exp.RADIUS / 4)
    assert ((g - lattice).abs() <= exp.RADIUS / 2).all()
    assert torch.allclose(lattice / exp.GRAM_STEP, torch.round(lattice / exp.GRAM_STEP))
    windows = torch.stack([exp.moments(centre, None), gram])
    offsets = torch.stack([t, g - lattice])
    sums = exp.sums(windows, offsets).numpy()
    u = (x - exp.centre) / exp.R
    g = g.numpy()[:, None]
    D = [(w * Y * u**q * np.exp(1j * g * u)).sum(1) for q in range(3)]
    S = [(w * u**q * np.exp(2j * g * u)).sum(1) for q in range(3)]
    # the rows _explained reads: d, d', d'' (the products of the data with sin and cos)
    # and S_0, G', G'' (the Gram matrix's derivatives)
    expected = [D[0].imag, D[0].real, D[1].real, -D[1].imag, -D[2].imag, -D[2].real,
                S[0].real, S[0].imag, S[1].imag, S[1].real, 2 * S[2].real, -2 * S[2].imag]
    scale_d, scale_s = (w * np.abs(Y)).sum(1).max(), w.sum()
    for row, (got, want) in enumerate(zip(sums, expected)):
        np.testing.assert_allclose(got, want, atol=1e-13 * (scale_d if row < 6 else scale_s))


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


def test_a_frequency_far_from_its_guess_is_reached_by_expanding_again(monkeypatch):
    """A start 0.3 rad/unit away (1.5 in units of the half range, beyond the series'
    radius): the sums are expanded again at the new frequency (the data's and the
    Gram's), and the fit still lands on curve_fit's minimum."""
    calls = {"moments": 0, "gram": 0}
    for name in calls:
        original = getattr(_Expansion, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(_Expansion, name, counted)
    x = np.linspace(0, 10, 200)
    y = 2.0 * np.sin(2.3 * x + 0.4) + np.random.default_rng(4).normal(0, 0.2, 200)
    fit = ParametricRegressor("sine", p0={"frequency": 2.0}, **CPU).fit(x, y[:, None])
    ref = curve_fit(np_sine, x, y, p0=[2.0, 2.3, 0.4], method="lm")[0]
    assert fit.converged_[0]
    assert calls["moments"] >= 2 and calls["gram"] >= 2
    np.testing.assert_allclose(fit.params_.iloc[0][["amplitude", "frequency"]], ref[:2],
                               rtol=1e-6)


def test_the_torch_arithmetic_of_other_devices_equals_numpys(monkeypatch):
    """On a GPU the per-row arithmetic runs in torch, on the CPU in NumPy: the torch
    branch, run here on the CPU, gives the same fit (repeats, a gappy grid, and rows
    evaluated alone at the end)."""
    import neuroml.nn._variable_projection as vp

    rng = np.random.default_rng(5)
    x = np.delete(np.repeat(np.linspace(0, 8, 60), 2), rng.choice(120, 10, replace=False))
    Y, _ = _planted(x, n=40, seed=6)
    ref = ParametricRegressor("sine", **CPU).fit(x, Y)
    monkeypatch.setattr(vp, "_namespace",
                        lambda device: (torch, lambda t: t, lambda a: a, torch.clone))
    got = ParametricRegressor("sine", **CPU).fit(x, Y)
    assert got.converged_.all() and got.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(got.param_values_, ref.param_values_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.loss_, ref.loss_, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"p0": {"frequency": 1e-3}}, {"tol": 1e-3}])
def test_the_last_step_leaves_exact_coefficients_and_loss(kwargs):
    """Slow sines (psi is flat near frequency 0, where the last Newton step is large for
    a small gain) and a loose tol: the returned amplitude and phase are the exact least
    squares ones at the returned frequency, and loss_ is the loss of the returned
    parameters (the step is evaluated wherever the local model would not be exact; a
    model step there was 0.5 % off). The tolerances allow for the rows fitted near
    frequency 0 with amplitudes of hundreds, a nearly singular Gram matrix."""
    rng = np.random.default_rng(1)
    x = np.linspace(0, 10, 200)
    f, p, a = rng.uniform(0.01, 0.3, 20), rng.uniform(-3, 3, 20), rng.uniform(0.5, 2, 20)
    Y = a * np.sin(np.outer(x, f) + p) + rng.normal(0, 0.3, (200, 20))
    fit = ParametricRegressor("sine", **CPU, **kwargs).fit(x, Y)
    for i, (amp, freq, phase) in enumerate(fit.param_values_):
        basis = np.c_[np.sin(freq * x), np.cos(freq * x)]
        coef = np.linalg.lstsq(basis, Y[:, i], rcond=None)[0]
        np.testing.assert_allclose(basis @ coef, np_sine(x, amp, freq, phase),
                                   atol=1e-5 * np.abs(Y[:, i]).max())
        np.testing.assert_allclose(fit.loss_[i], ((Y[:, i] - np_sine(x, amp, freq, phase))
                                                  ** 2).mean(), rtol=2e-5)


def test_the_fit_does_not_depend_on_the_data_scale():
    """The periodogram's guess is computed in single precision after each neuron is
    divided by its largest value: data of any scale within single precision's range
    gets the fit of the unscaled data, scaled."""
    x = np.linspace(0, 10, 200)
    Y, _ = _planted(x, n=10, seed=7)
    ref = ParametricRegressor("sine", **CPU).fit(x, Y)
    for scale in (1e-30, 1e-20, 1e20, 1e30):
        got = ParametricRegressor("sine", **CPU).fit(x, Y * scale)
        np.testing.assert_allclose(got.loss_ / scale**2, ref.loss_, rtol=1e-8)
        np.testing.assert_allclose(got.param_values_[:, 1:], ref.param_values_[:, 1:],
                                   rtol=1e-6)
