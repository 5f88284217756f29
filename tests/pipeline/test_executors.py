"""Serial, local-process and Dask executors give identical outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuroml.errors import NeuroMLError, ParameterError
from neuroml.pipeline import DaskExecutor, make_executor, run_pipeline
from neuroml.pipeline.outputs import MARKER


def _outputs(out):
    """Every per-recording output, read back: arrays, JSON, PNG bytes."""
    found = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        for f in sorted(d.iterdir()):
            key = f"{d.name}/{f.name}"
            if f.suffix == ".nc":
                found[key] = xr.load_dataarray(f)
            elif f.name == MARKER:
                marker = json.loads(f.read_text())
                found[key] = (marker["pipeline_hash"], marker["outputs"], marker["metrics"])
            elif f.suffix == ".json":
                found[key] = json.loads(f.read_text())
            else:
                found[key] = f.read_bytes()
    return found


def assert_same_outputs(a, b):
    ra, rb = _outputs(a), _outputs(b)
    assert sorted(ra) == sorted(rb)
    assert ra, "no outputs"
    for key, va in ra.items():
        vb = rb[key]
        if isinstance(va, xr.DataArray):
            xr.testing.assert_identical(va, vb)
        else:
            assert va == vb, key
    sa = pd.read_csv(a / "summary.csv").drop(columns=["seconds"])
    sb = pd.read_csv(b / "summary.csv").drop(columns=["seconds"])
    pd.testing.assert_frame_equal(sa, sb)


@pytest.fixture
def serial_out(mixed_dir, pipeline_file, tmp_path):
    out = tmp_path / "serial"
    report = run_pipeline(pipeline_file(), [mixed_dir], out)
    assert report.n_ok == 3 and report.n_failed == 2
    return out


def test_processes_match_serial(serial_out, mixed_dir, pipeline_file, tmp_path):
    out = tmp_path / "processes"
    report = run_pipeline(pipeline_file(), [mixed_dir], out, executor="processes", workers=2)
    assert report.n_ok == 3 and report.n_failed == 2
    info = json.loads((out / "run.json").read_text())
    assert info["executor"] == {"kind": "processes", "workers": 2, "start_method": "spawn"}
    workers = {r["worker"] for r in info["recordings"]}
    assert len(workers) >= 1 and all(":" in w for w in workers)
    assert_same_outputs(serial_out, out)


def test_dask_local_cluster_matches_serial(serial_out, mixed_dir, pipeline_file, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "dask"
    ex = DaskExecutor(workers=2, processes=False)
    report = run_pipeline(pipeline_file(), [mixed_dir], out, executor=ex)
    assert report.n_ok == 3 and report.n_failed == 2
    info = json.loads((out / "run.json").read_text())
    assert info["executor"]["kind"] == "dask"
    assert info["executor"]["local_cluster"] == {"processes": False, "workers": 2}
    assert_same_outputs(serial_out, out)


def test_dask_joins_a_running_scheduler(serial_out, mixed_dir, pipeline_file, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask-remote"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        report = run_pipeline(pipeline_file(), [mixed_dir], out, executor="dask",
                              scheduler=cluster.scheduler_address)
        info = json.loads((out / "run.json").read_text())
    assert report.n_ok == 3 and report.n_failed == 2
    assert info["executor"]["scheduler"] == cluster.scheduler_address
    assert info["device"] == {"requested": "auto"}  # resolved on the workers
    assert_same_outputs(serial_out, out)


def test_executor_arguments_are_checked():
    with pytest.raises(ParameterError, match="'executor' parameter"):
        make_executor("threads")
    with pytest.raises(ParameterError, match="only works with the dask executor"):
        make_executor("processes", scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ParameterError, match="'workers' parameter"):
        make_executor("processes", workers=0)


def test_dask_unreachable_scheduler_is_a_clear_error(good_dir, pipeline_file, tmp_path):
    pytest.importorskip("distributed")
    ex = DaskExecutor(scheduler="tcp://127.0.0.1:9")
    ex._connect_timeout = "1s"
    with pytest.raises(NeuroMLError, match="Could not connect to the Dask scheduler"):
        run_pipeline(pipeline_file(), [good_dir], tmp_path / "out", executor=ex)


def test_missing_dask_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "distributed":
            raise ImportError("No module named 'distributed'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(NeuroMLError, match=r"pip install neuroml\[distributed\]"):
        DaskExecutor().start()
    assert np  # numpy imported before the patch still works
