"""Serial, local-process and Dask executors give identical outputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from neuroml.errors import NeuroMLError, ParameterError
from neuroml.pipeline import DaskExecutor, make_executor, run_pipeline
from neuroml.pipeline.outputs import MARKER

from .conftest import BASIC

#: The basic pipeline plus PCA and the trial decoder (torch) with their figures.
PIPELINE = BASIC + """  - step: pca
    params: {n_components: 3, by: stimulus}
  - step: decode_condition
    params: {label: stimulus, Cs: 3, cv: 3, inner_cv: 2}
"""


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


@pytest.fixture(scope="module")
def setup(nwb_cache, tmp_path_factory):
    """A folder with 3 good, 1 corrupt and 1 trial-less recording, the pipeline, a serial run."""
    root = tmp_path_factory.mktemp("executors")
    recordings = root / "recordings"
    recordings.mkdir()
    for name in ("dec_0", "dec_1", "dec_2", "corrupt", "no_trials"):
        shutil.copy2(nwb_cache / f"{name}.nwb", recordings)
    pipe = root / "pipe.yaml"
    pipe.write_text(PIPELINE)
    report = run_pipeline(pipe, [recordings], root / "serial")
    assert report.n_ok == 3 and report.n_failed == 2
    return recordings, pipe, root / "serial"


def test_processes_match_serial(setup, tmp_path):
    recordings, pipe, serial_out = setup
    out = tmp_path / "processes"
    report = run_pipeline(pipe, [recordings], out, executor="processes", workers=2)
    assert report.n_ok == 3 and report.n_failed == 2
    info = json.loads((out / "run.json").read_text())
    assert info["executor"] == {"kind": "processes", "workers": 2, "start_method": "spawn"}
    workers = {r["worker"] for r in info["recordings"]}
    assert len(workers) >= 1 and all(":" in w for w in workers)
    assert_same_outputs(serial_out, out)


def test_dask_local_cluster_matches_serial(setup, tmp_path):
    pytest.importorskip("distributed")
    recordings, pipe, serial_out = setup
    out = tmp_path / "dask"
    ex = DaskExecutor(workers=2, processes=False)
    report = run_pipeline(pipe, [recordings], out, executor=ex)
    assert report.n_ok == 3 and report.n_failed == 2
    info = json.loads((out / "run.json").read_text())
    assert info["executor"]["kind"] == "dask"
    assert info["executor"]["local_cluster"] == {"processes": False, "workers": 2}
    assert_same_outputs(serial_out, out)


def test_dask_joins_a_running_scheduler(setup, tmp_path):
    distributed = pytest.importorskip("distributed")
    recordings, pipe, serial_out = setup
    out = tmp_path / "dask-remote"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        report = run_pipeline(pipe, [recordings], out, executor="dask",
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
        run_pipeline(pipeline_file(PIPELINE), [good_dir], tmp_path / "out", executor=ex)


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
