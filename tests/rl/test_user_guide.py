"""docs/user-guide/rl.md runs as written, and shows what its text says.

The page analyses real data (the human bandit CSVs, the VTA dopamine units, the AIND
sessions) read in place from ../shared/data/real; without that folder the test skips.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import neuroml.pipeline.steps.rl  # noqa: E402, F401  (registers fit_choice_model)
from tests.conftest import REAL_DATA  # noqa: E402

NEEDED = ["human_two_armed_bandit_dan_loewenstein", "eshel_dabney_vta_dopamine_units",
          "mouse_dynamic_foraging_bandit_aind_689514.nwb",
          "mouse_dynamic_foraging_bandit_aind_697062.nwb",
          "mouse_dynamic_foraging_bandit_aind_703548.nwb"]


def test_user_guide_examples_run(tmp_path, run_user_guide, capsys):
    missing = [n for n in NEEDED if not (REAL_DATA / n).exists()]
    if missing:
        pytest.skip(f"real data {missing} not available (looked in {REAL_DATA})")
    ns, n_blocks = run_user_guide("rl.md")
    assert n_blocks >= 10
    for name in ("rpe_heatmap", "decoded_model_population", "choice_probability_human",
                 "parameter_recovery", "reversal_points", "decoded_from_neurons"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000, name
    capsys.readouterr()
    # TD: the RPE moved from the reward to the cue; an omission gives -1
    csc, micro, rb, cb = ns["csc"], ns["micro"], ns["reward_bin"], ns["cue_bin"]
    assert csc.rpe_[0, rb] == pytest.approx(1.0) and abs(csc.rpe_[-2, rb]) < 1e-3
    assert csc.rpe_[-2, cb] == pytest.approx(1.0, abs=1e-3)
    assert csc.rpe_[-1, rb] == pytest.approx(-1.0, abs=1e-3)
    assert micro.rpe_[-2, rb] < 0.2 and micro.rpe_[-2, cb] > 0.8
    # distributional TD: learned expectiles within 5 % of the exact ones
    assert np.abs(ns["population"].values_.values / ns["exact"] - 1).max() < 0.05
    assert ns["decoded"].mean() == pytest.approx(5.205, rel=0.03)
    # the 97 humans: every fit converged, the medians the text gives
    model = ns["model"]
    assert len(model.params_) == 97 and model.summary_["converged"].all()
    bound = model.summary_.set_index("subject")["at_bound"]
    beta = model.params_["beta"]
    assert (bound != "").sum() == 36
    assert (bound == "alpha").sum() == 17 and (model.params_["alpha"][bound == "alpha"] > 0.99).all()
    assert (bound.str.contains("beta") & (beta > 25)).sum() == 14
    assert (bound.str.contains("beta") & (beta < 25)).sum() == 5
    med = model.params_.median()
    assert 0.3 < med["alpha"] < 0.55 and 2.0 < med["beta"] < 3.5
    assert 55 <= int((ns["sticky"].bic_ < model.bic_).sum()) <= 75
    # parameter recovery (issue 11: r >= 0.85 for alpha and log beta)
    fitted, true = ns["fitted"].params_, ns["true"]
    assert np.corrcoef(true["alpha"], fitted["alpha"])[0, 1] >= 0.85
    assert np.corrcoef(np.log(true["beta"]), np.log(fitted["beta"]))[0, 1] >= 0.85
    # dopamine: the within-split r and the inflated alternatives the text quotes
    corr = ns["corr"]
    assert ns["responses"]["cell"].nunique() == 40
    assert corr["r"].mean() == pytest.approx(0.49, abs=0.05)
    assert corr["r"].std() == pytest.approx(0.11, abs=0.04)
    averaged, ok = ns["averaged"], ns["ok"]
    r_avg = np.corrcoef(averaged["reversal_utility"][ok], averaged["tau"][ok])[0, 1]
    assert r_avg == pytest.approx(0.73, abs=0.05)
    from neuroml.rl.reversal import reversal_correlation

    assert reversal_correlation(ns["whole"])["r"].iloc[0] == pytest.approx(0.82, abs=0.03)
    rel = ns["reliability"]  # split-half reliabilities and the ceiling they set
    assert rel["reversal_point"] == pytest.approx(0.77, abs=0.05)
    assert rel["tau"] == pytest.approx(0.47, abs=0.08)
    assert np.sqrt(rel.prod()) == pytest.approx(0.6, abs=0.05)
    assert ns["from_neurons"].mean() == pytest.approx(4.8, abs=0.5)
    # RPE regression: nothing before the outcome, the planted slope after it
    res = ns["res"]
    assert res["r2"].iloc[0] < 0.02 and res["p_value"].iloc[0] > 0.05
    assert res["slope"].iloc[1] == pytest.approx(3.0, rel=0.2)
    assert res["p_value"].iloc[1] == pytest.approx(1 / 101)
    # the pipeline: one row per real session, no-response trials left out
    summary = ns["summary"]
    assert (summary["status"] == "ok").all() and len(summary) == 3
    assert summary["choice_model.n_trials"].tolist() == [383, 426, 505]
    assert summary["choice_model.alpha"].between(0, 1).all()


def test_user_guide_states_the_conventions_and_defaults():
    """The page states the bounds, the TD convention, precision and the device advice."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "user-guide" / "rl.md").read_text()
    assert "alpha in [0, 1] and beta in [0, 50]" in text
    assert "delta(t) = r(t) + gamma V(t) - V(t-1)" in text and "V(t)     = w . x(t)" in text
    assert "float64" in text and 'device="cpu"' in text
    from neuroml.rl.choice import DEFAULT_BOUNDS

    assert DEFAULT_BOUNDS["alpha"] == (0.0, 1.0) and DEFAULT_BOUNDS["beta"] == (0.0, 50.0)
    # every figure the page saves is made by a function of neuroml.plotting.rl
    import neuroml.plotting.rl as figs

    for name in set(re.findall(r"(plot_\w+)\(", text)):
        assert hasattr(figs, name) or name == "plot_decoding_over_time", name
