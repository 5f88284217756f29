"""Every real NWB recording in shared/data/real opens and exposes what it holds.

Reference values come from reading the same files directly with h5py (or zarr for the
Zarr store), never through neuroml or pynwb, and from the counts in SOURCES.md.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

from neuroml.errors import RecordingError
from neuroml.io.nwb import find_recordings, load_recording
from tests.conftest import REAL_DATA

FILES = sorted(p.name for p in REAL_DATA.glob("*.nwb")) if REAL_DATA.is_dir() else []
pytestmark = pytest.mark.skipif(not FILES, reason=f"no real NWB files in {REAL_DATA}")

HUMAN = "human_mtl_units_trials_rutishauser.nwb"
ZARR = "mouse_dynamic_foraging_photometry_aind_717531.zarr.nwb"
ALLEN_SESSION = "allen_vcnp_session_truncated.nwb"
# Single-sample placeholder series whose only timestamp is NaN in the source files.
NAN_PLACEHOLDERS = {
    "mouse_dynamic_foraging_bandit_aind_689514.nwb": {"FIP_falling_time", "FIP_rising_time"},
    "mouse_dynamic_foraging_bandit_aind_697062.nwb": {"FIP_falling_time", "FIP_rising_time"},
    "mouse_dynamic_foraging_bandit_aind_703548.nwb": {"FIP_falling_time", "FIP_rising_time",
                                                       "optogenetics_time"},
    ZARR: {"optogenetics_time"},
}


# ---------------------------------------------------------------------- raw access
def _open_raw(path):
    """The file as an h5py File or a zarr Group (both index like dicts of arrays)."""
    if path.is_dir():
        import zarr

        return contextlib.nullcontext(zarr.open_group(str(path), mode="r"))
    import h5py

    return h5py.File(path, "r")


def _is_group(item) -> bool:
    return hasattr(item, "keys") and not hasattr(item, "dtype")


def _text(value) -> str:
    value = value[()] if hasattr(value, "shape") else value
    if isinstance(value, np.ndarray):
        value = value.ravel()[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def _raw_series(raw) -> set[str]:
    """Paths of every group that looks like a TimeSeries (data + timestamps or starting_time)."""
    import h5py

    found = set()

    def walk(group, prefix):
        for name in group.keys():
            if isinstance(group, h5py.Group) and isinstance(group.get(name, getlink=True), h5py.SoftLink):
                continue  # a link to an object found at its own place
            item = group[name]
            if not _is_group(item):
                continue
            keys = set(item.keys())
            if "data" in keys and keys & {"timestamps", "starting_time"}:
                found.add(f"{prefix}/{name}")
            else:
                walk(item, f"{prefix}/{name}")

    for top in ("acquisition", "processing", "stimulus/presentation"):
        if top in raw:
            walk(raw[top], top)
    return found


def _raw_time(group) -> np.ndarray:
    n = group["data"].shape[0]
    if "timestamps" in group:
        return np.asarray(group["timestamps"][:], dtype=np.float64)
    start = group["starting_time"]
    return float(start[()]) + np.arange(n) / float(start.attrs["rate"])


def _raw_columns(group) -> set[str]:
    """Names of the VectorData columns stored in a table's group (its ``colnames`` or not)."""
    out = set()
    for name in group.keys():
        kind = group[name].attrs.get("neurodata_type")
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind not in ("VectorIndex", "ElementIdentifiers") and name != "id":
            out.add(name)
    return out


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def recordings():
    """Each real file opened once per module (opening is lazy and cheap)."""
    opened = {}

    def get(name):
        if name not in opened:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pynwb's notes about old schemas
                opened[name] = load_recording(REAL_DATA / name)
        return opened[name]

    yield get
    for rec in opened.values():
        rec.close()


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def test_find_recordings_lists_every_real_file():
    found = find_recordings(REAL_DATA)
    assert [p.name for p in found] == FILES
    assert ZARR in FILES and len(FILES) == 18  # 17 HDF5 files + 1 Zarr store (SOURCES.md)


# ---------------------------------------------------------------------- every file
@pytest.mark.parametrize("name", FILES)
def test_opens_and_exposes_every_series(recordings, name):
    rec = recordings(name)
    with _open_raw(REAL_DATA / name) as raw:
        assert rec.meta["identifier"] == _text(raw["identifier"])
        assert rec.meta["source"] == str(REAL_DATA / name) and rec.meta["file"] == name
        assert rec.meta["session_start_time"] is not None
        assert rec.meta["nwb_version"] == _text(raw.attrs["nwb_version"])
        series = _raw_series(raw)
        paths = rec.meta["signal_paths"]
        skipped = {d["path"] for d in rec.meta["skipped"]}
        # every TimeSeries of the file is a signal or listed as skipped, nothing else
        assert set(paths.values()) <= series
        assert series - set(paths.values()) == skipped & series
        failing = set()
        for sig_name, path in paths.items():
            group = raw[path]
            try:
                sig = _quiet(lambda sig_name=sig_name: rec.signals[sig_name])
            except RecordingError as err:
                assert name in str(err) and path in str(err)
                assert np.isnan(group["timestamps"][:]).any()
                failing.add(sig_name)
                continue
            data = np.asarray(group["data"][:])
            assert sig.shape == (data.shape[0], int(np.prod(data.shape[1:], dtype=int)))
            np.testing.assert_array_equal(sig.values, data.reshape(sig.shape))
            np.testing.assert_allclose(sig["time"].values, _raw_time(group), rtol=1e-12, atol=1e-9)
            assert sig.attrs["nwb_path"] == path
        assert failing == NAN_PLACEHOLDERS.get(name, set())
        for iv_name, path in rec.meta["interval_paths"].items():
            table = rec.intervals[iv_name]
            assert len(table) == raw[path]["id"].shape[0]
            assert set(table.columns) == _raw_columns(raw[path])


@pytest.mark.parametrize("name", [n for n in FILES if not n.endswith(".zarr.nwb")])
def test_units_equal_h5py(recordings, name):
    rec = recordings(name)
    with _open_raw(REAL_DATA / name) as raw:
        if "units" not in raw:
            assert not rec.has_spikes and rec.spikes is None
            return
        times = raw["units/spike_times"][:]
        index = raw["units/spike_times_index"][:]
        ids = raw["units/id"][:]
        if index[-1] != times.size:  # the Allen file was truncated to 10 elements per dataset
            assert name == ALLEN_SESSION
            with pytest.raises(RecordingError, match=rf"{name}.*ends at {index[-1]}.*{times.size}"):
                _ = rec.spikes
            return
        sp = _quiet(lambda: rec.spikes)
        np.testing.assert_array_equal(sp.offsets, np.concatenate([[0], index]))
        np.testing.assert_array_equal(sp.unit_ids, ids)
        unit = np.repeat(np.arange(ids.size), np.diff(sp.offsets))
        np.testing.assert_array_equal(sp.times, times[np.lexsort((times, unit))])
        np.testing.assert_array_equal(np.sort(sp.times), np.sort(times))
        assert set(sp.units.columns) == _raw_columns(raw["units"]) - {"spike_times"}


@pytest.mark.parametrize("name", FILES)
def test_trials_equal_raw(recordings, name):
    rec = recordings(name)
    with _open_raw(REAL_DATA / name) as raw:
        if "intervals/trials" not in raw:
            assert rec.trials is None
            return
        group = raw["intervals/trials"]
        trials = rec.trials
        assert trials.index.name == "trial"
        np.testing.assert_array_equal(trials.index.to_numpy(), group["id"][:])
        assert set(trials.columns) == _raw_columns(group)
        for col in ("start_time", "stop_time"):
            np.testing.assert_array_equal(trials[col].to_numpy(dtype=float), group[col][:])


# ---------------------------------------------------------------------- SOURCES.md counts
def test_human_units_and_trial_tables(recordings):
    rec = recordings(HUMAN)
    sp = rec.spikes
    assert len(sp) == 35 and sp.n_spikes == 214_278
    counts = sp.counts
    assert (counts.min(), np.median(counts), counts.max()) == (520, 3701, 20_736)
    assert sp.span[0] == pytest.approx(0.008, abs=1e-3) and sp.span[1] == pytest.approx(2821, abs=1)
    assert rec.trials is None
    assert {k: len(rec.intervals[k]) for k in rec.intervals} == {
        "encoding_table": 90, "recognition_table": 180, "timediscrimination_table": 180}
    enc = rec.intervals["encoding_table"]
    assert {"fixcross_time", "boundary1_time", "stimCategory", "Clip_name"} <= set(enc.columns)
    assert all(isinstance(v, str) for v in enc["Clip_name"])  # fixed-length bytes decoded
    assert rec.signals["events"].shape == (1717, 1)
    assert rec.signals["events"]["time"].values[0] == pytest.approx(-1.5429e9, rel=1e-4)
    assert "decrease" in rec.signals["events"].attrs["timestamps_note"]
    assert [d["path"] for d in rec.meta["skipped"]] == ["stimulus/presentation/StimulusPresentation_encoding"]
    assert rec.meta["subject"]["species"] == "Homo sapiens" and rec.meta["lab"] == "Rutishauser"


def test_human_trials_by_interval_table_name(recordings):
    """``with_trials("recognition_table")`` reads the named table; epochs match NumPy."""
    rec = recordings(HUMAN)
    with _open_raw(REAL_DATA / HUMAN) as raw:
        starts = raw["intervals/recognition_table/start_time"][()]
    da = rec.with_trials("recognition_table").epochs("start_time", (-0.5, 1.0), 0.25)
    assert da.shape == (180, 6, 35)
    assert {"resp_value", "old_new", "accuracy", "confidence", "RT"} <= set(da.coords)
    np.testing.assert_allclose(da["start_time"].values, starts, rtol=1e-12)
    sp = rec.spikes
    edges = -0.5 + 0.25 * np.arange(7)
    expected = np.stack([
        np.stack([np.histogram(sp[u] - t0, edges)[0] for u in sp.unit_ids], axis=-1)
        for t0 in starts
    ])
    np.testing.assert_array_equal(da.values, expected)
    with pytest.raises(RecordingError, match=r"no interval table 'trials'.*'recognition_table'"):
        rec.with_trials("trials")


def test_human_encoding_table_epochs_match_numpy(recordings):
    rec = recordings(HUMAN)
    enc = rec.intervals["encoding_table"]
    da = rec.with_trials(enc).epochs("start_time", (-0.5, 1.5), 0.1)
    assert da.shape == (90, 20, 35)
    assert set(enc.columns) <= set(da.coords)
    sp = rec.spikes
    edges = -0.5 + 0.1 * np.arange(21)
    expected = np.stack([
        np.stack([np.histogram(sp[u] - t0, edges)[0] for u in sp.unit_ids], axis=-1)
        for t0 in enc["start_time"].to_numpy()
    ])
    np.testing.assert_array_equal(da.values, expected)
    np.testing.assert_allclose(da["time"].values, (edges[:-1] + edges[1:]) / 2, atol=1e-12)


def test_postsub_units_and_epoch(recordings):
    rec = recordings("mouse_postsub_units_pynapple_phy.nwb")
    assert len(rec.spikes) == 3 and rec.spikes.n_spikes == 21_354
    assert sorted(rec.spikes.counts.tolist()) == [4_690, 5_644, 11_020]
    epochs = rec.intervals["epochs"]
    assert len(epochs) == 1 and list(epochs["tags"].iloc[0]) == ["wake"]
    assert epochs["stop_time"].iloc[0] == pytest.approx(1087.5, abs=0.1)
    assert len(rec.signals) == 0 and rec.meta["experimenter"] == ["guillaume"]


@pytest.mark.parametrize("name,n_trials,n_spikes", [
    ("mouse_alm_unit_trials_economo_anm369963.nwb", 178, 1_679),
    ("mouse_alm_unit_trials_economo_anm372793.nwb", 340, 2_434),
])
def test_alm_trials_keep_nan_stop_times(recordings, name, n_trials, n_spikes):
    rec = recordings(name)
    trials = rec.trials
    assert len(trials) == n_trials and trials["stop_time"].isna().all()
    assert {"type", "response", "stim_present", "is_good", "cue_start_time", "pole_in_time",
            "pole_out_time"} <= set(trials.columns)
    assert len(rec.spikes) == 1 and rec.spikes.n_spikes == n_spikes
    assert sorted(rec.signals) == ["lick_left_times", "lick_right_times"]


@pytest.mark.parametrize("name,n_trials,n_cols,choices,rewarded", [
    ("mouse_dynamic_foraging_bandit_aind_703548.nwb", 555, 65, (179, 326, 50), 271),
    ("mouse_dynamic_foraging_bandit_aind_689514.nwb", 432, 66, (308, 75, 49), 239),
    ("mouse_dynamic_foraging_bandit_aind_697062.nwb", 470, 46, (299, 127, 44), 191),
    (ZARR, 725, 59, (449, 223, 53), None),
])
def test_dynamic_foraging_trials(recordings, name, n_trials, n_cols, choices, rewarded):
    trials = recordings(name).trials
    assert trials.shape == (n_trials, n_cols)
    response = trials["animal_response"].to_numpy()
    assert tuple(int(np.sum(response == k)) for k in (0, 1, 2)) == choices
    if rewarded is not None:
        assert int((trials["rewarded_historyL"] | trials["rewarded_historyR"]).sum()) == rewarded


def test_zarr_photometry(recordings):
    rec = recordings(ZARR)
    assert rec.meta["nwb_version"] == "2.6.0" and rec.meta["subject"]["subject_id"] == "717531"
    for channel in ("G", "Iso", "R"):
        for fiber in (1, 2):
            assert f"{channel}_{fiber}" in rec.signals and f"{channel}_{fiber}_preprocessed" in rec.signals
    g1 = rec.signals["G_1"]
    assert g1.shape == (109_027, 1)
    t = g1["time"].values
    assert 4_700 < t[-1] - t[0] < 4_900
    assert 28 < 1 / np.median(np.diff(t)) < 32  # about 30 Hz
    assert rec.signals["G_1_preprocessed"].shape == (218_054, 1)  # the source's quirk


def test_scholz_activity_and_position(recordings):
    rec = recordings("celegans_wholebrain_calcium_position_scholz2018.nwb")
    activity = [k for k in rec.signals if k.startswith("Activity_")]
    assert len(activity) == 62 and len(rec.signals) == 63
    assert all(rec.signals[k].shape == (2_244, 1) for k in activity)
    pos = rec.signals["ss_2D"]
    assert pos.shape == (2_244, 2) and pos.attrs["neurodata_type"] == "SpatialSeries"
    assert rec.meta["signal_paths"]["ss_2D"] == "acquisition/Tracked 2D position/ss_2D"
    assert pos["time"].values[-1] == pytest.approx(439.8, abs=0.1)


def test_dlc_pose_series_in_frames(recordings):
    rec = recordings("mouse_openfield_pose_dlc.nwb")
    assert sorted(rec.signals) == ["ind1_leftear", "ind1_rightear", "ind1_snout", "ind1_tailbase"]
    for name in rec.signals:
        sig = rec.signals[name]
        assert sig.shape == (2_330, 2) and sig.attrs["neurodata_type"] == "PoseEstimationSeries"
        np.testing.assert_array_equal(sig["time"].values, np.arange(2_330.0))
        assert "frame" in sig.attrs["timestamps_note"]
        assert sig["confidence"].shape == (2_330,) and 0 <= float(sig["confidence"].min()) <= 1


def test_ophys_rois(recordings):
    rec = recordings("ophys_segmentation_roiextractors.nwb")
    assert sorted(rec.signals) == ["Deconvolved", "Neuropil", "RoiResponseSeries"]
    for name in rec.signals:
        sig = rec.signals[name]
        assert sig.shape == (250, 15) and sig.attrs["rate"] == 10.0
        assert sig["channel"].values.tolist() == list(range(15))
        assert sig["time"].values[-1] == pytest.approx(24.9)
    reasons = {d["path"]: d["reason"] for d in rec.meta["skipped"]}
    assert "table" in reasons["processing/ophys/ImageSegmentation/PlaneSegmentation"]


@pytest.mark.parametrize("name,kinds,n_samples,rate", [
    ("mouse_ca1_icephys_cc_ferguson2015.nwb",
     {"CurrentClampSeries": 13, "CurrentClampStimulusSeries": 13}, {20_000}, {10_000.0}),
    ("mouse_icephys_cc_lantyer2018.nwb",
     {"CurrentClampSeries": 10, "CurrentClampStimulusSeries": 10}, {23_200}, {20_000.0}),
    ("mouse_icephys_vc_lantyer2018.nwb",
     {"VoltageClampSeries": 14, "VoltageClampStimulusSeries": 14}, {19_750}, {50_000.0}),
    ("celegans_ash_icephys_vc_goodman.nwb",
     {"VoltageClampSeries": 56, "VoltageClampStimulusSeries": 56}, None, {5_000.0, 10_000.0}),
    ("icephys_cc_abf_nwb2beta_ipfx.nwb",
     {"CurrentClampSeries": 2, "CurrentClampStimulusSeries": 1}, {900_000}, {50_000.0}),
])
def test_icephys_sweeps(recordings, name, kinds, n_samples, rate):
    rec = recordings(name)
    sweeps = {k: rec.signals[k] for k in rec.signals}
    found: dict[str, int] = {}
    for sig in sweeps.values():
        found[sig.attrs["neurodata_type"]] = found.get(sig.attrs["neurodata_type"], 0) + 1
    assert found == kinds
    lengths = {sig.shape[0] for sig in sweeps.values()}
    if n_samples is None:
        assert min(lengths) == 200 and max(lengths) == 1_050
    else:
        assert lengths == n_samples
    assert {round(sig.attrs["rate"], 6) for sig in sweeps.values()} == rate


def test_goodman_sweeps_span(recordings):
    rec = recordings("celegans_ash_icephys_vc_goodman.nwb")
    starts = [float(rec.signals[k]["time"].values[0]) for k in rec.signals]
    stops = [float(rec.signals[k]["time"].values[-1]) for k in rec.signals]
    assert max(stops) - min(starts) == pytest.approx(19.2, abs=0.05)
    assert "acquisition/index_000" in rec.signals and "stimulus/index_000" in rec.signals


def test_allen_truncated_files(recordings):
    rec = recordings(ALLEN_SESSION)
    assert len(rec.intervals) == 9  # 8 stimulus tables + optotagging's optogenetic_stimulation
    assert all(len(rec.intervals[k]) == 10 for k in rec.intervals)
    assert "filtered_gaze_mapping/eye_area" in rec.signals and "raw_gaze_mapping/eye_area" in rec.signals
    lfp = recordings("allen_vcnp_lfp_probe_truncated.nwb")
    assert sorted(lfp.signals) == ["current_source_density", "probe_769322820_lfp_data"]
    data = lfp.signals["probe_769322820_lfp_data"]
    assert data.shape == (10, 87) and "channel_note" in data.attrs  # 10 electrodes for 87 columns
    assert lfp.signals["current_source_density"].shape == (10, 384)


def test_loading_is_lazy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in (HUMAN, ZARR):
            with load_recording(REAL_DATA / name) as rec:
                assert len(rec.signals) > 0
                assert not any(rec.signals.is_loaded(k) for k in rec.signals)
                assert not any(rec.intervals.is_loaded(k) for k in rec.intervals)
                rec.summary()  # reads spikes and trials, still no signal
                assert not any(rec.signals.is_loaded(k) for k in rec.signals)
