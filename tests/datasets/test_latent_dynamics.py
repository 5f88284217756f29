"""make_latent_dynamics: layout, determinism, padding, and the planted model recovered.

Checked with tools we did not write: scikit-learn's Poisson GLM and least squares in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import PoissonRegressor

from neuroml.datasets.latent_dynamics import make_latent_dynamics
from neuroml.errors import ParameterError


def test_layout_and_coordinates():
    counts, behaviour, latents = make_latent_dynamics(
        n_units=7, n_trials=5, n_times=30, dt=0.05, return_latents=True, random_state=0)
    assert counts.dims == ("trial", "time", "unit") and counts.shape == (5, 30, 7)
    assert behaviour.dims == ("trial", "time", "channel") and behaviour.shape == (5, 30, 2)
    assert latents.dims == ("trial", "time", "latent")
    np.testing.assert_allclose(counts.time.values, (np.arange(30) + 0.5) * 0.05)
    np.testing.assert_array_equal(behaviour.time.values, counts.time.values)
    assert behaviour.channel.values.tolist() == ["abs_x", "abs_v"]
    assert counts.length.values.tolist() == [30] * 5
    assert ((counts.frequency >= 1.0) & (counts.frequency <= 2.0)).all()
    values = counts.values
    assert (values >= 0).all() and np.array_equal(values, np.round(values))
    # behaviour is the rectified latent state
    np.testing.assert_array_equal(behaviour.values, np.abs(latents.values))


def test_same_seed_same_data():
    a = make_latent_dynamics(n_units=4, n_trials=3, n_times=20, random_state=3)
    b = make_latent_dynamics(n_units=4, n_trials=3, n_times=20, random_state=3)
    c = make_latent_dynamics(n_units=4, n_trials=3, n_times=20, random_state=4)
    for x, y in zip(a, b):
        assert x.identical(y)
    assert not np.array_equal(a[0].values, c[0].values)


def test_variable_lengths_are_nan_padded():
    counts, behaviour = make_latent_dynamics(n_units=3, n_trials=40, n_times=25, min_length=10,
                                             random_state=1)
    lengths = counts.length.values
    assert lengths.min() >= 10 and lengths.max() <= 25 and len(set(lengths)) > 3
    pad = np.arange(25)[None] >= lengths[:, None]
    assert np.isnan(counts.values[pad]).all() and not np.isnan(counts.values[~pad]).any()
    assert np.array_equal(np.isnan(behaviour.values[..., 0]), pad)


def test_harmonic_latent_oscillates_at_the_trial_frequency():
    # mu=0, noise=0: x(t) = A cos(2 pi f t + phi) with the trial's frequency f
    _, _, latents = make_latent_dynamics(n_units=2, n_trials=6, n_times=150, dt=0.01, mu=0.0,
                                         noise=0.0, return_latents=True, random_state=2)
    t = (np.arange(150) + 1) * 0.01  # sampled at the end of each bin
    for i, f in enumerate(latents.frequency.values):
        x = latents.values[i, :, 0]
        basis = np.stack([np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)], 1)
        coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
        resid = x - basis @ coef
        assert resid.var() < 1e-3 * x.var()


def test_poisson_glm_recovers_the_planted_loadings():
    counts, _, latents = make_latent_dynamics(n_units=4, n_trials=300, n_times=100,
                                              return_latents=True, random_state=5)
    S = latents.values.reshape(-1, 2)
    dt = counts.attrs["dt"]
    for u in range(4):
        glm = PoissonRegressor(alpha=0.0, max_iter=300).fit(S, counts.values[..., u].ravel())
        planted = np.array([counts.loading_x.values[u], counts.loading_v.values[u]])
        np.testing.assert_allclose(glm.coef_, planted, atol=0.05)
        m = counts.attrs["modulation"]
        expected = np.log(counts.baseline_rate.values[u] * dt) - m**2 / 2
        assert glm.intercept_ == pytest.approx(expected, abs=0.05)
    assert np.allclose(np.hypot(counts.loading_x, counts.loading_v), 0.8)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_times": 1}, "'n_times' parameter"),
    ({"frequency": (2.0, 1.0)}, "'frequency' parameter.*0 < low <= high"),
    ({"frequency": 3.0}, "'frequency' parameter"),
    ({"min_length": 101}, "'min_length' parameter"),
    ({"modulation": -1.0}, "'modulation' parameter"),
    ({"return_latents": 1}, "'return_latents' parameter"),
    ({"random_state": -1}, "'random_state' parameter"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        make_latent_dynamics(**kwargs)
