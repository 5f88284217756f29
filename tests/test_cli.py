"""The `neuroml` command line: help for every command, steps, validate, info, run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroml import Recording, make_decision
from neuroml.cli import build_parser, main
from neuroml.pipeline import available_steps, get_step

COMMANDS = ["run", "info", "steps", "validate"]

PIPELINE = """
name: cli-test
figures: {dpi: 40}
steps:
  - step: epochs
    params: {align_to: stim_on, window: [-0.2, 0.6], bin_size: 0.1}
  - step: pca
    params: {n_components: 3, by: stimulus}
"""


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    make_decision(n_units=8, n_trials=20, random_state=0).to_nwb(root / "good.nwb")
    Recording.from_arrays(spike_times=[np.linspace(0.1, 5, 20)] * 2).to_nwb(root / "bare.nwb")
    return root


@pytest.fixture
def pipeline(tmp_path) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    return path


def test_console_script_is_installed():
    exe = shutil.which("neuroml") or str(Path(sys.executable).with_name("neuroml"))
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_for_every_command(command, capsys):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: neuroml")
    if command == "run":
        for option in ("--out", "--executor", "--workers", "--scheduler", "--device", "--force"):
            assert option in out
        assert "serial,processes,dask" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: neuroml" in capsys.readouterr().out


def test_steps_lists_every_step_with_parameters_and_defaults(capsys):
    assert main(["steps"]) == 0
    out = capsys.readouterr().out
    for name in available_steps():
        spec = get_step(name)
        assert f"\n{name}\n" in f"\n{out}"
        for param, p in spec.params.items():
            default = "required" if p.required else f"default {json.dumps(p.default)}"
            assert f"    {param} = " in out
            assert default in out
        for output in spec.outputs:
            assert f"    {output} (" in out
    for builtin in ("bin_spikes", "epochs", "pca", "psth"):
        assert builtin in available_steps()


def test_steps_one_step_markdown_and_unknown(capsys):
    assert main(["steps", "pca", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### `pca`")
    assert "| `n_components` |" in out and "| `10` |" in out
    assert main(["steps", "pcaa"]) == 2
    assert "did you mean 'pca'" in capsys.readouterr().err


def test_validate(pipeline, tmp_path, capsys):
    assert main(["validate", str(pipeline)]) == 0
    assert "ok, pipeline 'cli-test' (epochs -> pca)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(PIPELINE.replace("n_components: 3", "n_components: -3"))
    assert main(["validate", str(bad)]) == 2
    assert "steps[1].params.n_components: must be" in capsys.readouterr().err


def test_info_text_json_and_errors(recordings, capsys):
    assert main(["info", str(recordings / "good.nwb")]) == 0
    out = capsys.readouterr().out
    assert "units" in out and "trials" in out and "stimulus, choice" in out
    assert main(["info", "--json", str(recordings)]) == 0  # a folder: every recording
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data] == ["bare", "good"]
    assert data[1]["units"] == 8 and data[1]["trials"] == 20
    assert main(["info", str(recordings / "good.nwb"), str(recordings / "missing.nwb")]) == 1
    captured = capsys.readouterr()
    assert "good.nwb" in captured.out and "missing.nwb" in captured.err


def test_run_reports_failures_with_exit_status_1(recordings, pipeline, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(pipeline), str(recordings), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 recording(s) processed, 0 already done, 1 failed" in captured.out
    assert "FAILED bare at steps[0] epochs" in captured.out
    assert "Summary:" in captured.out and "summary.csv" in captured.out
    assert "Figures (PNG)" in captured.out and "good/pca_" in captured.out  # where figures are
    assert "bare: FAILED" in captured.err  # plain log lines when not a terminal
    summary = pd.read_csv(out / "summary.csv")
    assert summary["status"].tolist() == ["failed", "ok"]


def test_run_success_exit_0_and_rerun_skips(recordings, pipeline, tmp_path, capsys):
    good = recordings / "good.nwb"
    out = tmp_path / "out"
    assert main(["run", str(pipeline), str(good), "--out", str(out)]) == 0
    assert main(["run", str(pipeline), str(good), "--out", str(out)]) == 0
    assert "0 recording(s) processed, 1 already done, 0 failed" in capsys.readouterr().out
    assert main(["run", str(pipeline), str(good), "--out", str(out), "--force", "-q"]) == 0
    captured = capsys.readouterr()
    assert "1 recording(s) processed" in captured.out
    assert "INFO" not in captured.err  # --quiet


@pytest.mark.parametrize("extra, message", [
    (["--executor", "processes", "--scheduler", "tcp://127.0.0.1:1"], "needs --executor dask"),
    (["--device", "cuda:7"], "cuda"),
    (["--device", "tpu"], "'device' parameter"),
])
def test_run_usage_errors_exit_2(recordings, pipeline, tmp_path, capsys, extra, message):
    code = main(["run", str(pipeline), str(recordings / "good.nwb"), "--out",
                 str(tmp_path / "out"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_run_invalid_pipeline_names_the_key_before_touching_data(recordings, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PIPELINE.replace("bin_size: 0.1", "bin_size: 0.1, bin: 2"))
    assert main(["run", str(bad), str(recordings), "--out", str(tmp_path / "out")]) == 2
    assert "steps[0].params.bin: unknown parameter" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_missing_recordings_exit_2(pipeline, tmp_path, capsys):
    assert main(["run", str(pipeline), str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "p.yaml", "x", "--out", "o", "--workers", "0"])
    assert info.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err
