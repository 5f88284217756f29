"""The representation estimators on a CUDA GPU (skipped without one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuroml
from neuroml.representation import VAE, Autoencoder, ContrastiveEmbedding

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

MAKERS = {
    "autoencoder": lambda: Autoencoder(2, hidden_layer_sizes=(16,), max_epochs=3, device="cuda",
                                       random_state=0),
    "vae-poisson": lambda: VAE(2, likelihood="poisson", hidden_layer_sizes=(16,), max_epochs=3,
                               device="cuda", random_state=0),
    "contrastive-time": lambda: ContrastiveEmbedding(3, max_epochs=3, device="cuda",
                                                     random_state=0),
}


def data():
    rng = np.random.default_rng(0)
    return rng.poisson(3.0, size=(20, 25, 12)).astype(np.float32)  # (trial, time, unit)


@pytest.mark.parametrize("name", list(MAKERS))
def test_fit_transform_and_output_types_on_gpu(name, tmp_path):
    X = data()
    est = MAKERS[name]().fit(X)
    assert est.device_.type == "cuda"
    assert next(est.module_.parameters()).is_cuda
    Z = est.transform(X)
    assert isinstance(Z, np.ndarray) and Z.dtype == np.float32
    Zt = est.transform(torch.from_numpy(X).cuda())
    assert Zt.is_cuda
    np.testing.assert_allclose(Zt.cpu().numpy(), Z, rtol=1e-5, atol=1e-5)
    # a model trained on the GPU loads on the CPU
    loaded = neuroml.load(est.save(tmp_path / f"{name}.pt"), device="cpu")
    assert loaded.device_.type == "cpu"
    np.testing.assert_allclose(loaded.transform(X), Z, rtol=1e-4, atol=1e-4)


def test_same_random_state_same_numbers_on_gpu():
    X = data()
    a = MAKERS["vae-poisson"]().fit(X)
    b = MAKERS["vae-poisson"]().fit(X)
    np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=1e-5, atol=1e-6)
    assert a.score(X) == pytest.approx(b.score(X), rel=1e-5)
    assert a.sample(4, random_state=0).shape == (4, 12)


def test_behavior_positives_on_gpu():
    X = data()
    y = np.arange(20) % 4
    est = ContrastiveEmbedding(3, positive="behavior", max_epochs=3, device="cuda",
                               random_state=0).fit(X, y)
    assert est.behavior_kind_ == "discrete"
    cont = ContrastiveEmbedding(3, positive="behavior", max_epochs=2, device="cuda",
                                random_state=0).fit(X, np.linspace(0, 1, 20))
    assert cont.behavior_kind_ == "continuous"
    np.testing.assert_allclose(np.linalg.norm(est.transform(X), axis=-1), 1.0, rtol=1e-5)
