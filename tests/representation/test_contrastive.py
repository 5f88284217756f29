"""ContrastiveEmbedding: the InfoNCE loss, positives and windows that never cross trials,
behaviour of every form, the sphere, reproducibility, save/load and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.special import logsumexp

import neuroml
from neuroml import ParameterError
from neuroml.representation import ContrastiveEmbedding
from neuroml.representation._sampling import PositiveSampler, SampleLayout, time_anchors
from neuroml.representation.contrastive import infonce


def trials(n_trials=12, n_time=15, n_units=8, seed=0):
    rng = np.random.default_rng(seed)
    cond = np.arange(n_trials) % 3
    X = rng.poisson(2.0 + cond[:, None, None], size=(n_trials, n_time, n_units)).astype(float)
    return xr.DataArray(X, dims=("trial", "time", "unit"),
                        coords={"trial": np.arange(n_trials), "time": np.arange(n_time) * 0.05,
                                "unit": np.arange(n_units), "condition": ("trial", cond),
                                "speed": ("trial", rng.uniform(0, 1, n_trials))},
                        attrs={"align_to": "go_cue"})


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def test_infonce_matches_its_definition():
    rng = np.random.default_rng(0)
    ref, pos, neg = unit(rng.normal(size=(6, 3))), unit(rng.normal(size=(6, 3))), \
        unit(rng.normal(size=(9, 3)))
    T = 0.3
    expected = np.mean(-(ref * pos).sum(1) / T + logsumexp(ref @ neg.T / T, axis=1))
    got = infonce(*(torch.as_tensor(a) for a in (ref, pos, neg)), T)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_windows_repeat_the_edges_of_each_trial():
    w = SampleLayout((2, 4), torch.device("cpu")).windows(3)
    expected = [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3],
                [4, 4, 5], [4, 5, 6], [5, 6, 7], [6, 7, 7]]
    assert w.tolist() == expected
    # a 2-D recording is one segment; an even window looks one bin further back
    assert SampleLayout((5,), torch.device("cpu")).windows(4).tolist()[0] == [0, 0, 1, 2]


def test_time_positives_stay_in_their_trial():
    segment = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2])
    anchors = time_anchors(segment, 2)
    assert anchors.tolist() == [0, 1, 4]
    assert all(segment[a + 2] == segment[a] for a in anchors.tolist())
    assert time_anchors(segment, 4).numel() == 0


def test_behavior_positives_share_the_label_or_are_near():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    pools = [torch.arange(8), torch.arange(8, 10)]
    s = PositiveSampler("behavior", 1, pools, labels, None, 0.0, 0, torch.device("cpu"))
    ref = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7] * 20)
    pos = s.positives(ref, 0)
    assert torch.equal(labels[pos], labels[ref]) and bool(torch.isin(pos, pools[0]).all())
    assert len(set(s.positives(torch.tensor([0] * 200), 0).tolist())) == 3  # rows 0, 3, 6
    neg = s.negatives(1000, 1)
    assert set(neg.tolist()) == {8, 9}
    # continuous: the nearest behaviour to the jittered reference
    y = torch.linspace(0, 1, 101)[:, None]
    pools = [torch.arange(101), torch.arange(101)]
    s = PositiveSampler("behavior", 1, pools, None, y, 0.05, 0, torch.device("cpu"))
    ref = torch.arange(101).repeat(10)
    gap = (y[s.positives(ref, 0)] - y[ref]).abs()
    assert float(gap.max()) < 0.25 and 0.02 < float(gap.mean()) < 0.06  # E|N(0, .05)| = 0.04


def test_windows_never_cross_trials():
    X = trials()
    est = ContrastiveEmbedding(3, window=5, max_epochs=2, random_state=0).fit(X)
    Z = est.transform(X)
    changed = X.copy()
    changed[1] = changed[1] + 5.0  # only trial 1
    Z2 = est.transform(changed)
    np.testing.assert_array_equal(Z2.values[0], Z.values[0])
    np.testing.assert_array_equal(Z2.values[2:], Z.values[2:])
    assert not np.allclose(Z2.values[1], Z.values[1])
    # 2-D input is one recording: a change at row t reaches rows t-2 .. t+2 only
    flat = X.values.reshape(-1, 8)
    A = est.transform(flat)
    bumped = flat.copy()
    bumped[50] += 5.0
    moved = np.flatnonzero(np.any(est.transform(bumped) != A, axis=1))
    assert moved.tolist() == [48, 49, 50, 51, 52]


def test_embeddings_lie_on_the_sphere_and_keep_coordinates():
    X = trials()
    est = ContrastiveEmbedding(4, max_epochs=2, random_state=0).fit(X)
    Z = est.transform(X)
    assert Z.dims == ("trial", "time", "latent") and Z.shape == (12, 15, 4)
    np.testing.assert_allclose(np.linalg.norm(Z.values, axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(Z["condition"].values, X["condition"].values)
    assert Z.attrs["align_to"] == "go_cue"
    assert list(est.history_.columns) == ["epoch", "train_loss", "val_loss", "seconds"]


@pytest.mark.parametrize("y, kind", [
    ("condition", "discrete"),                                  # a trial coordinate
    (np.arange(12) % 3, "discrete"),                            # one label per trial
    (np.repeat(np.arange(12) % 2, 15).reshape(12, 15), "discrete"),   # per time bin
    (np.array(list("abcd") * 3), "discrete"),                   # strings
    ("speed", "continuous"),
    (np.random.default_rng(0).normal(size=(12, 15, 2)), "continuous"),  # 2 variables per bin
])
def test_behavior_in_every_form(y, kind):
    X = trials()
    est = ContrastiveEmbedding(3, positive="behavior", max_epochs=2, random_state=0).fit(X, y)
    assert est.behavior_kind_ == kind
    assert est.transform(X).shape == (12, 15, 3)


def test_behavior_labels_separate_in_the_embedding():
    rng = np.random.default_rng(0)
    n = 900
    labels = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 10)) + 4.0 * np.eye(10)[labels * 3]
    est = ContrastiveEmbedding(3, positive="behavior", window=1, max_epochs=20,
                               random_state=0).fit(X, labels)
    Z = est.transform(X)
    means = np.stack([Z[labels == c].mean(0) for c in range(3)])
    within = np.mean([np.linalg.norm(Z[labels == c] - means[c], axis=1).mean() for c in range(3)])
    between = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(3, 1)].min()
    assert between > 3 * within


@pytest.mark.parametrize("y, match", [
    (None, "positive='behavior' needs y"),
    ("stimulus", "names no coordinate of X"),
    (np.zeros(7), r"y has shape \(7,\)"),
    (np.array([["a", "b"]] * 180), "Discrete y must be 1-D"),
    (np.full(180, np.nan), "contains NaN"),
])
def test_behavior_errors(y, match):
    with pytest.raises(ParameterError, match=match):
        ContrastiveEmbedding(positive="behavior", max_epochs=1).fit(trials(), y)


def test_time_offset_longer_than_the_trials():
    with pytest.raises(ParameterError, match="got 15 sample"):
        ContrastiveEmbedding(time_offset=15, max_epochs=1).fit(trials())
    with pytest.raises(ValueError, match="1 sample"):
        ContrastiveEmbedding(time_offset=1, max_epochs=1).fit(np.ones((1, 3)))


def test_same_random_state_same_numbers_and_save_load(tmp_path):
    X = trials()
    kw = dict(positive="behavior", window=3, max_epochs=3, random_state=5)
    a = ContrastiveEmbedding(3, **kw).fit(X, "condition")
    b = ContrastiveEmbedding(3, **kw).fit(X, "condition")
    np.testing.assert_array_equal(a.history_["train_loss"], b.history_["train_loss"])
    np.testing.assert_array_equal(a.transform(X).values, b.transform(X).values)
    loaded = neuroml.load(a.save(tmp_path / "emb.pt"))
    np.testing.assert_array_equal(loaded.transform(X).values, a.transform(X).values)
    np.testing.assert_array_equal(loaded.classes_, a.classes_)
    assert loaded.behavior_kind_ == "discrete"


@pytest.mark.parametrize("params, match", [
    (dict(n_latents=1), "'n_latents' parameter of ContrastiveEmbedding"),
    (dict(positive="label"), "'positive' parameter of ContrastiveEmbedding"),
    (dict(window=0), "'window' parameter"),
    (dict(temperature=0.0), "'temperature' parameter"),
    (dict(time_offset=0), "'time_offset' parameter"),
])
def test_parameter_errors(params, match):
    with pytest.raises(ParameterError, match=match):
        ContrastiveEmbedding(**params).fit(trials())
