"""Validation and conversion of (trial, time, unit) input with NaN end-padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from neuroml.errors import ParameterError
from neuroml.nn._sequence_data import check_sequences, check_targets, wrap_outputs

CPU = torch.device("cpu")


def _padded(lengths=(5, 3, 1), n_times=5, n_units=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(lengths), n_times, n_units))
    for i, n in enumerate(lengths):
        X[i, n:] = np.nan
    return X


def _da(X):
    n, T, _ = X.shape
    return xr.DataArray(
        X, dims=("trial", "time", "unit"),
        coords={"trial": np.arange(100, 100 + n), "time": np.arange(T) * 0.1 - 0.2,
                "condition": ("trial", np.array(["a", "b", "a"][:n])),
                "unit": [7, 8][: X.shape[2]]})


@pytest.mark.parametrize("kind", ["numpy", "xarray", "torch"])
def test_lengths_mask_and_zero_fill(kind):
    X = _padded()
    inp = {"numpy": X, "xarray": _da(X), "torch": torch.as_tensor(X)}[kind]
    seq = check_sequences(inp, owner="Demo", device=CPU)
    assert seq.lengths.tolist() == [5, 3, 1]
    assert seq.kind == kind and seq.padded
    expected_mask = np.arange(5)[None] < np.array([5, 3, 1])[:, None]
    np.testing.assert_array_equal(seq.mask.numpy(), expected_mask)
    values = seq.values.numpy()
    np.testing.assert_array_equal(values[expected_mask], X[expected_mask])
    assert (values[~expected_mask] == 0).all()
    assert seq.values.dtype == torch.float64


def test_float32_kept_and_dtype_forced():
    X = _padded().astype(np.float32)
    assert check_sequences(X, owner="D", device=CPU).values.dtype == torch.float32
    X64 = _padded()
    seq = check_sequences(X64, owner="D", device=CPU, dtype=torch.float32)
    assert seq.values.dtype == torch.float32
    ints = np.ones((2, 3, 1), dtype=np.int64)
    assert check_sequences(ints, owner="D", device=CPU).values.dtype == torch.float64


@pytest.mark.parametrize("X, match", [
    (np.ones((4, 3)), r"shape \(trial, time, unit\).*2-D input of shape \(4, 3\)"),
    (np.ones((2, 3, 4, 5)), r"shape \(trial, time, unit\).*4-D"),
    (np.ones((0, 3, 2)), "at least one trial"),
    (np.full((2, 3, 2), "a"), "numeric"),
])
def test_bad_shapes(X, match):
    with pytest.raises(ParameterError, match=match):
        check_sequences(X, owner="Demo", device=CPU)


def test_dataarray_2d_names_dims():
    da = xr.DataArray(np.ones((4, 3)), dims=("time", "unit"))
    with pytest.raises(ParameterError, match=r"\(trial, time, unit\).*dims \('time', 'unit'\)"):
        check_sequences(da, owner="Demo", device=CPU)


def test_all_nan_trial():
    X = _padded()
    X[1] = np.nan
    with pytest.raises(ParameterError, match=r"1 trial\(s\) that are all NaN \(trial index 1\)"):
        check_sequences(X, owner="Demo", device=CPU)


@pytest.mark.parametrize("where", [(0, 2, slice(None)), (0, 2, 0)])
def test_nan_in_the_middle(where):
    X = _padded()
    X[where] = np.nan  # an all-NaN step before valid ones, or one unit only
    with pytest.raises(ParameterError, match=r"NaN in the middle of 1 trial.*trial index 0, "
                                             r"time bin 2"):
        check_sequences(X, owner="Demo", device=CPU)


def test_nan_in_some_units_of_the_last_step_is_not_padding():
    X = _padded()
    X[1, 2, 0] = np.nan  # trial 1's last valid step, unit 0 only
    with pytest.raises(ParameterError, match="middle"):
        check_sequences(X, owner="Demo", device=CPU)


def test_infinity():
    X = _padded()
    X[0, 0, 1] = np.inf
    with pytest.raises(ParameterError, match="infinity"):
        check_sequences(X, owner="Demo", device=CPU)


def test_min_trials():
    with pytest.raises(ParameterError, match="at least 3 trials; got 2"):
        check_sequences(np.ones((2, 3, 1)), owner="Demo", device=CPU, min_trials=3)


# ---------------------------------------------------------------- targets
def test_sequence_targets_shapes():
    seq = check_sequences(_padded(), owner="D", device=CPU)
    y = np.arange(15.0).reshape(3, 5)
    y[2, 1:] = np.nan  # NaN at padded steps is fine
    t = check_targets(y, seq, output="sequence", owner="D")
    assert t.values.shape == (3, 5, 1) and t.squeeze
    assert t.values[2, 1:].tolist() == [[0.0]] * 4  # zero-filled padding
    t = check_targets(np.ones((3, 5, 2)), seq, output="sequence", owner="D")
    assert t.values.shape == (3, 5, 2) and not t.squeeze


@pytest.mark.parametrize("y, match", [
    (np.ones((4, 5)), "y has 4 trials but X has 3"),
    (np.ones((3, 6)), "y has 6 time bins but X has 5"),
    (np.ones(3), r"\(trial, time\) or \(trial, time, k\).*output='last'"),
    (np.ones((3, 5, 2, 1)), r"shape \(3, 5, 2, 1\)"),
])
def test_mismatched_sequence_targets(y, match):
    seq = check_sequences(_padded(), owner="D", device=CPU)
    with pytest.raises(ParameterError, match=match):
        check_targets(y, seq, output="sequence", owner="D")


def test_nan_target_at_valid_step():
    seq = check_sequences(_padded(), owner="D", device=CPU)
    y = np.ones((3, 5))
    y[1, 1] = np.nan
    with pytest.raises(ParameterError, match=r"trial index 1, time bin 1"):
        check_targets(y, seq, output="sequence", owner="D")


def test_last_targets():
    seq = check_sequences(_padded(), owner="D", device=CPU)
    t = check_targets([1.0, 2.0, 3.0], seq, output="last", owner="D")
    assert t.values.shape == (3, 1) and t.squeeze
    labels = check_targets(np.array(["x", "y", "x"]), seq, output="last", owner="D",
                           numeric=False)
    assert labels.values.tolist() == ["x", "y", "x"]
    with pytest.raises(ParameterError, match="y has 2 trials but X has 3"):
        check_targets([1.0, 2.0], seq, output="last", owner="D")
    with pytest.raises(ParameterError, match="output='sequence'"):
        check_targets(np.ones((3, 5)), seq, output="last", owner="D", numeric=False)


def test_target_named_as_trial_coordinate():
    X = _da(_padded())
    seq = check_sequences(X, owner="D", device=CPU)
    last = check_targets("condition", seq, output="last", owner="D", X=X, numeric=False)
    assert last.values.tolist() == ["a", "b", "a"]
    per_step = check_targets("condition", seq, output="sequence", owner="D", X=X, numeric=False)
    assert per_step.values.shape == (3, 5) and (per_step.values[1] == "b").all()
    with pytest.raises(ParameterError, match=r"not a coordinate along 'trial'.*\['condition'\]"):
        check_targets("choice", seq, output="last", owner="D", X=X)
    with pytest.raises(ParameterError, match="needs a DataArray X"):
        check_targets("condition", seq, output="last", owner="D", X=_padded())


def test_dataarray_target_coordinates_must_match():
    X = _da(_padded())
    seq = check_sequences(X, owner="D", device=CPU)
    y = xr.DataArray(np.ones((3, 5, 2)), dims=("trial", "time", "channel"),
                     coords={"trial": X.trial.values, "time": X.time.values,
                             "channel": ["vx", "vy"]})
    t = check_targets(y, seq, output="sequence", owner="D", X=X)
    assert t.dim == "channel" and t.coords.tolist() == ["vx", "vy"]
    with pytest.raises(ParameterError, match="time bins of y"):
        check_targets(y.assign_coords(time=y.time + 1.0), seq, output="sequence", owner="D", X=X)
    with pytest.raises(ParameterError, match="trials of y"):
        check_targets(y.assign_coords(trial=y.trial + 1), seq, output="sequence", owner="D", X=X)


# ---------------------------------------------------------------- outputs
def test_wrap_outputs_numpy_and_tensor():
    X = _padded()
    seq = check_sequences(X, owner="D", device=CPU)
    out = wrap_outputs(torch.ones(3, 5, 2), seq, output="sequence")
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(np.isnan(out[..., 0]), np.isnan(X[..., 0]))
    tseq = check_sequences(torch.as_tensor(X), owner="D", device=CPU)
    t = wrap_outputs(torch.ones(3, 5), tseq, output="sequence", device=CPU)
    assert isinstance(t, torch.Tensor) and torch.isnan(t[2, 1:]).all()
    last = wrap_outputs(torch.ones(3), seq, output="last")
    assert last.shape == (3,) and not np.isnan(last).any()


def test_wrap_outputs_dataarray_keeps_coords():
    X = _da(_padded())
    seq = check_sequences(X, owner="D", device=CPU)
    out = wrap_outputs(torch.zeros(3, 5, 2), seq, output="sequence", feature_dim="channel",
                       feature_coords=["vx", "vy"], name="prediction")
    assert out.dims == ("trial", "time", "channel")
    np.testing.assert_array_equal(out.trial.values, X.trial.values)
    np.testing.assert_array_equal(out.time.values, X.time.values)
    assert out.condition.values.tolist() == ["a", "b", "a"]
    assert out.channel.values.tolist() == ["vx", "vy"]
    assert np.isnan(out.values[1, 3:]).all() and not np.isnan(out.values[1, :3]).any()
    last = wrap_outputs(torch.zeros(3), seq, output="last")
    assert last.dims == ("trial",) and last.condition.values.tolist() == ["a", "b", "a"]


def test_labels_with_padding():
    seq = check_sequences(_padded(), owner="D", device=CPU)
    ints = wrap_outputs(np.ones((3, 5), dtype=np.int64), seq, output="sequence")
    assert ints.dtype == np.float64 and np.isnan(ints[2, 1:]).all()
    words = wrap_outputs(np.full((3, 5), "go"), seq, output="sequence")
    assert words[0, 0] == "go" and words[2, 4] != words[2, 4]  # NaN


def test_continuous_recording_is_one_trial():
    rng = np.random.default_rng(1)
    X = xr.DataArray(rng.normal(size=(6, 2)), dims=("time", "unit"),
                     coords={"time": np.arange(6) * 0.5})
    seq = check_sequences(X, owner="D", device=CPU, continuous=True)
    assert seq.continuous and seq.n_trials == 1 and seq.lengths.tolist() == [6]
    t = check_targets(np.arange(6.0), seq, output="sequence", owner="D")
    assert t.values.shape == (1, 6, 1)
    t2 = check_targets(np.ones((6, 3)), seq, output="sequence", owner="D")
    assert t2.values.shape == (1, 6, 3)
    with pytest.raises(ParameterError, match="y has 5 time bins but X has 6"):
        check_targets(np.ones(5), seq, output="sequence", owner="D")
    out = wrap_outputs(torch.ones(1, 6, 3), seq, output="sequence")
    assert out.dims == ("time", "output") and out.time.values.tolist() == X.time.values.tolist()
    with pytest.raises(ParameterError, match=r"or one continuous recording of shape \(time, unit\)"):
        check_sequences(np.ones(4), owner="D", device=CPU, continuous=True)
