"""make_visual_population: layout, determinism, the image spectrum, the planted cells.

Checked against NumPy's FFT (spectral slope), the documented rate model recomputed from
the returned filters, Poisson statistics of the repeats, and scikit-learn's ridge
regression (simple cells are linearly predictable, complex cells are not).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from neuroml.datasets.visual import CONTRAST, GREY_LEVEL, make_visual_population
from neuroml.errors import ParameterError


@pytest.fixture(scope="module")
def pop():
    return make_visual_population(n_neurons=6, n_images=1200, image_size=16,
                                  n_test_images=60, n_repeats=20, random_state=3)


def test_layout_and_coordinates(pop):
    assert pop.images.dims == ("image", "y", "x") and pop.images.shape == (1200, 16, 16)
    assert pop.responses.dims == ("image", "neuron") and pop.responses.shape == (1200, 6)
    assert pop.test_images.shape == (60, 16, 16)
    assert pop.test_responses.dims == ("repeat", "image", "neuron")
    assert pop.test_responses.shape == (20, 60, 6)
    assert pop.test_rates.shape == (60, 6)
    assert pop.filters.dims == pop.quadrature_filters.dims == ("neuron", "y", "x")
    np.testing.assert_array_equal(pop.test_images["image"].values, np.arange(1200, 1260))
    assert pop.cell_type.tolist() == ["simple"] * 3 + ["complex"] * 3
    np.testing.assert_array_equal(pop.responses["cell_type"].values, pop.cell_type)
    assert pop.images.dtype == np.float32
    assert np.all(pop.responses.values == np.round(pop.responses.values))  # counts
    json.dumps(pop.ground_truth)
    assert "6 neurons (3 simple, 3 complex)" in repr(pop)
    n_complex = make_visual_population(n_neurons=5, n_images=5, fraction_complex=0.2,
                                       random_state=0).cell_type
    assert n_complex.tolist() == ["simple"] * 4 + ["complex"]


def test_same_seed_same_data():
    a = make_visual_population(n_neurons=3, n_images=20, image_size=8, random_state=5)
    b = make_visual_population(n_neurons=3, n_images=20, image_size=8, random_state=5)
    c = make_visual_population(n_neurons=3, n_images=20, image_size=8, random_state=6)
    for field in ("images", "responses", "test_responses", "filters"):
        assert getattr(a, field).equals(getattr(b, field))
    assert not a.images.equals(c.images)
    assert json.dumps(a.ground_truth) == json.dumps(b.ground_truth)


def test_images_have_a_one_over_f_spectrum(pop):
    imgs = np.concatenate([pop.images.values, pop.test_images.values])
    c = (imgs - GREY_LEVEL) / CONTRAST
    assert abs(c.mean()) < 1e-3 and abs(c.std() - 1) < 1e-3
    assert c.mean(axis=(1, 2)).std() > 0.1  # mean luminance varies between images
    power = (np.abs(np.fft.fft2(c)) ** 2).mean(axis=0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(16), np.fft.fftfreq(16), indexing="ij"))
    keep = f > 0
    slope = np.polyfit(np.log(f[keep]), np.log(power[keep]), 1)[0]
    assert slope == pytest.approx(-2.0, abs=0.1)  # amplitude 1/f -> power 1/f^2
    white = make_visual_population(n_neurons=1, n_images=400, image_size=16,
                                   spectral_exponent=0.0, random_state=0).images.values
    pw = (np.abs(np.fft.fft2(white - white.mean())) ** 2).mean(axis=0)
    assert np.polyfit(np.log(f[keep]), np.log(pw[keep]), 1)[0] == pytest.approx(0, abs=0.1)


def test_filters_and_rates_follow_the_documented_model(pop):
    gt = pop.ground_truth
    c = (pop.images.values.astype(np.float64) - GREY_LEVEL) / CONTRAST
    flat = c.reshape(len(c), -1)
    g = pop.filters.values.reshape(6, -1)
    h = pop.quadrature_filters.values.reshape(6, -1)
    np.testing.assert_allclose((flat @ g.T).std(axis=0), 1, rtol=1e-4)  # unit drive s.d.
    np.testing.assert_allclose((flat @ h.T).std(axis=0), 1, rtol=1e-4)
    np.testing.assert_allclose(g.sum(axis=1), 0, atol=1e-8)  # blind to uniform luminance
    assert np.abs(np.sum(g * h, axis=1) / np.sum(g * g, axis=1)).max() < 0.1  # quadrature
    # each filter's energy is centred on the planted (x0, y0)
    yy, xx = np.mgrid[0:16, 0:16]
    w = pop.filters.values ** 2
    cx, cy = (w * xx).sum((1, 2)) / w.sum((1, 2)), (w * yy).sum((1, 2)) / w.sum((1, 2))
    np.testing.assert_allclose(cx, gt["gabor"]["x0"], atol=0.7)
    np.testing.assert_allclose(cy, gt["gabor"]["y0"], atol=0.7)
    # the test rates recomputed from the returned filters and the documented formulas
    ct = (pop.test_images.values.astype(np.float64) - GREY_LEVEL) / CONTRAST
    dg, dh = ct.reshape(60, -1) @ g.T, ct.reshape(60, -1) @ h.T
    simple = gt["baseline"] + gt["gain"] * np.maximum(dg, 0)
    energy = gt["baseline"] + gt["gain"] * (dg**2 + dh**2) / 2
    expected = np.where(pop.cell_type == "complex", energy, simple)
    np.testing.assert_allclose(pop.test_rates.values, expected, rtol=1e-4)


def test_repeats_are_poisson_around_the_rates(pop):
    r = pop.test_responses.values.astype(np.float64)
    rate = pop.test_rates.values
    mean, var = r.mean(axis=0), r.var(axis=0, ddof=1)
    # 1,200 pairs of 20 repeats: the mean count and the Fano factor
    assert np.mean(mean - rate) == pytest.approx(0, abs=0.05)
    assert var.sum() / mean.sum() == pytest.approx(1.0, abs=0.08)


def test_simple_cells_are_linear_and_complex_cells_are_not(pop):
    X = pop.images.values.reshape(1200, -1)
    model = RidgeCV(alphas=np.logspace(1, 9, 17)).fit(X, pop.responses.values)
    pred = model.predict(pop.test_images.values.reshape(60, -1))
    r = np.array([np.corrcoef(pred[:, i], pop.test_rates.values[:, i])[0, 1] for i in range(6)])
    assert r[:3].min() > 0.5, r
    assert r[3:].max() < 0.25, r  # no linear prediction (measured -0.37 to 0.05)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_neurons": 0}, "'n_neurons' parameter"),
    ({"n_images": 0}, "'n_images' parameter"),
    ({"image_size": 4}, "'image_size' parameter"),
    ({"fraction_complex": 1.5}, "'fraction_complex' parameter"),
    ({"n_repeats": 1}, "'n_repeats' parameter"),
    ({"gain": 0.0}, "'gain' parameter"),
    ({"gain": np.inf}, "'gain' parameter .* finite"),
    ({"spectral_exponent": -1.0}, "'spectral_exponent' parameter"),
    ({"random_state": -1}, "'random_state' parameter"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        make_visual_population(**kwargs)
