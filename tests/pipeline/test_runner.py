"""The runner: failures recorded while others finish, reruns, --force, provenance."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuroml.errors import NeuroMLError, RecordingError
from neuroml.pipeline import load_pipeline, run_pipeline
from neuroml.pipeline.outputs import MARKER
from neuroml.pipeline.report import RunLock
from neuroml.pipeline.runner import recording_ids

from .conftest import BASIC

GOOD = ["dec_0", "dec_1", "dec_2"]


def _mtimes(out, rid):
    return {p.name: p.stat().st_mtime_ns for p in (out / rid).iterdir()}


def _counts_from_hdf5(path, window=(-0.2, 0.8)):
    """Spike counts per trial and unit in the window around stim_on, read with h5py."""
    with h5py.File(path, "r") as f:
        times = f["units/spike_times"][()]
        index = f["units/spike_times_index"][()]
        stim_on = f["intervals/trials/stim_on"][()]
    starts = np.concatenate([[0], index[:-1]])
    counts = np.zeros((stim_on.size, index.size))
    for u, (a, b) in enumerate(zip(starts, index)):
        t = times[a:b]
        for k, s in enumerate(stim_on):
            counts[k, u] = np.count_nonzero((t >= s + window[0]) & (t < s + window[1]))
    return counts


def test_run_records_failures_and_finishes_the_others(mixed_dir, pipeline_file, tmp_path):
    out = tmp_path / "out"
    report = run_pipeline(pipeline_file(), [mixed_dir], out)
    assert not report.ok
    status = {r.recording_id: r.status for r in report.results}
    assert status == {"corrupt": "failed", "dec_0": "ok", "dec_1": "ok", "dec_2": "ok",
                      "no_trials": "failed"}

    summary = pd.read_csv(out / "summary.csv").set_index("recording")
    assert summary.loc["corrupt", "status"] == "failed"
    assert summary.loc["corrupt", "failed_step"] == "load"
    assert "could not be opened" in summary.loc["corrupt", "error"]
    assert summary.loc["no_trials", "failed_step"] == "steps[0] epochs"
    assert "no trials table" in summary.loc["no_trials", "error"]
    assert (summary.loc[GOOD, "status"] == "ok").all()
    assert (summary.loc[GOOD, "epochs_info.n_trials"] == 30).all()
    assert summary.loc[GOOD, "error"].isna().all()

    log = (out / "run.log").read_text()
    assert "no_trials: FAILED at steps[0] epochs" in log
    assert "Traceback (most recent call last)" in log

    # the numbers: 2 x mean spike count per unit, against counts read with h5py
    for rid in GOOD:
        files = sorted(p.name for p in (out / rid).iterdir())
        assert files == [MARKER, "epochs.nc", "epochs_info.json", "rate_figure.png",
                         "rate_metrics.json", "rates.nc"]
        counts = _counts_from_hdf5(mixed_dir / f"{rid}.nwb")
        rates = xr.load_dataarray(out / rid / "rates.nc")
        np.testing.assert_allclose(rates.values, 2 * counts.sum(0) / counts.shape[0] / 10,
                                   rtol=1e-12)
        epochs = xr.load_dataarray(out / rid / "epochs.nc")
        np.testing.assert_array_equal(epochs.sum("time").values, counts)
        assert epochs.dims == ("trial", "time", "unit")
        assert epochs["stimulus"].dims == ("trial",)  # trial columns kept as coordinates
        metrics = json.loads((out / rid / "rate_metrics.json").read_text())
        assert metrics["mean_rate"] == pytest.approx(float(rates.mean()), rel=1e-12)
        assert summary.loc[rid, "rate_metrics.mean_rate"] == pytest.approx(metrics["mean_rate"])


def test_run_json_holds_the_provenance(good_dir, pipeline_file, tmp_path):
    path = pipeline_file()
    out = tmp_path / "out"
    report = run_pipeline(path, [good_dir], out, command=["neuroml", "run"])
    info = json.loads((out / "run.json").read_text())
    cfg = load_pipeline(path)
    assert info["status"] == "finished"
    assert info["pipeline"]["hash"] == cfg.hash
    assert info["pipeline"]["text"] == path.read_text()
    assert info["pipeline"]["file"] == str(path)
    assert len(info["pipeline"]["file_sha256"]) == 64
    assert info["versions"]["neuroml"] and info["versions"]["numpy"] == np.__version__
    # "auto" resolves to the GPU where there is one: the provenance records what ran
    from neuroml.device import resolve_device

    assert info["device"] == {"requested": "auto", "resolved": str(resolve_device("auto"))}
    assert info["executor"]["kind"] == "serial"
    assert info["counts"] == {"ok": 3, "skipped": 0, "failed": 0, "pending": 0}
    assert info["started"] <= info["ended"]
    assert info["command"] == ["neuroml", "run"]
    rec = info["recordings"][0]
    assert [s["step"] for s in rec["steps"]] == ["load", "steps[0] epochs",
                                                  "steps[1] test_mean_rate"]
    for s in rec["steps"]:
        assert s["compute_s"] >= 0 and s["write_s"] >= 0
    assert rec["seconds"] >= sum(s["compute_s"] + s["write_s"] for s in rec["steps"]) - 1e-3
    assert report.seconds > 0


def test_rerun_skips_done_recordings_and_retries_failed(mixed_dir, pipeline_file, tmp_path):
    out = tmp_path / "out"
    path = pipeline_file()
    run_pipeline(path, [mixed_dir], out)
    before = {rid: _mtimes(out, rid) for rid in GOOD}
    report = run_pipeline(path, [mixed_dir], out)
    status = {r.recording_id: r.status for r in report.results}
    assert status == {"corrupt": "failed", "dec_0": "skipped", "dec_1": "skipped",
                      "dec_2": "skipped", "no_trials": "failed"}
    assert {rid: _mtimes(out, rid) for rid in GOOD} == before  # nothing rewritten
    summary = pd.read_csv(out / "summary.csv").set_index("recording")
    assert (summary.loc[GOOD, "status"] == "skipped").all()
    # headline metrics of skipped recordings come from their done-markers
    assert (summary.loc[GOOD, "epochs_info.n_trials"] == 30).all()
    assert summary.loc[GOOD, "rate_metrics.mean_rate"].notna().all()


def test_force_redoes_everything(good_dir, pipeline_file, tmp_path):
    out = tmp_path / "out"
    path = pipeline_file()
    run_pipeline(path, [good_dir], out)
    before = _mtimes(out, "dec_0")
    report = run_pipeline(path, [good_dir], out, force=True)
    assert [r.status for r in report.results] == ["ok", "ok", "ok"]
    after = _mtimes(out, "dec_0")
    assert all(after[name] > before[name] for name in before)


def test_only_what_changed_is_redone(good_dir, pipeline_file, tmp_path):
    out = tmp_path / "out"
    path = pipeline_file()
    run_pipeline(path, [good_dir], out)
    (out / "dec_1" / "rates.nc").unlink()  # a lost output
    os.utime(good_dir / "dec_2.nwb", ns=(1, 1))  # an input file that changed
    report = run_pipeline(path, [good_dir], out)
    assert [r.status for r in report.results] == ["skipped", "ok", "ok"]
    assert (out / "dec_1" / "rates.nc").exists()


def test_changed_pipeline_redoes_and_removes_stale_outputs(good_dir, pipeline_file, tmp_path):
    out = tmp_path / "out"
    run_pipeline(pipeline_file(), [good_dir], out)
    smaller = BASIC.split("  - step: test_mean_rate")[0]
    report = run_pipeline(pipeline_file(smaller, "small.yaml"), [good_dir], out)
    assert [r.status for r in report.results] == ["ok", "ok", "ok"]
    assert sorted(p.name for p in (out / "dec_0").iterdir()) == [MARKER, "epochs.nc",
                                                                 "epochs_info.json"]
    summary = pd.read_csv(out / "summary.csv")
    assert "rate_metrics.mean_rate" not in summary.columns


def test_a_bad_step_return_is_reported(good_dir, pipeline_file, tmp_path):
    path = pipeline_file("steps:\n  - step: test_bad_return\n")
    report = run_pipeline(path, [good_dir / "dec_0.nwb"], tmp_path / "out")
    (res,) = report.results
    assert res.status == "failed" and res.failed_step == "steps[0] test_bad_return"
    assert "returned Dataset for its array output 'x'" in res.error


def test_paths_are_checked_before_anything_runs(pipeline_file, tmp_path):
    with pytest.raises(RecordingError, match="does not exist"):
        run_pipeline(pipeline_file(), [tmp_path / "nope"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordingError, match="No NWB recordings found"):
        run_pipeline(pipeline_file(), [tmp_path / "empty"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_recording_ids_are_unique(tmp_path):
    paths = [tmp_path / "a" / "s1.nwb", tmp_path / "b" / "s1.nwb", tmp_path / "c.zarr.nwb",
             tmp_path / "x" / "a" / "s2.nwb", tmp_path / "y" / "a" / "s2.nwb"]
    assert recording_ids(paths) == ["a_s1", "b_s1", "c", "x_a_s2", "y_a_s2"]
    odd = [tmp_path / "summary.csv.nwb", tmp_path / "my session (2).nwb", tmp_path / ".x.nwb"]
    assert recording_ids(odd) == ["rec_summary.csv", "my_session__2_", "x"]


def test_one_run_per_output_folder(good_dir, pipeline_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out), pytest.raises(NeuroMLError, match="Another neuroml run"):
        run_pipeline(pipeline_file(), [good_dir], out)


def test_duplicate_names_in_different_folders(good_dir, pipeline_file, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy2(good_dir / "dec_0.nwb", other)
    report = run_pipeline(pipeline_file(), [good_dir / "dec_0.nwb", other], tmp_path / "out")
    assert [r.recording_id for r in report.results] == ["recordings_dec_0", "other_dec_0"]
    assert report.ok


def test_progress_bar_on_a_terminal(good_dir, pipeline_file, tmp_path, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    run_pipeline(pipeline_file(), [good_dir], tmp_path / "out", progress=True)
    text = stream.getvalue()
    assert "\r" in text and "3/3 recordings" in text
    assert "dec_1: load" in text  # per-step progress (later steps may be throttled)
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith(f"[{'#' * 30}] 3/3 recordings") and text.endswith("\n")


def test_no_bar_and_no_carriage_returns_off_a_terminal(good_dir, pipeline_file, tmp_path,
                                                       monkeypatch):
    stream = io.StringIO()  # not a terminal: a log file, CI
    monkeypatch.setattr("sys.stderr", stream)
    run_pipeline(pipeline_file(), [good_dir], tmp_path / "out")
    assert "\r" not in stream.getvalue()


def test_step_warnings_are_collected_per_recording(good_dir, pipeline_file, tmp_path, caplog):
    out = tmp_path / "out"
    report = run_pipeline(pipeline_file("steps:\n  - step: test_warns\n"), [good_dir], out)
    res = report.results[0]
    assert res.warnings == ["steps[0] test_warns: RuntimeWarning: numbers may be off",
                            "steps[0] test_warns: UserWarning: recording dec_0 is odd"]
    info = json.loads((out / "run.json").read_text())
    assert info["recordings"][1]["warnings"][1].endswith("recording dec_1 is odd")
    log = (out / "run.log").read_text()
    assert log.count("numbers may be off") == 3  # every recording's, in the log file
    console = [r for r in caplog.records if r.levelname == "WARNING"]
    assert sum("numbers may be off" in r.getMessage() for r in console) == 1  # once


REAL = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real").resolve()


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} is not available")
def test_real_recordings_with_trials_or_an_interval_table(pipeline_file, tmp_path):
    mtl = REAL / "human_mtl_units_trials_rutishauser.nwb"
    alm = REAL / "mouse_alm_unit_trials_economo_anm369963.nwb"
    if not (mtl.exists() and alm.exists()):
        pytest.skip("real recordings missing")
    text = ("steps:\n"
            "  - step: epochs\n"
            "    params: {table: [encoding_table, trials], align_to: start_time,\n"
            "             window: [-0.5, 2.0], bin_size: 0.25}\n"
            "    save: true\n"
            "  - step: psth\n"
            "    params: {by: [stimCategory, type], n_units: 2}\n")
    out = tmp_path / "out"
    report = run_pipeline(pipeline_file(text), [mtl, alm], out)
    assert report.ok, [r.error for r in report.results]
    with h5py.File(mtl, "r") as f:  # what the file holds, read directly
        n_encoding = f["intervals/encoding_table/id"].shape[0]
        n_units = f["units/id"].shape[0]
    with h5py.File(alm, "r") as f:
        n_trials = f["intervals/trials/id"].shape[0]
    mtl_info = json.loads((out / mtl.stem / "epochs_info.json").read_text())
    assert mtl_info["table"] == "encoding_table"
    assert mtl_info["n_trials"] == n_encoding and mtl_info["n_features"] == n_units
    alm_info = json.loads((out / alm.stem / "epochs_info.json").read_text())
    assert alm_info["table"] == "trials" and alm_info["n_trials"] == n_trials
    psth = xr.load_dataarray(out / mtl.stem / "psth.nc")
    assert psth.dims == ("stimCategory", "time", "unit")
    assert (out / alm.stem / "raster_figure.png").stat().st_size > 1000


def test_rerun_removes_temporaries_a_killed_run_left_beside_the_summary(good_dir, pipeline_file,
                                                                       tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".summary.csv.d22wi189.tmp"  # what a SIGKILL during the summary write leaves
    stale.write_text("recording,sta")
    report = run_pipeline(pipeline_file(), [good_dir], out)
    assert report.ok
    assert not stale.exists() and not list(out.rglob("*.tmp"))
    assert (out / "summary.csv").exists()
