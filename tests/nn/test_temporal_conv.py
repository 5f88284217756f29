"""ConvDecoder: causality, padding, and decoding of nonlinear latent dynamics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

import neuroml
from neuroml.datasets.latent_dynamics import make_latent_dynamics
from neuroml.errors import ParameterError
from neuroml.nn.temporal_conv import ConvDecoder

TINY = dict(channels=8, n_layers=3, max_epochs=3, batch_size=4, random_state=0, device="cpu")


def _variable(n_trials=10, n_times=20, n_units=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, size=(n_trials, n_times, n_units)).astype(float)
    y = np.cumsum(X[..., :2], axis=1) * 0.1
    lengths = rng.integers(5, n_times + 1, n_trials)
    lengths[0] = n_times
    pad = np.arange(n_times)[None] >= lengths[:, None]
    X[pad] = np.nan
    y[pad] = np.nan
    return X, y, lengths


def test_decodes_nonlinear_dynamics_better_than_a_linear_filter():
    counts, behaviour = make_latent_dynamics(n_trials=180, random_state=1)
    X, y = counts.values, behaviour.values
    train, test = slice(0, 150), slice(150, None)
    T = X.shape[1]
    F = np.concatenate([np.pad(X, ((0, 0), (lag, 0), (0, 0)))[:, :T] for lag in range(10)], -1)
    ridge = Ridge(alpha=100.0).fit(F[train].reshape(-1, F.shape[-1]), y[train].reshape(-1, 2))
    ridge_r2 = r2_score(y[test].reshape(-1, 2), ridge.predict(F[test].reshape(-1, F.shape[-1])))
    dec = ConvDecoder(device="cpu", random_state=0).fit(counts[train], behaviour[train])
    r2 = dec.score(counts[test], behaviour[test])
    assert dec.receptive_field_ == 31
    assert r2 >= 0.8
    assert r2 - ridge_r2 > 0.15


@pytest.mark.parametrize("t", [0, 6, 13])
def test_causal(t):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, 20, 3))
    y = rng.normal(size=(6, 20))
    dec = ConvDecoder(**TINY).fit(X, y)
    changed = X.copy()
    changed[:, t] += rng.normal(size=(6, 3)) * 5
    before, after = dec.predict(X), dec.predict(changed)
    np.testing.assert_array_equal(before[:, :t], after[:, :t])  # nothing before t moves
    assert not np.allclose(before[:, t], after[:, t])


def test_receptive_field_is_what_it_says():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, 40, 2))
    dec = ConvDecoder(kernel_size=2, n_layers=3, **{k: v for k, v in TINY.items()
                                                    if k not in ("n_layers",)})
    dec.fit(X, X[..., 0])
    assert dec.receptive_field_ == 1 + 1 * (2**3 - 1)
    changed = X.copy()
    changed[:, 10] += 3.0
    moved = ~np.isclose(dec.predict(X), dec.predict(changed)).all(0)
    # bin 10 reaches bins 10 .. 10 + receptive_field - 1 (ReLUs may hide some)
    assert not moved[:10].any() and not moved[10 + dec.receptive_field_:].any()
    assert moved[10]


@pytest.mark.parametrize("output", ["sequence", "last"])
def test_padded_batch_predicts_what_trials_predict_alone(output):
    X, y, lengths = _variable()
    target = y if output == "sequence" else y[np.arange(len(y)), lengths - 1]
    dec = ConvDecoder(output=output, **TINY).fit(X, target)
    batch = dec.predict(X)
    for i, n in enumerate(lengths):
        alone = dec.predict(X[i: i + 1, :n])[0]
        if output == "sequence":
            np.testing.assert_allclose(batch[i, :n], alone, rtol=1e-5, atol=1e-6)
            assert np.isnan(batch[i, n:]).all()
        else:
            np.testing.assert_allclose(batch[i], alone, rtol=1e-5, atol=1e-6)


def test_types_save_load_and_errors(tmp_path):
    X, y, _ = _variable()
    dec = ConvDecoder(**TINY).fit(X, y[..., 0])
    pred = dec.predict(X)
    assert pred.shape == (10, 20)
    out = dec.predict(torch.as_tensor(X))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), pred, rtol=1e-6, equal_nan=True)
    loaded = neuroml.load(dec.save(tmp_path / "conv.pt"))
    np.testing.assert_allclose(loaded.predict(X), pred, rtol=1e-6, equal_nan=True)
    assert loaded.receptive_field_ == dec.receptive_field_
    with pytest.raises(ParameterError, match=r"\(trial, time, unit\)"):
        ConvDecoder(**TINY).fit(X[0], y[0])
    with pytest.raises(ParameterError, match="'kernel_size' parameter of ConvDecoder"):
        ConvDecoder(kernel_size=1, **TINY).fit(X, y)
    with pytest.raises(ParameterError, match="y has 19 time bins but X has 20"):
        ConvDecoder(**TINY).fit(X, y[:, 1:])
