"""Autoencoder: PCA's subspace when linear, scores against scikit-learn's metrics,
output types, reproducibility, save/load and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import xarray as xr
from sklearn.decomposition import PCA
from sklearn.metrics import mean_poisson_deviance, mean_squared_error

import neuroml
from neuroml import NotFittedError, ParameterError
from neuroml.representation import Autoencoder


def low_rank(n=1500, n_features=12, rank=3, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, rank)) * np.array([3.0, 2.0, 1.5])[:rank]
    A = rng.normal(size=(rank, n_features))
    return Z @ A + 2.0 + noise * rng.normal(size=(n, n_features))


def counts(n=600, n_units=10, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    rates = np.exp(0.5 + z @ rng.normal(scale=0.5, size=(2, n_units)))
    return rng.poisson(rates).astype(float)


def test_linear_autoencoder_spans_pca_subspace():
    X = low_rank()
    ae = Autoencoder(3, hidden_layer_sizes=(), activation="identity", max_epochs=150, lr=1e-2,
                     batch_size=128, validation_fraction=0.0, patience=None,
                     random_state=0).fit(X)
    pca = PCA(3).fit(X)
    W = ae.module_.decoder[-1].weight.detach().double().cpu().numpy()  # (n_features, n_latents)
    angles = np.degrees(scipy.linalg.subspace_angles(W, pca.components_.T))
    assert angles.max() < 2.0, angles
    # the encoder's latents are an affine map of PCA's scores
    Z = ae.transform(X)
    S = pca.transform(X)
    design = np.c_[Z, np.ones(len(Z))]
    resid = S - design @ np.linalg.lstsq(design, S, rcond=None)[0]
    assert 1 - resid.var() / S.var() > 0.999
    # and it explains as much variance as PCA (to a minibatch-noise tolerance)
    pca_mse = mean_squared_error(X, pca.inverse_transform(pca.transform(X)))
    assert -ae.score(X) >= pca_mse * (1 - 1e-6)
    assert (-ae.score(X) - pca_mse) / X.var(0).mean() < 1e-3


def test_score_is_negative_mse_and_poisson_deviance():
    X = low_rank(n=400)
    ae = Autoencoder(2, hidden_layer_sizes=(8,), max_epochs=3, random_state=0).fit(X)
    rec = ae.inverse_transform(ae.transform(X))
    assert ae.score(X) == pytest.approx(-mean_squared_error(X, rec), rel=1e-10)

    C = counts()
    ae = Autoencoder(2, hidden_layer_sizes=(8,), loss="poisson", max_epochs=3,
                     random_state=0).fit(C)
    rates = ae.inverse_transform(ae.transform(C))
    assert rates.min() > 0
    assert ae.score(C) == pytest.approx(-mean_poisson_deviance(C.ravel(), rates.ravel()),
                                        rel=1e-8)


def test_poisson_loss_trains_toward_the_rates():
    C = counts(n=2000)
    ae = Autoencoder(2, hidden_layer_sizes=(16,), loss="poisson", max_epochs=30, lr=3e-3,
                     random_state=0).fit(C)
    h = ae.history_
    assert h["train_loss"].iloc[-1] < 0.9 * h["train_loss"].iloc[0]
    # better than predicting each unit's mean rate
    mean_rates = np.broadcast_to(C.mean(0), C.shape)
    assert -ae.score(C) < mean_poisson_deviance(C.ravel(), mean_rates.ravel())


def test_poisson_loss_refuses_negative_data():
    with pytest.raises(ParameterError, match="Negative values in data passed to Autoencoder"):
        Autoencoder(loss="poisson", max_epochs=1).fit(low_rank(n=50) - 10)


def test_output_types_follow_input():
    X = low_rank(n=300).astype(np.float32)
    ae = Autoencoder(2, hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X)
    assert ae.transform(X).dtype == np.float32
    assert ae.transform(X.astype(np.float64)).dtype == np.float64
    Zt = ae.transform(torch.from_numpy(X))
    assert isinstance(Zt, torch.Tensor) and Zt.shape == (300, 2)
    assert Zt.device.type == ae.device_.type  # a tensor comes back on the estimator's device
    np.testing.assert_allclose(Zt.cpu().numpy(), ae.transform(X), rtol=1e-6, atol=1e-6)
    da = xr.DataArray(X, dims=("time", "unit"),
                      coords={"time": np.arange(300) * 0.01, "unit": [f"u{i}" for i in range(12)]})
    Z = ae.transform(da)
    assert Z.dims == ("time", "latent") and np.allclose(Z["time"], da["time"])
    assert list(ae.get_feature_names_out()) == ["autoencoder0", "autoencoder1"]


def test_trial_input_and_reconstruction_labels():
    rng = np.random.default_rng(0)
    X = xr.DataArray(rng.normal(size=(6, 10, 5)), dims=("trial", "time", "unit"),
                     coords={"trial": np.arange(6), "time": np.linspace(0, 0.9, 10),
                             "unit": [3, 5, 7, 9, 11], "condition": ("trial", list("abcabc"))})
    ae = Autoencoder(2, hidden_layer_sizes=(4,), max_epochs=2, random_state=0).fit(X)
    Z = ae.transform(X)
    assert Z.shape == (6, 10, 2) and list(Z["condition"].values) == list("abcabc")
    R = ae.inverse_transform(Z)
    assert R.dims == ("trial", "time", "unit")
    assert list(R["unit"].values) == [3, 5, 7, 9, 11]
    np.testing.assert_allclose(R.values.reshape(-1, 5),
                               ae.inverse_transform(Z.values.reshape(-1, 2)), rtol=1e-12)
    # a flat (sample, unit) array gives the same latents as the trial array
    np.testing.assert_allclose(ae.transform(X.values.reshape(-1, 5)),
                               Z.values.reshape(-1, 2), rtol=1e-12)


def test_same_random_state_same_numbers():
    X = low_rank(n=300)
    a = Autoencoder(2, hidden_layer_sizes=(8,), max_epochs=3, random_state=7).fit(X)
    b = Autoencoder(2, hidden_layer_sizes=(8,), max_epochs=3, random_state=7).fit(X)
    c = Autoencoder(2, hidden_layer_sizes=(8,), max_epochs=3, random_state=8).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.history_["train_loss"], b.history_["train_loss"])
    assert not np.allclose(a.transform(X), c.transform(X))


def test_save_load_round_trip(tmp_path):
    X = low_rank(n=300)
    ae = Autoencoder(2, hidden_layer_sizes=(8,), loss="mse", max_epochs=2, random_state=0).fit(X)
    path = ae.save(tmp_path / "ae.pt")
    loaded = neuroml.load(path)
    assert isinstance(loaded, Autoencoder) and loaded.get_params() == ae.get_params()
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))
    Z = ae.transform(X)
    np.testing.assert_array_equal(loaded.inverse_transform(Z), ae.inverse_transform(Z))
    np.testing.assert_array_equal(loaded.latent_std_, ae.latent_std_)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        Autoencoder().transform(np.zeros((3, 2)))


@pytest.mark.parametrize("params, match", [
    (dict(n_latents=0), "'n_latents' parameter of Autoencoder must be an int in the range"),
    (dict(hidden_layer_sizes=(8, 0)), "'hidden_layer_sizes' parameter of Autoencoder"),
    (dict(hidden_layer_sizes=8), "'hidden_layer_sizes' parameter of Autoencoder"),
    (dict(activation="sigmoid"), "'activation' parameter of Autoencoder must be a str among"),
    (dict(loss="l1"), "'loss' parameter of Autoencoder must be a str among"),
    (dict(lr=0.0), "'lr' parameter of Autoencoder"),
])
def test_parameter_errors(params, match):
    with pytest.raises(ParameterError, match=match):
        Autoencoder(**params).fit(low_rank(n=20))


def test_latents_must_match_n_latents():
    ae = Autoencoder(2, hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(low_rank(n=50))
    with pytest.raises(ParameterError, match=r"expects latents of shape \(n_samples, 2\)"):
        ae.inverse_transform(np.zeros((5, 3)))
