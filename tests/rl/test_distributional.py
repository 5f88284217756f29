"""Distributional TD: exact expectiles/quantiles, and cells that converge to them."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import neuroml
from neuroml.errors import ParameterError
from neuroml.rl.distributional import DistributionalTD, default_taus, expectiles, quantiles

# Reward magnitudes (uL) and probabilities of the variable-reward task of Dabney et al.
# 2020 (the probabilities sum to 1.001; they are normalised).
MAGNITUDES = np.array([0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0])
PROBABILITIES = np.array([0.066, 0.091, 0.149, 0.155, 0.312, 0.151, 0.077])
P = PROBABILITIES / PROBABILITIES.sum()
TAUS = np.round(np.arange(1, 10) / 10, 2)  # 0.1 .. 0.9


def _samples(n=100_000, seed=0):
    return np.random.default_rng(seed).choice(MAGNITUDES, size=n, p=P)


# ---------------------------------------------------------------------- exact targets
def test_exact_expectiles():
    e = expectiles(MAGNITUDES, PROBABILITIES, 0.5)
    assert float(e) == pytest.approx(float(P @ MAGNITUDES), rel=1e-12)  # the mean: 5.2050
    assert float(e) == pytest.approx(5.208, rel=1e-3)  # the value quoted in issue 11

    def g(x, tau):  # tau E[(X - x)+] - (1 - tau) E[(x - X)+]
        return tau * P @ np.maximum(MAGNITUDES - x, 0) - (1 - tau) * P @ np.maximum(x - MAGNITUDES, 0)

    taus = np.linspace(0.01, 0.99, 50)
    roots = [brentq(g, MAGNITUDES[0], MAGNITUDES[-1], args=(t,), xtol=1e-14) for t in taus]
    np.testing.assert_allclose(expectiles(MAGNITUDES, PROBABILITIES, taus), roots, rtol=1e-10)
    np.testing.assert_allclose(expectiles(MAGNITUDES, PROBABILITIES, [0.0, 1.0]), [0.1, 20.0])


def test_expectiles_of_samples_repeats_and_order():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)

    def g(e, tau):
        return tau * np.maximum(x - e, 0).mean() - (1 - tau) * np.maximum(e - x, 0).mean()

    for tau in (0.05, 0.3, 0.77):
        assert float(expectiles(x, None, tau)) == pytest.approx(
            brentq(g, x.min(), x.max(), args=(tau,), xtol=1e-14), rel=1e-10)
    # repeated atoms and unsorted input give the same answer as merged, sorted ones
    np.testing.assert_allclose(expectiles([2.0, 0.0, 2.0, 1.0], [0.25, 0.25, 0.25, 0.25], TAUS),
                               expectiles([0.0, 1.0, 2.0], [0.25, 0.25, 0.5], TAUS), rtol=1e-12)
    assert float(expectiles([3.0], None, 0.3)) == 3.0


def test_exact_quantiles():
    np.testing.assert_array_equal(
        quantiles(MAGNITUDES, PROBABILITIES, TAUS), [0.3, 1.2, 1.2, 2.5, 5, 5, 5, 10, 10])
    x = np.random.default_rng(1).integers(0, 10, size=333).astype(float)
    levels = np.linspace(0.01, 0.99, 40)
    np.testing.assert_array_equal(quantiles(x, None, levels),
                                  np.quantile(x, levels, method="inverted_cdf"))


# ---------------------------------------------------------------------- learning
def test_expectile_cells_learn_the_expectiles():
    # alpha = 0.001 over 100,000 sampled rewards: every cell within 5 % of the exact
    # expectile (tau 0.1..0.9). Measured: at most 2.4 % here (seeds 0-4: 0.5-3.7 %).
    rewards = _samples()
    start = time.perf_counter()
    model = DistributionalTD(taus=TAUS, alpha=0.001, device="cpu").fit(rewards)
    seconds = time.perf_counter() - start
    exact = expectiles(MAGNITUDES, PROBABILITIES, TAUS)
    np.testing.assert_allclose(model.values_.values, exact, rtol=0.05)
    np.testing.assert_array_equal(model.values_.tau, TAUS)
    assert model.history_.dims == ("update", "cell") and model.history_.sizes["update"] == 1001
    assert model.history_.update.values[-1] == 100_000 and model.n_updates_ == 100_000
    np.testing.assert_array_equal(model.history_[-1], model.values_)
    print(f"100,000 rewards x {TAUS.size} expectile cells: {seconds:.2f} s")
    assert seconds < 60  # about 2-4 s on two shared CPU cores


def _excursion(tau, below, above):
    """Mean distance a quantile cell wanders from its atom on the side where the CDF
    is ``below``/``above`` (diffusion approximation of the +alpha tau / -alpha (1-tau)
    walk, drift alpha (tau - F)): variance / (2 |drift|), in units of alpha."""
    out = []
    for F in (below, above):
        drift = abs(tau - F)
        var = tau**2 * (1 - F) + (1 - tau) ** 2 * F - drift**2
        out.append(var / (2 * drift))
    return max(out)


def test_quantile_cells_converge_to_the_quantiles():
    # The sign rule moves a cell by at most alpha per reward and drifts at alpha (tau - F)
    # towards its quantile: with alpha = 0.001 the tau = 0.95 cell would need ~400,000
    # rewards to climb from 0 to 20, so alpha = 0.01 here. Near its atom q the cell does
    # a random walk; its mean offset is at most the diffusion estimate E (largest when tau
    # is near F(q), e.g. tau 0.3 vs F(1.2) = 0.306: E = 18 alpha). Tolerance: 2 E + 2 alpha
    # on the value averaged over the last 20,000 rewards.
    alpha, taus = 0.01, default_taus(19)
    model = DistributionalTD(taus=19, kind="quantile", alpha=alpha, device="cpu").fit(_samples())
    exact = quantiles(MAGNITUDES, PROBABILITIES, taus)
    late = model.history_.sel(update=slice(80_000, None)).mean("update").values
    cdf = np.cumsum(P)
    for i, tau in enumerate(taus):
        k = int(np.searchsorted(MAGNITUDES, exact[i]))
        tol = 2 * alpha * _excursion(tau, cdf[k - 1] if k else 0.0, cdf[k]) + 2 * alpha
        assert abs(late[i] - exact[i]) <= tol, (tau, late[i], exact[i], tol)
    # every cell ends nearer its own quantile than any other atom
    nearest = MAGNITUDES[np.abs(model.values_.values[:, None] - MAGNITUDES).argmin(axis=1)]
    np.testing.assert_array_equal(nearest, exact)


def test_epochs_shuffle_and_random_state():
    rewards = np.random.default_rng(3).choice([0.0, 1.0, 3.0], size=200)
    a = DistributionalTD(taus=4, n_epochs=5, shuffle=True, random_state=7, device="cpu")
    b = DistributionalTD(taus=4, n_epochs=5, shuffle=True, random_state=7, device="cpu")
    np.testing.assert_array_equal(a.fit(rewards).values_, b.fit(rewards).values_)
    assert a.n_updates_ == 1000
    c = DistributionalTD(taus=4, n_epochs=5, shuffle=True, random_state=8, device="cpu")
    assert not np.array_equal(c.fit(rewards).values_, a.values_)
    ordered = DistributionalTD(taus=4, n_epochs=2, device="cpu").fit(rewards)
    twice = DistributionalTD(taus=4, device="cpu").fit(np.tile(rewards, 2))
    np.testing.assert_array_equal(ordered.values_, twice.values_)


def test_initial_values_and_save_load(tmp_path):
    model = DistributionalTD(taus=[0.25, 0.75], v0=[1.0, 2.0], alpha=0.1, device="cpu")
    model.fit([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(model.history_[0], [1.0, 2.0])
    loaded = neuroml.load(model.save(tmp_path / "dtd.pt"))
    assert loaded.values_.identical(model.values_) and loaded.history_.identical(model.history_)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    rewards = _samples(5000)
    cpu = DistributionalTD(alpha=0.01, device="cpu").fit(rewards)
    gpu = DistributionalTD(alpha=0.01, device="cuda").fit(rewards)
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.values_.values, cpu.values_.values, rtol=1e-9)


@pytest.mark.parametrize("model, rewards, match", [
    (DistributionalTD(taus=[0.0, 0.5]), [1.0, 2.0], r"open interval \(0, 1\)"),
    (DistributionalTD(taus=[0.5, 1.2]), [1.0, 2.0], "'taus' parameter"),
    (DistributionalTD(taus=0), [1.0, 2.0], "'taus' parameter"),
    (DistributionalTD(kind="mean"), [1.0, 2.0], "'kind' parameter"),
    (DistributionalTD(alpha=0.0), [1.0, 2.0], "'alpha' parameter"),
    (DistributionalTD(v0=[1.0, 2.0]), [1.0, 2.0], "'v0' parameter"),
    (DistributionalTD(), [1.0, np.nan, 2.0], "NaN or infinity at 1 of 3 samples"),
    (DistributionalTD(), np.ones((3, 2)), "1-D sequence"),
    (DistributionalTD(), [], "non-empty"),
])
def test_bad_input(model, rewards, match):
    with pytest.raises(ParameterError, match=match):
        model.set_params(device="cpu").fit(rewards)


@pytest.mark.parametrize("call, match", [
    (lambda: expectiles([1.0, 2.0], [0.5, 0.5], 1.5), r"\[0, 1\]"),
    (lambda: expectiles([1.0, 2.0], [0.5], 0.5), "one entry per value"),
    (lambda: quantiles([1.0, np.nan], None, 0.5), "finite"),
    (lambda: quantiles([1.0, 2.0], [-0.5, 1.5], 0.5), "non-negative"),
])
def test_bad_input_exact(call, match):
    with pytest.raises(ParameterError, match=match):
        call()
