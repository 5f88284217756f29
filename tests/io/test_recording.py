"""Recording: epochs and signals against np.histogram / np.interp, laziness, errors."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuroml.errors import NeuroMLError, ParameterError, RecordingError
from neuroml.io.recording import LazyMapping, Recording, make_signal
from neuroml.io.spikes import SpikeTrains, bin_edges


def make_recording(seed=0, n_units=4, duration=20.0, n_trials=12):
    rng = np.random.default_rng(seed)
    trains = [np.sort(rng.uniform(0, duration, rng.poisson(30 * duration)))
              for _ in range(n_units - 1)] + [np.zeros(0)]          # last unit silent
    starts = np.sort(rng.uniform(1.0, duration - 1.0, n_trials))
    trials = pd.DataFrame({
        "start_time": starts,
        "stop_time": starts + 0.8,
        "go_cue": starts + rng.uniform(0.1, 0.3, n_trials),
        "condition": np.array(["left", "right", "catch"])[np.arange(n_trials) % 3],
        "reward": rng.uniform(0, 1, n_trials),
    })
    t = np.arange(0.0, duration, 0.01)
    position = np.stack([np.sin(t), np.cos(2 * t), t ** 0.5], axis=1)
    rec = Recording.from_arrays(
        spike_times=trains, unit_ids=[10, 20, 30, 40], trials=trials,
        signals={"position": (t, position)}, identifier="demo",
    )
    return rec, trains, trials, t, position


def reference_epochs(trains, events, edges):
    """counts[trial, bin, unit] = np.histogram(train - event, edges)."""
    return np.stack([
        np.stack([np.histogram(tr - ev, edges)[0] for tr in trains], axis=1)
        for ev in events
    ]).reshape(len(events), edges.size - 1, len(trains))


def interp_nan(xp, fp, x):
    """np.interp per channel, NaN outside [xp[0], xp[-1]]."""
    out = np.stack([np.interp(x, xp, fp[:, c]) for c in range(fp.shape[1])], axis=1)
    out[(x < xp[0]) | (x > xp[-1])] = np.nan
    return out


# ---------------------------------------------------------------------------- epochs
@pytest.mark.parametrize(
    "window, bin_size",
    [((-0.5, 1.0), 0.05), ((0.0, 0.3), 0.1), ((-0.2, 2.5), 1 / 3), ((-1.0, -0.1), 0.37)],
)
def test_epochs_equal_histogram_reference(window, bin_size):
    rec, trains, trials, _, _ = make_recording()
    da = rec.epochs("go_cue", window, bin_size)

    edges = bin_edges(window[0], window[1], bin_size)
    ref = reference_epochs(trains, trials["go_cue"].to_numpy(), edges)
    assert da.dims == ("trial", "time", "unit")
    np.testing.assert_array_equal(da.values, ref)
    np.testing.assert_allclose(da["time"].values, (edges[:-1] + edges[1:]) / 2, atol=1e-12)
    assert da["unit"].values.tolist() == [10, 20, 30, 40]
    assert np.issubdtype(da.dtype, np.integer)
    assert da.attrs["align_to"] == "go_cue" and da.attrs["bin_size"] == bin_size


def test_epochs_overlapping_windows_and_past_last_spike():
    trains = [np.array([0.05, 0.1, 0.2, 0.3, 0.35, 1.0]), np.array([0.15, 0.25]), np.zeros(0)]
    events = np.array([0.1, 0.15, 0.2, 0.95, 5.0])   # overlapping; the last past every spike
    rec = Recording.from_arrays(spike_times=trains, trials={"t": events})
    da = rec.epochs("t", (-0.1, 0.2), 0.1)
    edges = bin_edges(-0.1, 0.2, 0.1)
    np.testing.assert_array_equal(da.values, reference_epochs(trains, events, edges))
    assert int(da.sel(trial=4).sum()) == 0
    # the same spike is counted in every window it falls in
    assert int(da.sum()) == sum(
        int(np.sum((tr - ev >= edges[0]) & (tr - ev <= edges[-1]))) for tr in trains for ev in events
    )


def test_epochs_spikes_exactly_on_window_edges():
    # Spike times that are exactly event + edge in float64 (and their neighbours).
    events = np.array([0.3, 1.7, 2.9, 10.1])
    edges = bin_edges(-0.2, 0.4, 0.1)
    on = (events[:, None] + edges[None, :]).ravel()
    t = np.sort(np.concatenate([on, np.nextafter(on, -np.inf), np.nextafter(on, np.inf)]))
    rec = Recording.from_arrays(spike_times=[t, t[::2]], trials={"ev": events})
    da = rec.epochs("ev", (-0.2, 0.4), 0.1)
    np.testing.assert_array_equal(da.values, reference_epochs([t, t[::2]], events, edges))


def test_epochs_trial_coords_and_psth():
    rec, trains, trials, _, _ = make_recording(seed=1, n_trials=15)
    da = rec.epochs("start_time", (-0.2, 0.6), 0.1)

    for col in trials.columns:
        assert da[col].dims == ("trial",)
        np.testing.assert_array_equal(da[col].values, trials[col].to_numpy())
    assert da["trial"].values.tolist() == trials.index.tolist()

    psth = da.groupby("condition").mean("trial")
    assert psth.dims == ("condition", "time", "unit")
    edges = bin_edges(-0.2, 0.6, 0.1)
    ref = reference_epochs(trains, trials["start_time"].to_numpy(), edges)
    for cond in ["left", "right", "catch"]:
        rows = (trials["condition"] == cond).to_numpy()
        np.testing.assert_allclose(psth.sel(condition=cond).values, ref[rows].mean(axis=0),
                                   rtol=1e-12)


def test_epochs_trials_mask_and_labels():
    rec, trains, trials, _, _ = make_recording(seed=2)
    mask = (trials["condition"] == "right").to_numpy()
    da = rec.epochs("go_cue", (-0.1, 0.4), 0.05, trials=mask)
    assert da.sizes["trial"] == mask.sum()
    edges = bin_edges(-0.1, 0.4, 0.05)
    ref = reference_epochs(trains, trials["go_cue"].to_numpy()[mask], edges)
    np.testing.assert_array_equal(da.values, ref)
    assert set(da["condition"].values.tolist()) == {"right"}

    labels = [5, 0, 7]
    da = rec.epochs("go_cue", (-0.1, 0.4), 0.05, trials=labels)
    assert da["trial"].values.tolist() == labels
    ref = reference_epochs(trains, trials["go_cue"].to_numpy()[labels], edges)
    np.testing.assert_array_equal(da.values, ref)

    # NaN event times are fine once masked out
    trials2 = trials.assign(go_cue=trials["go_cue"].where(~mask))
    rec2 = rec.with_trials(trials2)
    da = rec2.epochs("go_cue", (-0.1, 0.4), 0.05, trials=trials2["go_cue"].notna())
    assert da.sizes["trial"] == (~mask).sum()


def test_epochs_of_a_signal_equal_interp_at_bin_centres():
    rec, _, trials, t, position = make_recording(seed=3, duration=20.0)
    # one event near the end so part of its window is past the last sample -> NaN
    trials = pd.concat([trials, pd.DataFrame({"go_cue": [19.95], "condition": ["late"]})],
                       ignore_index=True)
    rec = rec.with_trials(trials)
    da = rec.epochs("go_cue", (-0.25, 0.25), 0.02, source="position")

    assert da.dims == ("trial", "time", "channel")
    edges = bin_edges(-0.25, 0.25, 0.02)
    centres = (edges[:-1] + edges[1:]) / 2
    for i, ev in enumerate(trials["go_cue"].to_numpy()):
        ref = interp_nan(t, position, ev + centres)
        np.testing.assert_allclose(da.values[i], ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    last = da.values[-1]
    assert np.isnan(last[centres + 19.95 > t[-1]]).all()
    assert np.isfinite(last[centres + 19.95 <= t[-1]]).all()
    assert da.name == "position" and da.attrs["source"] == "position"


def test_signal_at_times_equals_interp_with_nan_outside():
    rec, _, _, t, position = make_recording(seed=4)
    rng = np.random.default_rng(4)
    at = np.concatenate([rng.uniform(-1, 21, 500), t[[0, 5, -1]], [t[0] - 1e-9, t[-1] + 1e-9]])
    got = rec.signal("position", at=at)
    assert got.dims == ("time", "channel")
    np.testing.assert_array_equal(got["time"].values, at)
    np.testing.assert_allclose(got.values, interp_nan(t, position, at), rtol=1e-12, atol=1e-12,
                               equal_nan=True)
    assert np.isnan(got.values[-2:]).all()
    np.testing.assert_array_equal(got.values[-5:-2], position[[0, 5, -1]])
    # without `at`, the stored signal itself
    raw = rec.signal("position")
    np.testing.assert_array_equal(raw.values, position)
    np.testing.assert_array_equal(raw["time"].values, t)


def test_bin_delegates_to_spike_trains():
    rec, trains, _, _, _ = make_recording(seed=5)
    da = rec.bin(0.25, start=0.0, stop=20.0)
    expected = SpikeTrains.from_list(trains, unit_ids=[10, 20, 30, 40]).bin(0.25, start=0.0, stop=20.0)
    xr.testing.assert_identical(da, expected)


# ---------------------------------------------------------------------------- constructors
def test_make_signal_both_timing_conventions():
    data = np.arange(12.0).reshape(6, 2)
    by_rate = make_signal(data, rate=100.0, starting_time=2.0, name="x", unit="cm")
    by_stamps = make_signal(data, 2.0 + np.arange(6) / 100.0, name="x", unit="cm")
    np.testing.assert_allclose(by_rate["time"].values, [2.0, 2.01, 2.02, 2.03, 2.04, 2.05])
    np.testing.assert_array_equal(by_rate["time"].values, by_stamps["time"].values)
    assert by_rate.dims == ("time", "channel") and by_rate.attrs["rate"] == 100.0
    assert by_rate.attrs["unit"] == "cm"
    assert make_signal(np.ones(3), [0.0, 1.0, 2.0]).shape == (3, 1)
    with pytest.raises(ParameterError, match="needs either 'timestamps' or 'rate'"):
        make_signal(data)
    with pytest.raises(ParameterError, match="has 6 samples but 5 timestamps"):
        make_signal(data, np.arange(5.0))


def test_from_arrays_tuples_and_dataarrays():
    t = np.linspace(0, 1, 11)
    lick = xr.DataArray(np.arange(11.0), dims="time", coords={"time": t})
    pupil = xr.DataArray(np.ones((11, 2)), dims=("time", "eye"),
                         coords={"time": t, "eye": ["l", "r"]})
    rec = Recording.from_arrays(
        spike_times=[[0.1, 0.2]], trials={"start_time": [0.0, 0.5]},
        signals={"speed": (t, np.arange(11.0) * 2), "lick": lick, "pupil": pupil},
        intervals={"sleep": pd.DataFrame({"start_time": [0.0], "stop_time": [1.0]})},
        identifier="mouse1", session_description="test",
    )
    assert sorted(rec.signals) == ["lick", "pupil", "speed"]
    for name in rec.signals:
        assert rec.signals[name].dims == ("time", "channel")
        assert rec.signals[name].name == name
    np.testing.assert_array_equal(rec.signals["speed"].values[:, 0], np.arange(11.0) * 2)
    assert rec.signals["pupil"]["channel"].values.tolist() == ["l", "r"]
    assert rec.trials.index.name == "trial"
    assert rec.meta == {"identifier": "mouse1", "session_description": "test"}
    assert rec.id == "mouse1"
    assert list(rec.intervals) == ["sleep"]
    assert rec.summary()["units"] == 1 and rec.summary()["trials"] == 2


def test_from_xarray_dataarray_and_dataset():
    t = np.arange(0, 2, 0.1)
    da = xr.DataArray(np.random.default_rng(0).normal(size=(t.size, 3)), dims=("time", "roi"),
                      coords={"time": t, "roi": [4, 5, 6]}, name="dff")
    rec = Recording.from_xarray(da, trials=pd.DataFrame({"start_time": [0.2, 1.0]}))
    assert list(rec.signals) == ["dff"]
    assert rec.signals["dff"].dims == ("time", "channel")
    assert rec.signals["dff"]["channel"].values.tolist() == [4, 5, 6]
    assert not rec.has_spikes
    ep = rec.epochs("start_time", (0.0, 0.5), 0.1, source="dff")
    assert ep.shape == (2, 5, 3)

    ds = xr.Dataset({"x": ("time", t * 2), "y": (("time", "c"), np.ones((t.size, 2)))},
                    coords={"time": t})
    rec = Recording.from_xarray(ds)
    assert sorted(rec.signals) == ["x", "y"]
    np.testing.assert_array_equal(rec.signal("x").values[:, 0], t * 2)
    assert Recording.from_xarray(da.rename(None)).signals.keys() == {"data"}
    with pytest.raises(ParameterError, match="DataArray or Dataset. Got ndarray"):
        Recording.from_xarray(np.zeros(3))
    with pytest.raises(ParameterError, match="must have a 'time' dimension"):
        Recording.from_xarray(xr.DataArray(np.zeros(3), dims="x", name="bad"))


# ---------------------------------------------------------------------------- laziness
def test_lazy_fields_load_once_and_only_on_access():
    calls = {"spikes": 0, "trials": 0, "sig": 0, "ivl": 0}

    def loader(key, value):
        def load():
            calls[key] += 1
            return value
        return load

    spikes = SpikeTrains.from_list([[0.1, 0.2], [0.3]])
    trials = pd.DataFrame({"start_time": [0.0, 0.15]})
    sig = make_signal(np.arange(5.0), rate=10.0)
    ivl = pd.DataFrame({"start_time": [0.0], "stop_time": [0.4]})
    rec = Recording(spikes=loader("spikes", spikes), trials=loader("trials", trials),
                    signals={"sig": loader("sig", sig)}, intervals={"ivl": loader("ivl", ivl)})

    assert rec.has_spikes and rec.has_trials
    assert "sig" in rec.signals and list(rec.signals) == ["sig"] and len(rec.intervals) == 1
    assert not rec.signals.is_loaded("sig") and not rec.intervals.is_loaded("ivl")
    assert calls == {"spikes": 0, "trials": 0, "sig": 0, "ivl": 0}

    rec.signal("sig")
    rec.signal("sig", at=[0.1])
    assert calls == {"spikes": 0, "trials": 0, "sig": 1, "ivl": 0}
    assert rec.signals.is_loaded("sig")

    assert rec.spikes is spikes and rec.spikes is spikes
    rec.epochs("start_time", (0.0, 0.2), 0.1)
    rec.bin(0.1)
    assert calls == {"spikes": 1, "trials": 1, "sig": 1, "ivl": 0}
    assert rec.intervals["ivl"] is ivl and rec.intervals["ivl"] is ivl
    assert calls["ivl"] == 1


def test_lazy_mapping():
    m = LazyMapping({"a": lambda: 1, "b": 2})
    assert m.is_loaded("b") and not m.is_loaded("a")
    assert "a" in m and "c" not in m and not m.is_loaded("a")
    assert m["a"] == 1 and m.is_loaded("a")
    assert dict(m) == {"a": 1, "b": 2}
    with pytest.raises(KeyError, match=r"'c' is not here; available: \['a', 'b'\]"):
        m["c"]
    with pytest.raises(KeyError, match="'c' is not here"):
        m.is_loaded("c")


def test_close_and_context_manager_call_closer_once():
    n = []
    rec = Recording(spikes=SpikeTrains.from_list([[0.1]]), closer=lambda: n.append(1))
    rec.close()
    rec.close()
    assert n == [1]
    assert rec.spikes.n_spikes == 1          # data already read stays usable
    m = []
    with Recording(closer=lambda: m.append(1)) as rec2:
        assert m == []
    assert m == [1]
    rec2.close()
    del rec2
    assert m == [1]


# ---------------------------------------------------------------------------- errors
def test_missing_fields_are_recording_errors():
    no_spikes = Recording.from_arrays(trials={"start_time": [0.0]},
                                      signals={"x": ([0.0, 1.0], [1.0, 2.0])})
    with pytest.raises(RecordingError, match=r"has no spike trains .* signals \['x'\]") as err:
        no_spikes.epochs("start_time", (0.0, 1.0), 0.1)
    assert isinstance(err.value, NeuroMLError) and isinstance(err.value, OSError)
    with pytest.raises(RecordingError, match="has no spike trains"):
        no_spikes.bin(0.1)

    no_trials = Recording.from_arrays(spike_times=[[0.1]],
                                      intervals={"epochs": pd.DataFrame({"start_time": [0.0]})})
    with pytest.raises(RecordingError, match=r"has no trials table; interval tables present: \['epochs'\]"):
        no_trials.epochs("start_time", (0.0, 1.0), 0.1)
    src = Recording(spikes=SpikeTrains.from_list([[0.1]]), meta={"source": "/data/m1.nwb"})
    with pytest.raises(RecordingError, match="recording '/data/m1.nwb' has no trials"):
        src.epochs("start_time", (0.0, 1.0), 0.1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"align_to": "go"}, RecordingError,
         r"'align_to' parameter of epochs must be a column .* columns: "
         r"\['start_time', 'go_cue', 'condition'\]. Got 'go'"),
        ({"align_to": 3}, RecordingError, "Got 3"),
        ({"align_to": "go_cue"}, RecordingError,
         r"Column 'go_cue' .* has 1 missing \(NaN\) event time\(s\), trials \[1\]"),
        ({"window": (0.5, 0.5)}, ParameterError,
         r"'window' parameter of epochs must have start < stop. Got \(0.5, 0.5\)"),
        ({"window": (1.0, -1.0)}, ParameterError, "must have start < stop"),
        ({"window": (0.0, np.nan)}, ParameterError, "two finite numbers"),
        ({"window": 0.5}, ParameterError, r"must be \(start, stop\) in seconds. Got 0.5"),
        ({"bin_size": 0}, ParameterError,
         r"'bin_size' parameter of epochs must be a float in the range \(0, inf\). Got 0"),
        ({"bin_size": -0.1}, ParameterError, "Got -0.1 instead"),
        ({"bin_size": np.nan}, ParameterError, "Got nan instead"),
        ({"source": "lfp"}, RecordingError, r"has no signal 'lfp'; signals: \['pos', 'speed'\]"),
    ],
)
def test_epochs_errors(kwargs, error, match):
    rec = Recording.from_arrays(
        spike_times=[[0.1, 0.5]],
        trials={"start_time": [0.0, 1.0], "go_cue": [0.2, np.nan], "condition": ["a", "b"]},
        signals={"speed": ([0.0, 1.0], [1.0, 2.0]), "pos": ([0.0, 1.0], [0.0, 0.0])},
    )
    call = {"align_to": "start_time", "window": (-0.1, 0.4), "bin_size": 0.1, **kwargs}
    with pytest.raises(error, match=match):
        rec.epochs(**call)


def test_with_trials_by_interval_table_name_is_lazy_and_equals_the_table():
    rec, trains, trials, _, _ = make_recording(seed=5)
    calls = []

    def load():
        calls.append(1)
        return trials

    rec = Recording(spikes=rec.spikes, intervals={"task": load, "other": trials.iloc[:2]},
                    meta={"identifier": "demo"})
    by_name = rec.with_trials("task")
    assert calls == [] and by_name.has_trials and not rec.has_trials
    da = by_name.epochs("go_cue", (-0.2, 0.5), 0.05)
    assert calls == [1]
    edges = bin_edges(-0.2, 0.5, 0.05)
    np.testing.assert_array_equal(da.values,
                                  reference_epochs(trains, trials["go_cue"].to_numpy(), edges))
    by_frame = rec.with_trials(rec.intervals["task"]).epochs("go_cue", (-0.2, 0.5), 0.05)
    xr.testing.assert_identical(da, by_frame)
    assert calls == [1]  # the interval table is read once, shared with the original
    assert by_name.intervals is rec.intervals and by_name.trials is trials
    assert rec.with_trials("other").epochs("start_time", (0.0, 0.1), 0.1).sizes["trial"] == 2


@pytest.mark.parametrize(
    "value, error, match",
    [
        ("trial", RecordingError,
         r"recording 'demo' has no interval table 'trial'; the 'trials' parameter of "
         r"with_trials must be one of \['epochs', 'task'\] or a DataFrame"),
        (3, ParameterError,
         r"'trials' parameter of with_trials must be a DataFrame or the name of an interval "
         r"table of recording 'demo' \(one of \['epochs', 'task'\]\). Got int"),
        (None, ParameterError, "Got NoneType"),
        ({"start_time": [0.0]}, ParameterError, "Got dict"),
    ],
)
def test_with_trials_refuses_anything_else_at_once(value, error, match):
    table = pd.DataFrame({"start_time": [0.0], "stop_time": [1.0]})
    rec = Recording.from_arrays(spike_times=[[0.1]], intervals={"epochs": table, "task": table},
                                identifier="demo")
    with pytest.raises(error, match=match):
        rec.with_trials(value)
    empty = Recording.from_arrays(spike_times=[[0.1]], identifier="demo")
    with pytest.raises(RecordingError, match=r"has no interval table 'x'.* one of \[\]"):
        empty.with_trials("x")


def test_missing_trials_error_suggests_with_trials_by_name():
    rec = Recording.from_arrays(spike_times=[[0.1]],
                                intervals={"epochs": pd.DataFrame({"start_time": [0.0]})})
    with pytest.raises(RecordingError, match=r"rec.with_trials\(name\)"):
        rec.epochs("start_time", (0.0, 1.0), 0.1)


def test_unknown_signal_lists_signals():
    rec = Recording.from_arrays(signals={"speed": ([0.0, 1.0], [1.0, 2.0])}, identifier="s1")
    with pytest.raises(RecordingError, match=r"recording 's1' has no signal 'pos'; signals: \['speed'\]"):
        rec.signal("pos", at=[0.5])


def test_data_model_doc_examples_run():
    """Every example in docs/data-model.md runs and prints what the page says."""
    page = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"
    result = doctest.testfile(str(page), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 30
    assert result.failed == 0


def test_epochs_keeps_trial_columns_named_like_dimensions():
    trials = pd.DataFrame({"start_time": [1.0, 5.0], "time": [0.3, 0.4], "unit": ["a", "b"],
                           "trial": [10, 11]})
    rec = Recording.from_arrays(spike_times=[[1.1, 5.2], [1.3]], trials=trials)
    ep = rec.epochs("start_time", (0.0, 0.5), 0.25)
    assert ep.dims == ("trial", "time", "unit")
    np.testing.assert_array_equal(ep["trials_time"].values, [0.3, 0.4])
    np.testing.assert_array_equal(ep["trials_unit"].values, ["a", "b"])
    np.testing.assert_array_equal(ep["trials_trial"].values, [10, 11])
    np.testing.assert_array_equal(ep["time"].values, [0.125, 0.375])
    assert ep.sum().item() == 3
