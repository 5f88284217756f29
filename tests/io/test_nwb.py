"""NWB reading and writing on files built in the test (pynwb.testing.mock and Recording)."""

from __future__ import annotations

import os
import warnings
from datetime import UTC, datetime

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pynwb import NWBHDF5IO, TimeSeries
from pynwb.behavior import Position, SpatialSeries
from pynwb.image import ImageSeries
from pynwb.testing.mock.base import mock_TimeSeries
from pynwb.testing.mock.ecephys import mock_ElectricalSeries, mock_Units
from pynwb.testing.mock.file import mock_NWBFile, mock_Subject
from pynwb.testing.mock.ophys import mock_RoiResponseSeries, mock_TwoPhotonSeries

from neuroml.errors import RecordingError
from neuroml.io.nwb import find_recordings, load_recording, write_nwb
from neuroml.io.recording import Recording, make_signal


def _write(nwbfile, path) -> str:
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return str(path)


# ---------------------------------------------------------------------- mock files
@pytest.fixture(scope="module")
def mock_file(tmp_path_factory):
    """An NWB file from pynwb's mock objects with both timing conventions."""
    rng = np.random.default_rng(1)
    nwb = mock_NWBFile(session_description="mock session", identifier="mock-1",
                       subject=mock_Subject(), lab="Mock lab", experimenter=["A. B."])
    mock_Units(num_units=6, max_spikes_per_unit=40, seed=3, nwbfile=nwb)
    rated = mock_TimeSeries(name="rated", data=rng.normal(size=120), rate=40.0,
                            starting_time=2.5, unit="V", description="a rated series")
    stamped = mock_TimeSeries(name="stamped", data=rng.normal(size=(30, 2)),
                              timestamps=np.sort(rng.uniform(0, 10, 30)), unit="cm")
    nwb.add_acquisition(rated)
    nwb.add_acquisition(stamped)
    mock_ElectricalSeries(name="ephys", data=rng.normal(size=(50, 5)), rate=1000.0, nwbfile=nwb)
    mock_RoiResponseSeries(name="dff", data=rng.normal(size=(40, 4)), rate=30.0, n_rois=4,
                           nwbfile=nwb)
    module = nwb.create_processing_module("behavior", "behaviour")
    module.add(Position(name="Position", spatial_series=SpatialSeries(
        name="position", data=rng.normal(size=(25, 2)), reference_frame="origin",
        timestamps=np.arange(25) * 0.1)))
    nwb.add_trial_column("condition", "stimulus condition")
    for k in range(4):
        nwb.add_trial(start_time=float(k), stop_time=k + 0.5, condition=f"c{k % 2}")
    nwb.add_epoch(start_time=0.0, stop_time=4.0, tags=["run"])
    path = _write(nwb, tmp_path_factory.mktemp("mock") / "mock.nwb")
    return path


def test_mock_file_spikes_equal_h5py(mock_file):
    with load_recording(mock_file) as rec, h5py.File(mock_file, "r") as h5:
        sp = rec.spikes
        np.testing.assert_array_equal(sp.times, h5["units/spike_times"][:])
        np.testing.assert_array_equal(sp.offsets[1:], h5["units/spike_times_index"][:])
        np.testing.assert_array_equal(sp.unit_ids, h5["units/id"][:])
        assert sp.units["unit_name"].tolist() == [f"unit_{i}" for i in range(6)]
        assert "spike_times" not in sp.units.columns


def test_mock_file_both_timing_conventions(mock_file):
    with load_recording(mock_file) as rec, h5py.File(mock_file, "r") as h5:
        rated = rec.signals["rated"]
        assert rated.dims == ("time", "channel") and rated.shape == (120, 1)
        np.testing.assert_allclose(rated["time"].values, 2.5 + np.arange(120) / 40.0, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(rated.values[:, 0], h5["acquisition/rated/data"][:])
        assert rated.attrs["rate"] == 40.0 and rated.attrs["unit"] == "V"
        assert rated.attrs["description"] == "a rated series"
        stamped = rec.signals["stamped"]
        np.testing.assert_array_equal(stamped["time"].values, h5["acquisition/stamped/timestamps"][:])
        np.testing.assert_array_equal(stamped.values, h5["acquisition/stamped/data"][:])
        assert stamped["channel"].values.tolist() == [0, 1]
        assert stamped.attrs["timestamps_unit"] == "seconds"


def test_mock_file_channels_are_electrode_and_roi_ids(mock_file):
    with load_recording(mock_file) as rec, h5py.File(mock_file, "r") as h5:
        ephys = rec.signals["ephys"]
        rows = h5["acquisition/ephys/electrodes"][:]
        ids = h5["general/extracellular_ephys/electrodes/id"][:]
        np.testing.assert_array_equal(ephys["channel"].values, ids[rows])
        dff = rec.signals["dff"]
        assert dff.shape == (40, 4) and dff.attrs["neurodata_type"] == "RoiResponseSeries"
        assert dff["channel"].values.tolist() == list(range(4))
        pos = rec.signals["position"]
        np.testing.assert_array_equal(pos.values, h5["processing/behavior/Position/position/data"][:])
        assert rec.meta["signal_paths"]["position"] == "processing/behavior/Position/position"


def test_mock_file_trials_epochs_meta(mock_file):
    with load_recording(mock_file) as rec:
        trials = rec.trials
        assert trials.index.name == "trial" and len(trials) == 4
        assert trials["condition"].tolist() == ["c0", "c1", "c0", "c1"]
        np.testing.assert_array_equal(trials["start_time"].to_numpy(), [0.0, 1.0, 2.0, 3.0])
        assert list(rec.intervals) == ["epochs"]
        assert rec.intervals["epochs"]["stop_time"].tolist() == [4.0]
        meta = rec.meta
        assert meta["identifier"] == "mock-1" and meta["session_description"] == "mock session"
        assert meta["lab"] == "Mock lab" and meta["experimenter"] == ["A. B."]
        assert meta["subject"]["description"] == "this is a mock mouse."
        assert meta["subject"]["sex"] == "F" and meta["subject"]["age"] == "P50D"
        assert meta["file"] == "mock.nwb" and meta["source"] == mock_file
        assert meta["nwb_version"].startswith("2.")


def test_loading_is_lazy_and_close_ends_reads(mock_file):
    rec = load_recording(mock_file)
    assert not any(rec.signals.is_loaded(k) for k in rec.signals)
    assert not any(rec.intervals.is_loaded(k) for k in rec.intervals)
    assert rec.has_spikes and rec.has_trials
    first = rec.signals["rated"]
    assert rec.signals.is_loaded("rated") and not rec.signals.is_loaded("stamped")
    rec.close()
    assert first.sum().item() == pytest.approx(float(first.values.sum()))  # still usable
    with pytest.raises(RecordingError, match=r"closed.*mock\.nwb|mock\.nwb.*closed"):
        rec.signals["stamped"]


def test_loaders_keep_the_file_open_while_alive(mock_file):
    # the Recording itself is gone after these expressions; its loaders still read
    assert load_recording(mock_file).signals["rated"].shape == (120, 1)
    intervals = load_recording(mock_file).intervals
    assert len(intervals["epochs"]) == 1


def test_context_manager_closes(mock_file):
    with load_recording(mock_file) as rec:
        assert rec.spikes.n_spikes > 0
    with pytest.raises(RecordingError):
        rec.signals["stamped"]


# ---------------------------------------------------------------------- naming, skipping
def test_colliding_names_get_their_path(tmp_path):
    nwb = mock_NWBFile()
    for module_name in ("behavior", "tracking"):
        module = nwb.create_processing_module(module_name, "two modules, same series name")
        module.add(Position(name="Position", spatial_series=SpatialSeries(
            name="position", data=np.arange(10.0)[:, None] * [1, 2], reference_frame="o",
            rate=10.0)))
    nwb.add_acquisition(mock_TimeSeries(name="speed", data=np.ones(5), rate=1.0))
    with load_recording(_write(nwb, tmp_path / "c.nwb")) as rec:
        assert sorted(rec.signals) == ["behavior/Position/position", "speed",
                                       "tracking/Position/position"]
        assert rec.signals["tracking/Position/position"].shape == (10, 2)


def test_external_and_3d_image_series_are_listed_as_skipped(tmp_path):
    nwb = mock_NWBFile()
    nwb.add_acquisition(ImageSeries(name="movie", external_file=["movie.avi"], starting_frame=[0],
                                    format="external", timestamps=[0.0, 0.1], unit="n.a."))
    mock_TwoPhotonSeries(name="twop", data=np.zeros((4, 3, 3)), nwbfile=nwb)
    nwb.add_acquisition(mock_TimeSeries(name="kept", data=np.ones(3), rate=1.0))
    with load_recording(_write(nwb, tmp_path / "img.nwb")) as rec:
        assert list(rec.signals) == ["kept"]
        reasons = {d["path"]: d["reason"] for d in rec.meta["skipped"]}
        assert "external" in reasons["acquisition/movie"]
        assert "(4, 3, 3)" in reasons["acquisition/twop"]


def test_frame_index_timestamps_are_kept_with_a_note(tmp_path):
    nwb = mock_NWBFile()
    nwb.add_acquisition(mock_TimeSeries(name="pose", data=np.ones((6, 2)), timestamps=np.arange(6.0)))
    with load_recording(_write(nwb, tmp_path / "f.nwb")) as rec:
        pose = rec.signals["pose"]
        np.testing.assert_array_equal(pose["time"].values, np.arange(6.0))
        assert "frame" in pose.attrs["timestamps_note"]


def test_unsorted_spikes_in_a_file_are_sorted_with_a_warning(tmp_path):
    nwb = mock_NWBFile()
    nwb.add_unit(spike_times=[0.1, 0.2, 0.3])
    nwb.add_unit(spike_times=[0.5, 0.3, 0.4, 0.1])
    path = _write(nwb, tmp_path / "unsorted.nwb")
    with load_recording(path) as rec:
        with pytest.warns(UserWarning, match=r"unsorted\.nwb.*sorted within each unit"):
            sp = rec.spikes
        assert sp.counts.tolist() == [3, 4]
        np.testing.assert_array_equal(sp[1], [0.1, 0.3, 0.4, 0.5])
        np.testing.assert_array_equal(sp[0], [0.1, 0.2, 0.3])


# ---------------------------------------------------------------------- find_recordings
def test_find_recordings_recursive_sorted_and_skips_zarr_insides(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for rel in ("b/s2.nwb", "a/deep/s1.nwb", "a/s0.nwb", "notes.txt", "a/.hidden.nwb"):
        (tmp_path / rel).write_bytes(b"")
    store = tmp_path / "b" / "z.zarr.nwb"
    (store / "acquisition").mkdir(parents=True)
    (store / ".zgroup").write_text("{}")
    (store / "acquisition" / "inner.nwb").write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_recordings(tmp_path)]
    assert found == ["a/deep/s1.nwb", "a/s0.nwb", "b/s2.nwb", "b/z.zarr.nwb"]
    assert [p.name for p in find_recordings(tmp_path, pattern="s*")] == ["s1.nwb", "s0.nwb", "s2.nwb"]
    assert find_recordings(tmp_path / "a" / "s0.nwb") == [tmp_path / "a" / "s0.nwb"]


# ---------------------------------------------------------------------- Zarr
def test_zarr_nwb_directory_loads(tmp_path):
    pytest.importorskip("hdmf_zarr")
    from hdmf_zarr.nwb import NWBZarrIO

    for name in ("rec.nwb.zarr", "plain_store"):
        nwb = mock_NWBFile(identifier="zarr-1")
        nwb.add_acquisition(mock_TimeSeries(name="sig", data=np.arange(8.0), rate=4.0))
        nwb.add_unit(spike_times=[0.5, 1.5])
        path = tmp_path / name
        with NWBZarrIO(str(path), mode="w") as io:
            io.write(nwb)
        with load_recording(path) as rec:
            np.testing.assert_array_equal(rec.signals["sig"].values[:, 0], np.arange(8.0))
            np.testing.assert_allclose(rec.signals["sig"]["time"].values, np.arange(8) / 4.0)
            np.testing.assert_array_equal(rec.spikes.times, [0.5, 1.5])
            assert rec.meta["identifier"] == "zarr-1"
    assert [p.name for p in find_recordings(tmp_path)] == ["rec.nwb.zarr"]


# ---------------------------------------------------------------------- writing
@pytest.fixture()
def demo_recording():
    rng = np.random.default_rng(7)
    units = pd.DataFrame({
        "quality": ["good", "mua", "good"],
        "depth": [110.5, 220.0, 330.25],
        "channel": [4, 9, 17],
        "isolated": [True, False, True],
    })
    trials = pd.DataFrame({
        "start_time": [0.0, 1.0, 2.0, 3.0, 4.0],
        "stop_time": [0.8, 1.8, 2.8, 3.8, np.nan],
        "go_cue": [0.2, 1.25, 2.2, 3.3, 4.2],
        "condition": ["left", "right", "left", "right", "left"],
        "n_licks": [3, 0, 5, 2, 1],
        "reward": [0.5, 0.0, 1.5, 0.0, 2.0],
        "correct": [True, False, True, False, True],
    })
    epochs = pd.DataFrame({"start_time": [0.0, 2.5], "stop_time": [2.5, 5.0],
                           "label": ["task", "rest"]})
    position = make_signal(rng.normal(size=(60, 2)), np.sort(rng.uniform(0, 5, 60)),
                           channels=["x", "y"], name="position", unit="cm",
                           description="head position")
    licks = make_signal(rng.normal(size=200), rate=40.0, starting_time=0.25, name="lick_sensor",
                        unit="V")
    spikes = [np.sort(rng.uniform(0, 5, n)) for n in (50, 7, 0)]
    return Recording.from_arrays(
        spike_times=spikes, unit_ids=[12, 3, 40], units=units, trials=trials,
        intervals={"epochs": epochs}, signals={"position": position, "lick_sensor": licks},
        identifier="demo-session", session_description="round trip",
        session_start_time=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        subject={"subject_id": "m42", "species": "Mus musculus", "sex": "F", "age": "P90D",
                 "genotype": "wt"},
        lab="Test lab", experimenter=["Ada"],
    )


def _assert_same(rec: Recording, back: Recording):
    assert back.spikes.equals(rec.spikes)
    np.testing.assert_array_equal(back.spikes.unit_ids, [12, 3, 40])
    pd.testing.assert_frame_equal(back.spikes.units, rec.spikes.units, check_dtype=False)
    assert back.spikes.units["isolated"].dtype == bool
    assert back.spikes.units["channel"].dtype.kind == "i"
    pd.testing.assert_frame_equal(back.trials, rec.trials, check_dtype=False)
    assert back.trials["correct"].dtype == bool and back.trials["n_licks"].dtype.kind == "i"
    assert np.isnan(back.trials["stop_time"].iloc[-1])
    pd.testing.assert_frame_equal(back.intervals["epochs"].reset_index(drop=True),
                                  rec.intervals["epochs"].reset_index(drop=True), check_dtype=False)
    assert sorted(back.signals) == sorted(rec.signals)
    for name in rec.signals:
        a, b = rec.signals[name], back.signals[name]
        xr.testing.assert_equal(a.drop_attrs(), b.drop_attrs())
        for key in ("unit", "description", "rate"):
            if key in a.attrs:
                assert b.attrs[key] == a.attrs[key]
    for key in ("identifier", "session_description", "lab", "experimenter"):
        assert back.meta[key] == rec.meta[key]
    assert back.meta["session_start_time"] == rec.meta["session_start_time"]
    for key, value in rec.meta["subject"].items():
        assert back.meta["subject"][key] == value


def test_round_trip_equal(tmp_path, demo_recording):
    path = write_nwb(demo_recording, tmp_path / "demo.nwb")
    assert path == tmp_path / "demo.nwb" and os.listdir(tmp_path) == ["demo.nwb"]
    with load_recording(path) as back:
        _assert_same(demo_recording, back)
        assert back.signals["position"]["channel"].values.tolist() == ["x", "y"]
        assert back.signals["lick_sensor"].attrs["rate"] == 40.0
        # what neuroml wrote is plain NWB: h5py sees the same numbers
        with h5py.File(path, "r") as h5:
            np.testing.assert_array_equal(h5["units/id"][:], [12, 3, 40])
            np.testing.assert_array_equal(h5["units/spike_times"][:], demo_recording.spikes.times)
            np.testing.assert_array_equal(h5["intervals/trials/n_licks"][:], [3, 0, 5, 2, 1])
        # a second trip through the file loaded back gives the same again
        again = write_nwb(back, tmp_path / "again.nwb")
    with load_recording(again) as back2:
        _assert_same(demo_recording, back2)


def test_to_nwb_and_overwrite(tmp_path, demo_recording):
    path = demo_recording.to_nwb(tmp_path / "x.nwb")
    with pytest.raises(RecordingError, match=r"x\.nwb.*overwrite=True"):
        demo_recording.to_nwb(path)
    small = Recording.from_arrays(spike_times=[[0.5]], identifier="small")
    write_nwb(small, path, overwrite=True)
    with load_recording(path) as rec:
        assert rec.meta["identifier"] == "small" and rec.spikes.n_spikes == 1
        assert rec.trials is None and len(rec.signals) == 0
        start = rec.meta["session_start_time"]
        assert abs((datetime.now(UTC) - start).total_seconds()) < 600  # default: now
    assert sorted(os.listdir(tmp_path)) == ["x.nwb"]  # no temporary files left


def test_non_integer_unit_ids_and_missing_times_round_trip(tmp_path):
    rec = Recording.from_arrays(spike_times=[[0.1, 0.2], [0.3]], unit_ids=["a1", "b7"],
                                trials={"choice": [0, 1, 1]})
    with pytest.warns(UserWarning, match="start_time"):
        path = write_nwb(rec, tmp_path / "s.nwb")
    with load_recording(path) as back:
        assert back.spikes.unit_ids.tolist() == ["a1", "b7"]
        assert "neuroml_unit_id" not in back.spikes.units.columns
        assert back.trials["choice"].tolist() == [0, 1, 1]
        assert back.trials["start_time"].isna().all()


def test_unstorable_columns_are_reported(tmp_path):
    trials = pd.DataFrame({"start_time": [0.0, 1.0], "stop_time": [1.0, 2.0],
                           "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                           "waves": [np.zeros((2, 3)), np.ones(4)]})
    rec = Recording.from_arrays(trials=trials)
    with pytest.warns(UserWarning, match=r"'when' \(datetime.*'waves'"):
        path = write_nwb(rec, tmp_path / "cols.nwb")
    with load_recording(path) as back:
        assert list(back.trials.columns) == ["start_time", "stop_time"]


def test_ragged_and_array_unit_columns_round_trip(tmp_path):
    units = pd.DataFrame({"waveform_mean": [np.arange(6.0).reshape(2, 3), np.ones((2, 3))],
                          "tags": [["a", "b"], ["c"]],
                          "obs_intervals": [np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[0.5, 4.0]])]})
    rec = Recording.from_arrays(spike_times=[[0.1], [0.2, 0.3]], units=units)
    path = write_nwb(rec, tmp_path / "r.nwb")
    with load_recording(path) as back:
        np.testing.assert_array_equal(np.stack(back.spikes.units["waveform_mean"]),
                                      np.stack(units["waveform_mean"]))
        assert [list(v) for v in back.spikes.units["tags"]] == [["a", "b"], ["c"]]
        for got, want in zip(back.spikes.units["obs_intervals"], units["obs_intervals"]):
            np.testing.assert_array_equal(got, want)


def test_written_file_reads_with_pynwb(tmp_path, demo_recording):
    path = write_nwb(demo_recording, tmp_path / "p.nwb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            series = nwb.processing["neuroml"]["lick_sensor"]
            assert isinstance(series, TimeSeries) and series.rate == 40.0
            assert series.starting_time == 0.25
            assert nwb.subject.subject_id == "m42"
            assert len(nwb.trials) == 5 and len(nwb.units) == 3


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_file_permissions_follow_the_umask(tmp_path, demo_recording, umask):
    old = os.umask(umask)
    try:
        path = write_nwb(demo_recording, tmp_path / "m.nwb")
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0o600
        write_nwb(demo_recording, path, overwrite=True)
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    finally:
        os.umask(old)
    assert os.listdir(tmp_path) == ["m.nwb"]


def test_large_arrays_are_compressed_and_read_back_exactly(tmp_path):
    rng = np.random.default_rng(7)
    # 2 units with 60k + 50k spikes (110k > 100k: compressed); a 150k-sample signal with
    # irregular timestamps (data and timestamps compressed); a short signal (not compressed)
    spike_times = [np.sort(rng.uniform(0, 600, 60_000)), np.sort(rng.uniform(0, 600, 50_000))]
    stamps = np.cumsum(rng.uniform(0.0005, 0.0015, 150_000))
    wave = rng.normal(size=150_000).astype(np.float32)
    rec = Recording.from_arrays(spike_times=spike_times,
                                signals={"long": (stamps, wave), "short": (np.arange(50.0), np.ones(50))})
    path = write_nwb(rec, tmp_path / "big.nwb")
    with h5py.File(path, "r") as h5:
        spikes = h5["units/spike_times"]
        long_data = h5["processing/neuroml/long/data"]
        long_stamps = h5["processing/neuroml/long/timestamps"]
        for dset in (spikes, long_data, long_stamps):
            assert (dset.compression, dset.compression_opts, dset.shuffle) == ("gzip", 4, True)
        for name in ("units/spike_times_index", "processing/neuroml/short/data"):
            assert h5[name].compression is None
        np.testing.assert_array_equal(spikes[:], np.concatenate(spike_times))
        np.testing.assert_array_equal(long_data[:], wave)
        np.testing.assert_array_equal(long_stamps[:], stamps)
        assert long_data.dtype == np.float32
    with load_recording(path) as back:
        for got, want in zip(back.spikes, spike_times):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(back.signals["long"].values[:, 0], wave)
        np.testing.assert_array_equal(back.signals["long"]["time"].values, stamps)
