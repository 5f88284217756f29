"""VAE: the ELBO against an independent computation (scipy, torch.distributions), the
recorded loss terms, sampling, reproducibility and save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import neuroml
from neuroml import ParameterError
from neuroml.representation import VAE


def counts(n=800, n_units=12, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    rates = np.exp(0.8 + z @ rng.normal(scale=0.6, size=(2, n_units)))
    return rng.poisson(rates).astype(float)


def gaussian(n=800, n_features=10, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    return np.tanh(z @ rng.normal(size=(2, n_features))) + 0.2 * rng.normal(size=(n, n_features))


def reference_elbo(vae, X, n_draws=200, seed=1):
    """Monte-Carlo ELBO with torch.distributions' log densities and KL."""
    m = vae.module_
    dev = vae.device_  # the reference runs where the model lives (CPU or GPU)
    with torch.no_grad():
        x = torch.as_tensor(X, dtype=torch.float64, device=dev)
        mu, logvar = (t.double() for t in m.double().encode(x))
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        prior = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
        kl = torch.distributions.kl_divergence(q, prior).sum(-1).cpu().numpy()
        gen = torch.Generator().manual_seed(seed)
        loglik = np.zeros(len(X))
        for _ in range(n_draws):
            eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype).to(dev)
            z = mu + (0.5 * logvar).exp() * eps
            out = m.decoder(z)
            if vae.likelihood == "poisson":
                p = torch.distributions.Poisson(out.exp())
            else:
                p = torch.distributions.Normal(out, m.log_scale.exp())
            loglik += p.log_prob(x).sum(-1).cpu().numpy()
    m.float()
    return float(np.mean(loglik / n_draws - kl))


@pytest.mark.parametrize("likelihood, data", [("poisson", counts), ("gaussian", gaussian)])
def test_score_is_the_elbo(likelihood, data):
    X = data()
    vae = VAE(2, likelihood=likelihood, hidden_layer_sizes=(16,), max_epochs=15, lr=3e-3,
              random_state=0).fit(X)
    expected = reference_elbo(vae, X)
    assert vae.score(X, n_draws=64) == pytest.approx(expected, abs=0.005 * abs(expected) + 0.05)
    assert vae.score(X) == vae.score(X)  # fixed seed: the same data gives the same score


def test_history_keeps_recon_and_kl_and_the_elbo_improves():
    X = counts()
    vae = VAE(2, likelihood="poisson", beta=2.0, hidden_layer_sizes=(16,), max_epochs=15,
              lr=3e-3, random_state=0).fit(X)
    h = vae.history_
    assert list(h.columns) == ["epoch", "train_loss", "val_loss", "train_recon", "train_kl",
                               "val_recon", "val_kl", "seconds"]
    np.testing.assert_allclose(h["train_loss"], h["train_recon"] + 2.0 * h["train_kl"],
                               rtol=1e-5)
    np.testing.assert_allclose(h["val_loss"], h["val_recon"] + 2.0 * h["val_kl"], rtol=1e-5)
    elbo_train = -(h["train_recon"] + h["train_kl"]).to_numpy()
    elbo_val = -(h["val_recon"] + h["val_kl"]).to_numpy()
    assert elbo_train[-1] > elbo_train[0] + 1.0 and elbo_val[-1] > elbo_val[0] + 1.0
    assert (h["train_kl"] > 0).all()


def test_beta_zero_ignores_the_kl_term():
    X = gaussian(n=300)
    h = VAE(2, beta=0.0, hidden_layer_sizes=(8,), max_epochs=3, random_state=0).fit(X).history_
    np.testing.assert_allclose(h["train_loss"], h["train_recon"], rtol=1e-6)


def test_sample_and_inverse_transform():
    X = counts(n=1500)
    vae = VAE(2, likelihood="poisson", hidden_layer_sizes=(16,), max_epochs=60, lr=3e-3,
              random_state=0).fit(X)
    S = vae.sample(3000, random_state=0)
    assert S.shape == (3000, 12) and S.min() >= 0 and np.all(S == np.round(S))
    # the generative model reproduces each unit's mean count and the correlations
    np.testing.assert_allclose(S.mean(0), X.mean(0), rtol=0.2)
    assert S.mean() == pytest.approx(X.mean(), rel=0.05)
    upper = np.triu_indices(12, 1)
    assert np.corrcoef(np.corrcoef(S.T)[upper], np.corrcoef(X.T)[upper])[0, 1] > 0.95
    np.testing.assert_array_equal(S, vae.sample(3000, random_state=0))
    rates = vae.inverse_transform(vae.transform(X))
    assert rates.shape == X.shape and rates.min() > 0
    g = VAE(2, hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(gaussian(n=300))
    assert g.sample(5, random_state=1).shape == (5, 10)
    with pytest.raises(ParameterError, match="'n_samples' parameter of VAE.sample"):
        g.sample(0)


def test_poisson_likelihood_refuses_negative_data():
    with pytest.raises(ParameterError, match="likelihood='poisson'"):
        VAE(likelihood="poisson", max_epochs=1).fit(gaussian(n=50))


def test_transform_is_the_posterior_mean_and_keeps_coordinates():
    rng = np.random.default_rng(0)
    X = xr.DataArray(rng.poisson(3.0, size=(8, 12, 6)).astype(float),
                     dims=("trial", "time", "unit"),
                     coords={"trial": np.arange(8), "time": np.arange(12) * 0.05,
                             "unit": np.arange(6), "direction": ("trial", np.linspace(0, 6, 8))})
    vae = VAE(3, likelihood="poisson", hidden_layer_sizes=(8,), max_epochs=2,
              random_state=0).fit(X)
    Z = vae.transform(X)
    assert Z.dims == ("trial", "time", "latent")
    np.testing.assert_array_equal(Z["direction"].values, X["direction"].values)
    with torch.no_grad():
        x = torch.as_tensor(X.values.reshape(-1, 6), device=vae.device_)
        mu, _ = vae.module_.double().encode(x)
    vae.module_.float()
    np.testing.assert_allclose(Z.values.reshape(-1, 3), mu.cpu().numpy(), rtol=1e-10)


def test_same_random_state_same_numbers_and_save_load(tmp_path):
    X = counts(n=400)
    kw = dict(likelihood="poisson", hidden_layer_sizes=(8,), max_epochs=3, random_state=3)
    a, b = VAE(2, **kw).fit(X), VAE(2, **kw).fit(X)
    np.testing.assert_array_equal(a.history_[["train_loss", "val_loss"]],
                                  b.history_[["train_loss", "val_loss"]])
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    loaded = neuroml.load(a.save(tmp_path / "vae.pt"))
    np.testing.assert_array_equal(loaded.transform(X), a.transform(X))
    assert loaded.score(X) == a.score(X)
    np.testing.assert_array_equal(loaded.sample(10, random_state=0), a.sample(10, random_state=0))
    torch.testing.assert_close(loaded.module_.log_scale, a.module_.log_scale)
