"""Regressing a neural signal on model RPEs (neuroml.rl.rpe_regression)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_score

from neuroml.errors import ParameterError
from neuroml.rl.rpe_regression import rpe_regression


def planted(n=300, slope=1.5, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    rpe = rng.normal(size=n)
    return rpe, 2.0 + slope * rpe + noise * rng.normal(size=n)


def test_planted_linear_relation_is_recovered():
    rpe, y = planted()
    res = rpe_regression(y, rpe, n_permutations=199, random_state=0, device="cpu")
    assert res.shape == (1, 6) and res.index.name == "signal"
    row = res.iloc[0]
    fit = stats.linregress(rpe, y)
    assert row["slope"] == pytest.approx(fit.slope) and row["intercept"] == pytest.approx(fit.intercept)
    assert row["r"] == pytest.approx(fit.rvalue)
    # population R^2 = 1.5^2 / (1.5^2 + 1) = 0.69; cross-validated, as scikit-learn computes it
    cv = cross_val_score(LinearRegression(), rpe[:, None], y, cv=KFold(5)).mean()
    assert row["r2"] == pytest.approx(cv, abs=1e-8)
    assert abs(row["r2"] - 2.25 / 3.25) < 0.06
    assert row["p_value"] == pytest.approx(1 / 200) and row["n_trials"] == 300


def test_no_relation_gives_a_large_p_value():
    rng = np.random.default_rng(1)
    rpe, y = rng.normal(size=200), rng.normal(size=200)
    row = rpe_regression(y, rpe, n_permutations=199, random_state=0, device="cpu").iloc[0]
    assert row["p_value"] > 0.1 and row["r2"] < 0.02


def test_time_resolved_epochs_keep_coordinates():
    rng = np.random.default_rng(2)
    n = 150
    rpe = rng.normal(size=n)
    counts = rng.poisson(3.0, size=(n, 5, 2)).astype(float)
    counts[:, 3:, 1] += 2.0 * rpe[:, None]  # unit "b" follows the RPE from bin 3 on
    da = xr.DataArray(counts, dims=("trial", "time", "unit"),
                      coords={"trial": np.arange(n) + 100, "time": [0.05, 0.15, 0.25, 0.35, 0.45],
                              "unit": ["a", "b"], "rpe": ("trial", rpe)},
                      name="spike_counts")
    res = rpe_regression(da, "rpe", n_permutations=49, random_state=0, device="cpu")
    assert res.index.names == ["time", "unit"] and len(res) == 10
    follows = res.xs("b", level="unit").loc[[0.35, 0.45]]
    np.testing.assert_allclose(follows["p_value"], 0.02)
    assert (follows["r2"] > 0.4).all()
    assert (res.xs("a", level="unit")["p_value"] > 0.02).all()
    # (trial, time): indexed by time; a Series indexed by trial label is aligned by label,
    # whatever its order
    shuffled = pd.Series(rpe, index=da["trial"].values).sample(frac=1.0, random_state=0)
    two_d = rpe_regression(da.sel(unit="b"), shuffled, n_permutations=49, random_state=0,
                           device="cpu")
    assert two_d.index.name == "time" and len(two_d) == 5
    pd.testing.assert_frame_equal(two_d, res.xs("b", level="unit"), check_names=False)


def test_nan_trials_are_left_out_per_target():
    rpe, y = planted(n=120, seed=3)
    rpe[:10] = np.nan  # e.g. no response
    sig = np.c_[y, y]
    sig[10:20, 1] = np.nan  # second bin outside the signal on 10 trials
    res = rpe_regression(sig, rpe, n_permutations=19, random_state=0, device="cpu")
    assert res["n_trials"].tolist() == [110, 100]
    ok = ~np.isnan(rpe)
    assert res["slope"].iloc[0] == pytest.approx(stats.linregress(rpe[ok], y[ok]).slope)


def test_tensor_input_and_errors():
    rpe, y = planted(n=60, seed=4)
    res = rpe_regression(torch.as_tensor(y), torch.as_tensor(rpe), n_permutations=9,
                         random_state=0, device="cpu")
    assert res["slope"].iloc[0] == pytest.approx(stats.linregress(rpe, y).slope)
    with pytest.raises(ParameterError, match="one value per trial of the signal \\(60\\)"):
        rpe_regression(y, rpe[:-1], device="cpu")
    with pytest.raises(ParameterError, match="constant"):
        rpe_regression(y, np.ones(60), n_permutations=9, device="cpu")
    with pytest.raises(ParameterError, match="at least 10 are needed"):
        rpe_regression(y[:8], rpe[:8], device="cpu")
    with pytest.raises(ParameterError, match="'signal' parameter"):
        rpe_regression(np.zeros((60, 2, 2, 2)), rpe, device="cpu")
    with pytest.raises(ParameterError, match="'n_permutations' parameter"):
        rpe_regression(y, rpe, n_permutations=0, device="cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    rpe, y = planted(n=200, seed=5)
    sig = np.c_[y, y + np.random.default_rng(6).normal(size=200)]
    cpu = rpe_regression(sig, rpe, n_permutations=99, random_state=0, device="cpu")
    gpu = rpe_regression(sig, rpe, n_permutations=99, random_state=0, device="cuda")
    pd.testing.assert_frame_equal(gpu, cpu, rtol=1e-8)
