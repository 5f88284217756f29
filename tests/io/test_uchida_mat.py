"""The Uchida lab CommonFormat .mat reader (neuroml.io._uchida_mat) and its dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

from neuroml.errors import RecordingError
from neuroml.io._uchida_mat import is_commonformat, load_commonformat
from neuroml.io.nwb import load_recording
from tests.conftest import REAL_DATA

UNITS = REAL_DATA / "eshel_dabney_vta_dopamine_units"
FIRST = "02_09_TT2_1_CommonFormat_verified.mat"
MAGS = np.array([0.1, 0.3, 1.2, 2.5, 5.0, 10.0, 20.0])

requires_units = pytest.mark.skipif(not UNITS.is_dir(), reason=f"{UNITS} is not available")


def _raw(path):
    m = sio.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    return m["events"], m["responses"]


def _small_events(n=6):
    return {
        "odorOn": np.array([1000.0, 5000.0, 9000.0, 13000.0, 17000.0, 21000.0])[:n],
        "odorOff": np.array([2000.0, 6000.0, 10000.0, 14000.0, 18000.0, 22000.0])[:n],
        "odorID": np.array([0, 1, 2, 1, 0, 0], dtype=np.uint8)[:n],
        "trialType": np.array([3.0, 12.0, 15.0, 8.0, np.nan, 7.0])[:n],
        "rewardOn": np.full(n, np.nan),
        "freeLaserOn": np.array([500.0, 520.0]),
    }


def _small_responses():
    return {"spike": np.array([900.0, 1250.5, 6600.0, 21300.25]),
            "lick": np.zeros(0), "laserEvokedSpikes": np.array([5024, 5215], dtype=np.int32),
            "LaserLatency": np.array([2.4, np.nan]),
            "meanLaserWaveform": np.arange(8.0).reshape(4, 2)}


def _write(path, events=None, responses=None):
    content = {}
    if events is not None:
        content["events"] = events
    if responses is not None:
        content["responses"] = responses
    sio.savemat(str(path), content)
    return path


# ---------------------------------------------------------------------- synthetic files
def test_small_file_exact_columns(tmp_path):
    path = _write(tmp_path / "A_01_TT3_2_CommonFormat.mat", _small_events(), _small_responses())
    rec = load_commonformat(path)
    tr = rec.trials
    np.testing.assert_allclose(tr["start_time"], [1.0, 5.0, 9.0, 13.0, 17.0, 21.0])
    np.testing.assert_allclose(tr["stop_time"], [5.0, 9.0, 13.0, 17.0, 21.0, 21.30025])
    np.testing.assert_array_equal(tr["odor_id"], [0, 1, 2, 1, 0, 0])
    np.testing.assert_allclose(tr["magnitude"], [1.2, 5.0, np.nan, 0.1, np.nan, 20.0])
    assert tr["cued"].tolist() == [False, True, True, True, False, False]
    # uncued: the reward is the event itself; cued 8-14: 1.5 s after odour onset
    np.testing.assert_allclose(tr["reward_time"], [1.0, 6.5, np.nan, 14.5, np.nan, 21.0])
    np.testing.assert_allclose(tr["odor_off"], [2.0, 6.0, 10.0, 14.0, 18.0, 22.0])
    assert "reward_on" not in tr.columns  # all NaN: left out, and said so
    assert {"path": "events.rewardOn", "type": "trial field", "reason": "all NaN"} in \
        rec.meta["skipped"]
    np.testing.assert_allclose(rec.spikes.times, [0.9, 1.2505, 6.6, 21.30025])
    assert rec.id == "A_01_TT3_2_CommonFormat" and len(rec.spikes) == 1
    assert rec.spikes.units.loc[rec.id, "tetrode"] == 3 and rec.spikes.units.loc[rec.id, "cell"] == 2
    pulses = rec.intervals["free_laser_on"]
    np.testing.assert_allclose(pulses["start_time"], [0.5, 0.52])
    np.testing.assert_allclose(pulses["spike_latency"], [0.0024, np.nan])
    # integer laserEvokedSpikes are 0.1 ms ticks
    np.testing.assert_allclose(rec.intervals["laser_evoked_spikes"]["start_time"], [0.5024, 0.5215])
    assert rec.meta["waveforms"]["mean_laser_waveform"].shape == (4, 2)
    assert rec.meta["mat_version"] == "5"


def test_recorded_reward_times_are_used(tmp_path):
    events = _small_events()
    events["rewardOn"] = np.array([np.nan, 6600.0, np.nan, np.nan, np.nan, np.nan])
    rec = load_commonformat(_write(tmp_path / "r.mat", events, _small_responses()))
    np.testing.assert_allclose(rec.trials["reward_time"], [1.0, 6.6, np.nan, 14.5, np.nan, 21.0])
    assert "reward_on" in rec.trials.columns


def test_load_recording_dispatches_mat_and_writes_nwb(tmp_path):
    path = _write(tmp_path / "unit.mat", _small_events(), _small_responses())
    rec = load_recording(path)
    assert rec.meta["source"] == str(path) and rec.id == "unit"
    out = rec.to_nwb(tmp_path / "unit.nwb")
    with load_recording(out) as back:
        np.testing.assert_allclose(back.spikes.times, rec.spikes.times)
        np.testing.assert_allclose(back.trials["magnitude"], rec.trials["magnitude"])
        np.testing.assert_allclose(back.trials["reward_time"], rec.trials["reward_time"])


def test_v73_hdf5_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        for group, fields in (("events", _small_events()), ("responses", _small_responses())):
            g = f.create_group(group)
            for name, value in fields.items():
                value = np.asarray(value)
                if value.size == 0:  # MATLAB writes empties as their dimensions
                    ds = g.create_dataset(name, data=np.array([0, 0], dtype=np.uint64))
                    ds.attrs["MATLAB_empty"] = np.uint8(1)
                else:  # column-major: a row vector is stored as (n, 1)
                    g.create_dataset(name, data=np.atleast_2d(value).T)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + b"\x00" * 8
                + b"\x00\x02IM")
    assert is_commonformat(path)
    rec = load_commonformat(path)
    v5 = load_commonformat(_write(tmp_path / "v5.mat", _small_events(), _small_responses()))
    assert rec.meta["mat_version"] == "7.3"
    np.testing.assert_allclose(rec.spikes.times, v5.spikes.times)
    for col in ("start_time", "magnitude", "reward_time", "trial_type"):
        np.testing.assert_allclose(rec.trials[col], v5.trials[col])
    assert rec.meta["waveforms"]["mean_laser_waveform"].shape == (4, 2)


@pytest.mark.parametrize("events, responses, match", [
    (_small_events(), None, r"lacks the struct\(s\) \['responses'\]"),
    (None, None, r"lacks the struct\(s\) \['events', 'responses'\]"),
    ({k: v for k, v in _small_events().items() if k != "trialType"}, _small_responses(),
     r"events\.trialType"),
    (_small_events(), {"lick": np.zeros(3)}, r"responses\.spike"),
    ({**_small_events(), "odorID": np.zeros(4)}, _small_responses(),
     r"events\.odorID has 4 entries but events\.odorOn has 6"),
    ({**_small_events(), "odorOn": _small_events()["odorOn"][::-1].copy()}, _small_responses(),
     r"events\.odorOn must increase .* first trial 1 \(21000 ms\) -> 2 \(17000 ms\)"),
])
def test_bad_files_name_file_and_what_is_missing(tmp_path, events, responses, match):
    path = tmp_path / "bad.mat"
    if events is None and responses is None:
        sio.savemat(str(path), {"other": np.ones(3)})
    else:
        _write(path, events, responses)
    with pytest.raises(RecordingError, match=match) as err:
        load_recording(path)
    assert str(path) in str(err.value)


def test_not_a_mat_file_and_missing_file(tmp_path):
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"not a matlab file at all")
    with pytest.raises(RecordingError, match="junk.mat"):
        load_recording(junk)
    with pytest.raises(RecordingError, match="does not exist"):
        load_recording(tmp_path / "absent.mat")
    assert not is_commonformat(junk)


# ---------------------------------------------------------------------- the 40 real units
@requires_units
def test_real_unit_matches_the_raw_file():
    path = UNITS / FIRST
    events, responses = _raw(path)
    rec = load_recording(path)
    tr = rec.trials
    raw_types = np.asarray(events.trialType, dtype=float)
    assert len(tr) == raw_types.size == 210
    # trials per type, NaN types kept
    types, counts = np.unique(raw_types[np.isfinite(raw_types)], return_counts=True)
    got = tr["trial_type"].value_counts()
    assert {int(t): int(c) for t, c in zip(types, counts)} == {int(k): int(v) for k, v in got.items()}
    assert tr["trial_type"].isna().sum() == np.isnan(raw_types).sum() == 17
    # seconds = the file's milliseconds / 1000
    np.testing.assert_allclose(tr["start_time"] * 1000.0, events.odorOn, rtol=0, atol=1e-6)
    np.testing.assert_allclose(rec.spikes.times * 1000.0, responses.spike, rtol=0, atol=1e-6)
    # magnitudes: types 1-7 and 8-14 map to the seven sizes, everything else NaN
    kind = np.where(np.isfinite(raw_types), raw_types, 0).astype(int)
    expected = np.where((kind >= 1) & (kind <= 14), MAGS[(kind - 1) % 7], np.nan)
    np.testing.assert_allclose(tr["magnitude"], expected)
    cued = (kind >= 8) & (kind <= 14)
    np.testing.assert_allclose(tr["reward_time"][cued], tr["start_time"][cued] + 1.5)
    uncued = (kind >= 1) & (kind <= 7)
    np.testing.assert_allclose(tr["reward_time"][uncued], tr["start_time"][uncued])
    assert tr["cued"][cued].all() and not tr["cued"][uncued].any()
    assert rec.id == FIRST[:-4]


@requires_units
def test_real_totals_and_reward_time_convention():
    files = sorted(UNITS.glob("*.mat"))
    assert len(files) == 40
    recs = [load_recording(f) for f in files]
    assert sum(r.spikes.n_spikes for r in recs) == 690_854  # SOURCES.md
    assert sum(len(r.trials) for r in recs) == 11_600
    # Dopamine neurons burst right after reward: aligned on reward_time the rate in the
    # first 300 ms must exceed the 300 ms before, for cued (odour + 1.5 s) and uncued trials.
    for cued in (True, False):
        before = after = 0
        for rec in recs:
            sel = rec.trials["magnitude"].notna() & (rec.trials["cued"] == cued)
            ep = rec.epochs("reward_time", (-0.3, 0.3), 0.3, trials=sel.to_numpy())
            before += int(ep.values[:, 0].sum())
            after += int(ep.values[:, 1].sum())
        assert after > 1.5 * before
