"""RNNDecoder / RNNClassifier: evidence against a linear filter, padding, types, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_score

import neuroml
from neuroml.datasets.latent_dynamics import make_latent_dynamics
from neuroml.errors import NotFittedError, ParameterError
from neuroml.nn.recurrent import RNNClassifier, RNNDecoder, reversal_index

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, cuda])]
TINY = dict(hidden_size=8, max_epochs=3, batch_size=4, random_state=0, device="cpu")


def _lagged(X: np.ndarray, n_lags: int) -> np.ndarray:
    """(trial, time, unit * n_lags): the counts at lags 0 .. n_lags - 1 (zeros before 0)."""
    T = X.shape[1]
    return np.concatenate([np.pad(X, ((0, 0), (lag, 0), (0, 0)))[:, :T] for lag in range(n_lags)],
                          axis=-1)


def _variable(n_trials=10, n_times=12, n_units=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, size=(n_trials, n_times, n_units)).astype(float)
    y = np.cumsum(X[..., :2], axis=1) * 0.1
    lengths = rng.integers(4, n_times + 1, n_trials)
    lengths[0] = n_times
    pad = np.arange(n_times)[None] >= lengths[:, None]
    X[pad] = np.nan
    y[pad] = np.nan
    return X, y, lengths


def _rotation_classes(n_trials=120, n_times=20, n_units=12, seed=0):
    """Label = the sense of rotation of a latent oscillator; each bin's rates alone carry
    no label (a random phase makes every bin's rate distribution the same for both)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n_trials) % 2)
    phase0 = rng.uniform(0, 2 * np.pi, n_trials)
    omega = 2 * np.pi * 0.08 * np.where(y == 1, 1.0, -1.0)
    phase = phase0[:, None] + omega[:, None] * np.arange(n_times)[None]
    z = np.stack([np.cos(phase), np.sin(phase)], -1)
    C = rng.normal(size=(n_units, 2))
    rates = 0.5 * np.exp(z @ C.T)
    return rng.poisson(rates).astype(float), y


# ----------------------------------------------------------------- evidence
def test_default_rnn_beats_linear_filter_on_nonlinear_dynamics():
    """Default parameters: an LSTM decodes a nonlinear function of latent dynamics that a
    ridge regression on 10 bins of spike history (a Wiener filter) cannot."""
    counts, behaviour = make_latent_dynamics(n_trials=180, random_state=0)
    X, y = counts.values, behaviour.values
    train, test = slice(0, 150), slice(150, None)
    F = _lagged(X, 10)
    k = y.shape[-1]
    ridge_r2 = []
    for alpha in (1.0, 10.0, 100.0, 1000.0):  # the best ridge on the test trials
        ridge = Ridge(alpha=alpha).fit(F[train].reshape(-1, F.shape[-1]), y[train].reshape(-1, k))
        pred = ridge.predict(F[test].reshape(-1, F.shape[-1]))
        ridge_r2.append(r2_score(y[test].reshape(-1, k), pred))
    rnn = RNNDecoder(device="cpu", random_state=0).fit(counts[train], behaviour[train])
    rnn_r2 = rnn.score(counts[test], behaviour[test])
    assert max(ridge_r2) < 0.7
    assert rnn_r2 >= 0.8
    assert rnn_r2 - max(ridge_r2) > 0.15
    assert rnn.n_iter_ < rnn.max_epochs  # stopped early on held-out trials


def test_classifier_reads_dynamics_beyond_each_bin():
    X, y = _rotation_classes()
    # A linear classifier of the trial-averaged counts is near chance...
    static = cross_val_score(LogisticRegression(max_iter=1000), X.mean(1), y, cv=4).mean()
    assert static < 0.7
    clf = RNNClassifier(hidden_size=16, max_epochs=40, device="cpu", random_state=0)
    clf.fit(X[:90], y[:90])
    # ... the sense of rotation is read from the dynamics.
    assert clf.score(X[90:], y[90:]) >= 0.85
    proba = clf.predict_proba(X[90:])
    assert proba.shape == (30, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.classes_, [0, 1])


# ----------------------------------------------------------------- padding
@pytest.mark.parametrize("cell, bidirectional, output", [
    ("lstm", False, "sequence"), ("gru", True, "sequence"), ("rnn", False, "last"),
    ("lstm", True, "last"),
])
def test_padded_batch_predicts_what_trials_predict_alone(cell, bidirectional, output):
    X, y, lengths = _variable()
    target = y if output == "sequence" else y[np.arange(len(y)), lengths - 1]
    dec = RNNDecoder(cell, n_layers=2, bidirectional=bidirectional, output=output,
                     **TINY).fit(X, target)
    batch = dec.predict(X)
    for i, n in enumerate(lengths):
        alone = dec.predict(X[i: i + 1, :n])
        if output == "sequence":
            np.testing.assert_allclose(batch[i, :n], alone[0], rtol=1e-5, atol=1e-6)
            assert np.isnan(batch[i, n:]).all()
        else:
            np.testing.assert_allclose(batch[i], alone[0], rtol=1e-5, atol=1e-6)


def test_padded_steps_do_not_affect_training():
    X, y, lengths = _variable()
    junk = y.copy()
    pad = np.isnan(junk)
    junk[pad] = np.random.default_rng(5).normal(size=pad.sum()) * 1e3
    a = RNNDecoder(**TINY).fit(X, y)
    b = RNNDecoder(**TINY).fit(X, junk)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_allclose(a.history_.train_loss, b.history_.train_loss)


def test_loss_is_the_mean_over_valid_steps_only():
    X, y, lengths = _variable()
    # one full batch and a negligible step: the recorded loss is that of the final weights
    dec = RNNDecoder(hidden_size=8, max_epochs=1, batch_size=10, lr=1e-12,
                     validation_fraction=0.0, random_state=0, device="cpu").fit(X, y)
    pred = dec.predict(X)
    valid = ~np.isnan(y[..., 0])
    z = (pred[valid] - y[valid]) / dec.target_scale_
    expected = 0.5 * np.mean(z**2)
    assert dec.history_.train_loss.iloc[0] == pytest.approx(expected, rel=1e-4)
    assert valid.sum() < valid.size  # the data are padded


def test_reversal_index_reverses_within_length():
    idx = reversal_index(torch.tensor([4, 2]), 4)
    assert idx.tolist() == [[3, 2, 1, 0], [1, 0, 2, 3]]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_causal_unless_bidirectional(bidirectional):
    X, y, _ = _variable(seed=1)
    X, y = np.nan_to_num(X), np.nan_to_num(y)
    dec = RNNDecoder(bidirectional=bidirectional, **TINY).fit(X, y)
    changed = X.copy()
    changed[:, 7:] += 5.0
    before, after = dec.predict(X), dec.predict(changed)
    if bidirectional:
        assert not np.allclose(before[:, :7], after[:, :7])
    else:
        np.testing.assert_array_equal(before[:, :7], after[:, :7])
    assert not np.allclose(before[:, 7:], after[:, 7:])


# ----------------------------------------------------------------- behaviour
def test_standardisation_uses_training_trials():
    X, y, _ = _variable()
    dec = RNNDecoder(validation_fraction=0.0, **TINY).fit(X, y)
    flat = X.reshape(-1, X.shape[-1])
    np.testing.assert_allclose(dec.mean_, np.nanmean(flat, 0), rtol=1e-5)
    np.testing.assert_allclose(dec.scale_, np.nanstd(flat, 0), rtol=1e-4)
    flat_y = y.reshape(-1, 2)
    np.testing.assert_allclose(dec.target_mean_, np.nanmean(flat_y, 0), rtol=1e-5)


def test_score_is_r2_over_valid_steps():
    X, y, lengths = _variable()
    dec = RNNDecoder(**TINY).fit(X, y)
    pred = dec.predict(X)
    valid = ~np.isnan(y[..., 0])
    expected = r2_score(y[valid], pred[valid])
    assert dec.score(X, y) == pytest.approx(expected, rel=1e-9)


def test_sequence_classifier_with_string_labels():
    X, y = _rotation_classes(n_trials=24, n_times=10, n_units=4)
    labels = np.where(y == 1, "ccw", "cw")
    per_step = np.repeat(labels[:, None], 10, axis=1)
    X[0, 6:] = np.nan
    clf = RNNClassifier(output="sequence", **TINY).fit(X, per_step)
    pred = clf.predict(X)
    assert pred.shape == (24, 10) and pred[1, 0] in ("ccw", "cw")
    assert all(p != p for p in pred[0, 6:])  # NaN at padded steps
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 10, 2) and np.isnan(proba[0, 6:]).all()
    valid = ~np.isnan(X[..., 0])
    acc = np.mean(pred[valid] == per_step[valid])
    assert clf.score(X, per_step) == pytest.approx(acc)


def test_dataarray_in_dataarray_out():
    counts, behaviour = make_latent_dynamics(n_units=5, n_trials=12, n_times=15, min_length=8,
                                             random_state=0)
    dec = RNNDecoder(**TINY).fit(counts, behaviour)
    pred = dec.predict(counts)
    assert pred.dims == ("trial", "time", "channel")
    assert pred.channel.values.tolist() == ["abs_x", "abs_v"]
    np.testing.assert_array_equal(pred.time.values, counts.time.values)
    np.testing.assert_array_equal(pred.frequency.values, counts.frequency.values)
    assert np.array_equal(np.isnan(pred.values), np.isnan(behaviour.values))
    # per-trial target named as a trial coordinate
    last = RNNDecoder(output="last", **TINY).fit(counts, "frequency")
    out = last.predict(counts)
    assert out.dims == ("trial",) and out.shape == (12,)


@pytest.mark.parametrize("device", DEVICES)
def test_tensor_in_tensor_out(device):
    X, y, _ = _variable()
    params = {**TINY, "device": device}
    dec = RNNDecoder(**params).fit(torch.as_tensor(X), torch.as_tensor(y))
    out = dec.predict(torch.as_tensor(X, device=device))
    assert isinstance(out, torch.Tensor) and out.device.type == device
    assert out.shape == y.shape
    clf = RNNClassifier(**params).fit(torch.as_tensor(X), np.arange(10) % 2)
    labels = clf.predict(torch.as_tensor(X))
    assert isinstance(labels, torch.Tensor) and labels.device.type == device


def test_same_seed_same_numbers_and_save_load(tmp_path):
    X, y, _ = _variable()
    a = RNNDecoder(dropout=0.2, **TINY).fit(X, y)
    b = RNNDecoder(dropout=0.2, **TINY).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    loaded = neuroml.load(a.save(tmp_path / "rnn.pt"))
    np.testing.assert_allclose(loaded.predict(X), a.predict(X), rtol=1e-6, equal_nan=True)
    clone = pickle.loads(pickle.dumps(a))
    np.testing.assert_allclose(clone.predict(X), a.predict(X), rtol=1e-6, equal_nan=True)
    clf = RNNClassifier(**TINY).fit(X, np.array(["a", "b"] * 5))
    back = neuroml.load(clf.save(tmp_path / "clf.pt"))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    assert back.classes_.tolist() == ["a", "b"]


def test_history_and_fitted_attributes():
    X, y, _ = _variable()
    dec = RNNDecoder(**TINY).fit(X, y)
    assert list(dec.history_.columns) == ["epoch", "train_loss", "val_loss", "seconds"]
    assert dec.n_iter_ == 3 and 1 <= dec.best_epoch_ <= 3
    assert dec.n_features_in_ == 3 and dec.n_outputs_ == 2
    assert isinstance(dec.mean_, np.ndarray) and isinstance(dec.target_scale_, np.ndarray)


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("make, match", [
    (lambda X, y: (X[:, 0], y), r"\(trial, time, unit\).*2-D input of shape \(10, 3\)"),
    (lambda X, y: (X, y[:8]), "y has 8 trials but X has 10"),
    (lambda X, y: (X, y[:, :5]), "y has 5 time bins but X has 12"),
    (lambda X, y: (X, y[:, 0, 0]), "output='last'"),
    (lambda X, y: (np.where(np.arange(10)[:, None, None] == 2, np.nan, X), y),
     r"all NaN \(trial index 2\)"),
    (lambda X, y: (np.where((np.arange(12) == 1)[None, :, None], np.nan, X), y),
     "NaN in the middle"),
])
def test_bad_input(make, match):
    X, y, _ = _variable()
    Xb, yb = make(X, y)
    with pytest.raises(ParameterError, match=match):
        RNNDecoder(**TINY).fit(Xb, yb)


def test_too_few_trials_for_validation_split():
    X, y, _ = _variable()
    with pytest.raises(ParameterError, match=r"needs at least 2 trials.*got 1.*validation_fraction=0"):
        RNNDecoder(**TINY).fit(X[:1], y[:1])
    RNNDecoder(**{**TINY, "validation_fraction": 0.0}).fit(X[:1], y[:1])  # allowed without


def test_bad_parameters_and_not_fitted():
    X, y, _ = _variable()
    with pytest.raises(ParameterError, match=r"'cell' parameter of RNNDecoder.*'lstm'.*Got 'tcn'"):
        RNNDecoder("tcn", **TINY).fit(X, y)
    with pytest.raises(ParameterError, match="'output' parameter"):
        RNNClassifier(output="all", **TINY).fit(X, np.arange(10) % 2)
    with pytest.raises(NotFittedError):
        RNNDecoder().predict(X)
    dec = RNNDecoder(**TINY).fit(X, y)
    with pytest.raises(ParameterError, match="X has 2 features, but RNNDecoder is expecting 3"):
        dec.predict(X[..., :2])
    with pytest.raises(ParameterError, match="at least 2 classes"):
        RNNClassifier(**TINY).fit(X, np.zeros(10))


def test_continuous_recording_is_refused_with_the_shape():
    X = xr.DataArray(np.ones((50, 3)), dims=("time", "unit"))
    with pytest.raises(ParameterError, match=r"\(trial, time, unit\).*dims \('time', 'unit'\)"):
        RNNDecoder(**TINY).fit(X, np.ones(50))
