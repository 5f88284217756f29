"""consistency_score against CEBRA's definition computed with scikit-learn, and
latent_traversal against the decoder it traverses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import LinearRegression

from neuroml import NotFittedError, ParameterError
from neuroml.representation import (
    VAE,
    Autoencoder,
    ContrastiveEmbedding,
    consistency_score,
    latent_traversal,
)


def cebra_pairwise(embeddings):
    """CEBRA's between-runs consistency: R^2 of LinearRegression i -> j for i != j."""
    n = len(embeddings)
    out = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            if i != j:
                lin = LinearRegression().fit(embeddings[i], embeddings[j])
                out[i, j] = lin.score(embeddings[i], embeddings[j])
    return out


def test_consistency_between_runs_is_cebras_r2():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3))
    b = np.tanh(a @ rng.normal(size=(3, 3))) + 0.3 * rng.normal(size=(400, 3))
    c = rng.normal(size=(400, 5))
    expected = cebra_pairwise([a, b, c])
    got = consistency_score([a, b, c], pairwise=True)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert np.isnan(np.diag(got)).all()
    assert consistency_score([a, b]) == pytest.approx((expected[0, 1] + expected[1, 0]) / 2)
    # an invertible linear map is perfectly consistent; independent noise is not
    assert consistency_score([a, a @ rng.normal(size=(3, 3)) + 4.0]) == pytest.approx(1.0)
    assert consistency_score([a, rng.normal(size=(400, 3))]) < 0.05


def test_consistency_accepts_trials_dataarrays_and_tensors():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(10, 20, 3))
    b = a @ rng.normal(size=(3, 3)) + 0.1 * rng.normal(size=(10, 20, 3))
    da = xr.DataArray(b, dims=("trial", "time", "latent"))
    expected = cebra_pairwise([a.reshape(-1, 3), b.reshape(-1, 3)])
    assert consistency_score([torch.as_tensor(a), da]) == pytest.approx(np.nanmean(expected))


def test_consistency_between_datasets_aligns_on_labels():
    rng = np.random.default_rng(2)
    # two "sessions" of different lengths that embed the same label geometry
    angles = {lab: 2 * np.pi * lab / 6 for lab in range(6)}
    def session(n, rotation):
        lab = rng.integers(0, 6, n)
        pts = np.stack([np.cos([angles[v] for v in lab]), np.sin([angles[v] for v in lab]),
                        np.zeros(n)], 1) @ rotation
        return pts + 0.05 * rng.normal(size=pts.shape), lab
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    (e1, l1), (e2, l2) = session(300, np.eye(3)), session(500, q)
    got = consistency_score([e1, e2], labels=[l1, l2], pairwise=True)
    # by hand: unit-norm mean per shared label, then CEBRA's R^2
    means = [np.stack([e[lab == v].mean(0) for v in range(6)]) for e, lab in ((e1, l1), (e2, l2))]
    means = [m / np.linalg.norm(m, axis=1, keepdims=True) for m in means]
    np.testing.assert_allclose(got, cebra_pairwise(means), rtol=1e-10)
    assert np.nanmin(got) > 0.9  # the geometry is shared (up to a rotation)
    # continuous labels: binned
    y1, y2 = rng.uniform(0, 1, 300), rng.uniform(0, 1, 500)
    circle = lambda y: np.stack([np.cos(3 * y), np.sin(3 * y), y], 1)  # noqa: E731
    assert consistency_score([circle(y1), circle(y2) @ q], labels=[y1, y2], n_bins=20) > 0.99


@pytest.mark.parametrize("args, kwargs, match", [
    (([np.zeros((5, 2))],), {}, "at least 2 embeddings"),
    ((np.zeros((5, 2)),), {}, "takes a list of embeddings"),
    (([np.zeros((5, 2)), np.zeros((6, 2))],), {}, "same samples"),
    (([np.zeros((5, 2)), np.zeros(5)],), {}, "Embedding 1"),
    (([np.zeros((5, 2))] * 2,), {"labels": [np.zeros(5)]}, "2 embeddings but 1 label"),
    (([np.zeros((5, 2))] * 2,), {"labels": [np.zeros(4), np.zeros(5)]}, "labels\\[0\\] has 4"),
])
def test_consistency_errors(args, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        consistency_score(*args, **kwargs)


def test_traversal_of_a_linear_decoder_is_linear():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 6))
    ae = Autoencoder(2, hidden_layer_sizes=(), activation="identity", max_epochs=3,
                     random_state=0).fit(X)
    values = np.array([-2.0, -0.5, 0.0, 1.0])
    tr = latent_traversal(ae, dims=[1, 0], values=values)
    assert tr.dims == ("dim", "value", "feature") and tr.shape == (2, 4, 6)
    assert tr["dim"].values.tolist() == [1, 0]
    W = ae.module_.decoder[-1].weight.detach().double().cpu().numpy()  # (features, latents)
    base = ae.inverse_transform(ae.latent_mean_[None])[0]
    for i, d in enumerate([1, 0]):
        expected = base + values[:, None] * ae.latent_std_[d] * W[:, d]
        np.testing.assert_allclose(tr.values[i], expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(tr["latent_value"].values[i],
                                   ae.latent_mean_[d] + values * ae.latent_std_[d])


def test_traversal_keeps_feature_labels_and_decodes_rates():
    rng = np.random.default_rng(0)
    X = xr.DataArray(rng.poisson(2.0, size=(200, 5)).astype(float), dims=("time", "unit"),
                     coords={"unit": [10, 11, 12, 13, 14]})
    vae = VAE(2, likelihood="poisson", hidden_layer_sizes=(4,), max_epochs=2,
              random_state=0).fit(X)
    tr = latent_traversal(vae, dims=0, base=np.zeros(2))
    assert tr.dims == ("dim", "value", "unit") and tr["unit"].values.tolist() == [10, 11, 12, 13, 14]
    assert tr.shape == (1, 9, 5) and float(tr.min()) > 0
    z = np.zeros((9, 2))
    z[:, 0] = np.linspace(-2, 2, 9) * vae.latent_std_[0]
    np.testing.assert_allclose(tr.values[0], vae.inverse_transform(z), rtol=1e-12)


def test_traversal_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    ae = Autoencoder(2, hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(X)
    with pytest.raises(ParameterError, match="'dims' parameter of latent_traversal"):
        latent_traversal(ae, dims=[2])
    with pytest.raises(ParameterError, match="'values' parameter"):
        latent_traversal(ae, values=[[1, 2]])
    with pytest.raises(ParameterError, match="'base' parameter"):
        latent_traversal(ae, base=np.zeros(3))
    with pytest.raises(NotFittedError):
        latent_traversal(Autoencoder())
    emb = ContrastiveEmbedding(3, window=1, max_epochs=1, random_state=0).fit(X)
    with pytest.raises(ParameterError, match="needs an estimator with a decoder"):
        latent_traversal(emb)
