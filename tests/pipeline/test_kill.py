"""SIGKILL part-way through `neuroml run`, run again: nothing corrupt, nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from neuroml.pipeline import run_pipeline
from neuroml.pipeline.outputs import MARKER

from .test_executors import _outputs

PIPELINE = """
name: kill-test
figures: {formats: [png, svg], dpi: 40}
steps:
  - step: epochs
    params: {align_to: stim_on, window: [-0.2, 0.8], bin_size: 0.1}
    save: true
  - step: pca
    params: {n_components: 3, by: stimulus}
"""


def _neuroml_command() -> list[str]:
    script = Path(sys.executable).with_name("neuroml")
    return [str(script)] if script.exists() else [sys.executable, "-m", "neuroml.cli"]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_then_rerun_completes_without_corrupt_or_lost_output(good_dir, tmp_path):
    pipe = tmp_path / "kill.yaml"
    pipe.write_text(PIPELINE)
    ids = ["dec_0", "dec_1", "dec_2"]

    reference = tmp_path / "reference"
    assert run_pipeline(pipe, [good_dir], reference).ok

    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg")
    cmd = [*_neuroml_command(), "run", str(pipe), str(good_dir), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    try:
        while not any((out / rid / MARKER).exists() for rid in ids):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no recording finished in time"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = [rid for rid in ids if (out / rid / MARKER).exists()]
    assert 1 <= len(done_at_kill) < len(ids), done_at_kill  # killed part-way
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Summary:" in rerun.stdout

    summary = pd.read_csv(out / "summary.csv").set_index("recording")
    for rid in ids:
        expected = "skipped" if rid in done_at_kill else "ok"
        assert summary.loc[rid, "status"] == expected
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert not list(out.rglob("*.tmp")), "temporary files left behind"

    # every output opens and equals the uninterrupted run's
    got, want = _outputs(out), _outputs(reference)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if hasattr(value, "dims"):
            import xarray as xr

            xr.testing.assert_identical(got[key], value)
        else:
            assert got[key] == value, key
    ref_summary = pd.read_csv(reference / "summary.csv").set_index("recording")
    metric_cols = [c for c in ref_summary.columns if "." in c]
    pd.testing.assert_frame_equal(summary[metric_cols], ref_summary[metric_cols])
    shutil.rmtree(reference)
