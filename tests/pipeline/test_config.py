"""Pipeline file validation: every problem is a ConfigError naming its key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuroml.errors import ConfigError, ParameterError
from neuroml.pipeline import load_pipeline, parse_pipeline

ROOT = Path(__file__).resolve().parents[2]

EPOCHS = "  - step: epochs\n    params: {align_to: stim_on, window: [-0.2, 0.8], bin_size: 0.1}\n"
RATE = "  - step: test_mean_rate\n"


def _load(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return load_pipeline(path)


# (pipeline text, key path named, fragment of what is allowed)
ERRORS = [
    pytest.param("steps:\n  - step: test_mean_rat\n", "steps[0].step",
                 "did you mean 'test_mean_rate'", id="unknown-step"),
    pytest.param("stepz: []\n", "stepz", "the top level allows: name, description, figures, steps",
                 id="unknown-top-key"),
    pytest.param("steps:\n" + EPOCHS + "    parmas: {}\n", "steps[0].parmas",
                 "did you mean 'params'", id="unknown-entry-key"),
    pytest.param("steps:\n  - step: epochs\n    params: {bin_sise: 0.1}\n",
                 "steps[0].params.bin_sise", "did you mean 'bin_size'", id="unknown-param"),
    pytest.param("steps:\n  - step: epochs\n    params: {bin_size: fast}\n",
                 "steps[0].params.bin_size", "must be a float in the range (0, inf). Got 'fast'",
                 id="wrong-type"),
    pytest.param("steps:\n  - step: epochs\n    params: {bin_size: 1e-3}\n",
                 "steps[0].params.bin_size", "write 1.0e-3 or 0.001", id="yaml-number-string"),
    pytest.param("steps:\n  - step: epochs\n    params: {bin_size: -0.1}\n",
                 "steps[0].params.bin_size", "Got -0.1 instead", id="bad-value"),
    pytest.param("steps:\n  - step: epochs\n    params: {min_trials: true}\n",
                 "steps[0].params.min_trials", "an int in the range [1, inf)", id="bool-for-int"),
    pytest.param("steps:\n  - step: epochs\n    params: {window: [0.8, -0.2]}\n",
                 "steps[0].params.window", "with start < stop", id="bad-window"),
    pytest.param("steps:\n  - step: epochs\n    params: {scale: log}\n",
                 "steps[0].params.scale", "'counts', 'rate', 'sqrt', 'zscore'", id="bad-option"),
    pytest.param("steps:\n" + EPOCHS + "  - step: test_needs_label\n",
                 "steps[1].params.label", "missing required parameter", id="missing-required"),
    pytest.param("steps:\n" + RATE, "steps[0]",
                 "needs input 'epochs', which no earlier step produces", id="missing-input"),
    pytest.param("steps:\n" + EPOCHS + RATE + "    inputs: {dat: epochs}\n",
                 "steps[1].inputs.dat", "its inputs: data", id="unknown-input"),
    pytest.param("steps:\n" + EPOCHS + RATE + "    inputs: {data: latents}\n",
                 "steps[1].inputs.data", "available here: recording, epochs", id="input-not-made"),
    pytest.param("steps:\n" + EPOCHS + EPOCHS, "steps[1]",
                 "already produced by steps[0] (epochs)", id="duplicate-output"),
    pytest.param("steps:\n" + EPOCHS + RATE + "    outputs: {rates: 'a b'}\n",
                 "steps[1].outputs.rates", "letters, digits", id="bad-output-name"),
    pytest.param("steps:\n" + EPOCHS + "    save: [nope]\n", "steps[0].save",
                 "those are: epochs", id="bad-save"),
    pytest.param("figures: {formats: [png, gif]}\nsteps:\n" + EPOCHS, "figures.formats",
                 "'png', 'pdf', 'svg'", id="bad-figure-format"),
    pytest.param("figures: {dpi: 5}\nsteps:\n" + EPOCHS, "figures.dpi",
                 "an int in the range [20, 1200]", id="bad-dpi"),
    pytest.param("steps: []\n", "steps", "non-empty list", id="empty-steps"),
    pytest.param("name: x\n", "steps", "missing", id="missing-steps"),
    pytest.param("steps:\n  - epochs\n", "steps[0]", "must be a mapping", id="entry-not-mapping"),
    pytest.param("steps:\n  - params: {}\n", "steps[0].step", "missing", id="entry-without-step"),
    pytest.param("steps:\n  - step: epochs\n    params: [1]\n", "steps[0].params",
                 "must be a mapping", id="params-not-mapping"),
    pytest.param("steps:\n  - step: epochs\n    params: {null: 1}\n", "steps[0].params.None",
                 "YAML read this key as None", id="yaml-keyword-key"),
    pytest.param("", "(file)", "the file is empty", id="empty-file"),
    pytest.param("- a\n- b\n", "(file)", "must hold a mapping", id="not-a-mapping"),
]


@pytest.mark.parametrize("text, path, fragment", ERRORS)
def test_config_error_names_the_key_path(tmp_path, text, path, fragment):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    err = info.value
    assert isinstance(err, ParameterError)  # ConfigError is a ParameterError/ValueError
    paths = [p for p, _ in err.problems]
    assert path in paths, (paths, str(err))
    message = dict(err.problems)[path]
    assert fragment in message, message
    assert f"{path}: {message}" in str(err)
    assert "p.yaml" in str(err)


def test_every_problem_is_reported_at_once(tmp_path):
    text = ("nmae: x\nsteps:\n  - step: epochs\n    params: {bin_size: -1, window: 3}\n"
            "  - step: nope\n")
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    paths = [p for p, _ in info.value.problems]
    assert paths == ["nmae", "steps[0].params.bin_size", "steps[0].params.window",
                     "steps[1].step"]
    assert "(4 problems)" in str(info.value)


def test_yaml_is_loaded_safely(tmp_path):
    marker = tmp_path / "pwned"
    text = f"steps: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(ConfigError, match="not valid YAML"):
        _load(tmp_path, text)
    assert not marker.exists()


def test_duplicate_yaml_keys_are_an_error(tmp_path):
    text = "steps:\n  - step: epochs\n    params: {bin_size: 0.1}\n    params: {bin_size: 0.2}\n"
    with pytest.raises(ConfigError, match="duplicate key 'params'"):
        _load(tmp_path, text)


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match="line 2"):
        _load(tmp_path, "steps:\n  - step: [epochs\n")


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_pipeline("/nonexistent/pipeline.yaml")


def test_defaults_are_filled_and_data_flow_resolved(tmp_path):
    cfg = _load(tmp_path, "steps:\n" + EPOCHS + RATE)
    ep, rate = cfg.steps
    assert ep.params == {"align_to": "stim_on", "window": [-0.2, 0.8], "bin_size": 0.1,
                         "source": "spikes", "scale": "counts", "min_trials": 2, "table": None}
    assert rate.inputs == {"data": "epochs"}
    assert rate.outputs == {"rates": "rates", "rate_metrics": "rate_metrics",
                            "rate_figure": "rate_figure"}
    # arrays default per output; metrics and figures are always saved
    assert ep.save == {"epochs": False, "epochs_info": True}
    assert rate.save == {"rates": True, "rate_metrics": True, "rate_figure": True}
    assert cfg.name == "p" and cfg.figure_formats == ("png",) and cfg.dpi == 100


def test_renamed_outputs_flow_to_later_steps(tmp_path):
    text = ("steps:\n" + EPOCHS + "    outputs: {epochs: trials}\n    save: true\n"
            + RATE + "    inputs: {data: trials}\n")
    cfg = _load(tmp_path, text)
    assert cfg.steps[0].outputs["epochs"] == "trials"
    assert cfg.steps[0].save["epochs"] is True
    assert cfg.steps[1].inputs == {"data": "trials"}


def test_hash_ignores_comments_order_and_names_but_not_parameters(tmp_path):
    base = _load(tmp_path, "steps:\n" + EPOCHS + RATE).hash
    same = parse_pipeline(yaml.safe_load(
        "# a comment\ndescription: other words\nname: other\nsteps:\n"
        "  - params: {bin_size: 0.1, window: [-0.2, 0.8], align_to: stim_on, scale: counts}\n"
        "    step: epochs\n" + RATE)).hash
    assert same == base  # explicit default == implicit default
    changed = parse_pipeline(yaml.safe_load(
        "steps:\n" + EPOCHS.replace("0.1}", "0.05}") + RATE)).hash
    assert changed != base
    assert len(base) == 64


@pytest.mark.parametrize("name", ["quickstart.yaml", "decoding.yaml", "representation.yaml",
                                  "choice_models.yaml", "decode_sequence.yaml"])
def test_shipped_pipelines_are_valid(name):
    path = ROOT / "pipelines" / name
    if not path.exists():
        pytest.skip(f"{path} is not written yet")
    cfg = load_pipeline(path)
    assert cfg.steps
