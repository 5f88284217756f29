"""The RL pipeline steps: fit_choice_model and rpe_response, alone and in pipelines.

Synthetic sessions are simulated here with a plain NumPy Q-learner (independent of
neuroml.rl) and written with the package's NWB writer; fits are checked against SciPy
L-BFGS-B fits of a plain-Python likelihood, the regression against scikit-learn. The
real AIND sessions are read in place (skipped without them).
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

import neuroml.pipeline.steps.rl  # noqa: E402, F401  (registers the steps)
from neuroml import Recording  # noqa: E402
from neuroml.errors import ParameterError, RecordingError  # noqa: E402
from neuroml.pipeline import get_step, run_pipeline  # noqa: E402
from neuroml.pipeline.registry import StepContext  # noqa: E402
from tests.conftest import REAL_DATA  # noqa: E402

CTX = StepContext(recording_id="test", device="cpu")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AIND = {"689514": 383, "697062": 426, "703548": 505}  # session: answered trials


def run_step(name, **kwargs):
    spec = get_step(name)
    params = {**spec.defaults(), **kwargs.pop("params", {})}
    out = spec.func(CTX, **kwargs, **params)
    assert set(out) == set(spec.outputs)
    kinds = {"array": xr.DataArray, "metrics": dict, "figure": Figure, "table": pd.DataFrame}
    for key, o in spec.outputs.items():
        assert out[key] is None or isinstance(out[key], kinds[o.kind]), key
    return out


# ---------------------------------------------------------------------- reference code
def plain_nll(params, c, r, q0=0.5):
    """Wilson & Collins model 3, one trial at a time; negative choices are skipped.

    Plain Python floats (two options): -log P(c) = log(1 + exp(-beta (Q[c] - Q[other]))).
    """
    alpha, beta = float(params[0]), float(params[1])
    q = [q0, q0]
    total = 0.0
    for ci, ri in zip(c.tolist(), r.tolist()):
        if ci < 0:
            continue
        d = -beta * (q[ci] - q[1 - ci])
        total += d + math.log1p(math.exp(-d)) if d > 0 else math.log1p(math.exp(d))
        q[ci] += alpha * (ri - q[ci])
    return total


def plain_rpe(params, c, r, q0=0.5):
    alpha, _ = params
    q = np.full(2, q0)
    out = np.full(len(c), np.nan)
    for t, (ci, ri) in enumerate(zip(c, r)):
        if ci >= 0:
            out[t] = ri - q[ci]
            q[ci] += out[t] * alpha
    return out


def scipy_fit(c, r):
    """Best of a 2 x 2 grid of L-BFGS-B starts inside alpha in [0, 1], beta in [0, 50]."""
    best = None
    for a0 in (0.2, 0.7):
        for b0 in (2.0, 10.0):
            res = minimize(plain_nll, [a0, b0], args=(c, r), method="L-BFGS-B",
                           bounds=[(0, 1), (0, 50)])
            if best is None or res.fun < best.fun:
                best = res
    return best


def simulate_session(alpha, beta, *, n_trials=300, seed=0, p_none=0.05, gain=1.0):
    """A bandit session with planted RPE responses, as an AIND-style Recording."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(40, 71, n_trials // 40 + 1)
    p_right = np.repeat(np.arange(lengths.size) % 2, lengths)[:n_trials] * 0.6 + 0.2
    q = np.full(2, 0.5)
    choice = np.full(n_trials, 2)
    rewarded = np.zeros((n_trials, 2), dtype=bool)
    rpe = np.full(n_trials, np.nan)
    for t in range(n_trials):
        if rng.random() < p_none:
            continue
        c = int(rng.random() < 1 / (1 + np.exp(-beta * (q[1] - q[0]))))
        r = float(rng.random() < (p_right[t] if c else 1 - p_right[t]))
        choice[t], rewarded[t, c], rpe[t] = c, bool(r), r - q[c]
        q[c] += alpha * (r - q[c])
    start = 5.0 * np.arange(n_trials) + 10.0
    outcome = start + 1.5
    trials = pd.DataFrame({
        "start_time": start, "stop_time": start + 4.0, "goCue_start_time": start + 1.0,
        "reward_outcome_time": outcome, "animal_response": choice.astype(float),
        "rewarded_historyL": rewarded[:, 0], "rewarded_historyR": rewarded[:, 1],
        "reward_probabilityL": 1 - p_right, "reward_probabilityR": p_right})

    def kernel(times):
        """gain * rpe * exp(-(t - outcome) / 0.3) after the latest outcome."""
        k = np.searchsorted(outcome, times, side="right") - 1
        lag = times - outcome[np.clip(k, 0, None)]
        amp = np.where(k >= 0, np.nan_to_num(rpe)[np.clip(k, 0, None)], 0.0)
        return gain * amp * np.where((k >= 0) & (lag < 3.0), np.exp(-lag / 0.3), 0.0)

    ts = np.arange(0.0, start[-1] + 10.0, 0.05)
    dff = kernel(ts) + 0.3 * rng.normal(size=ts.size)
    cand = np.sort(rng.uniform(0, ts[-1], rng.poisson(30 * ts[-1])))
    unit0 = cand[rng.random(cand.size) < np.clip(10 + 8 * kernel(cand), 0, 30) / 30]
    unit1 = np.sort(rng.uniform(0, ts[-1], rng.poisson(10 * ts[-1])))
    rec = Recording.from_arrays(spike_times=[unit0, unit1], trials=trials,
                                signals={"dff": (ts, dff)}, identifier=f"session_{seed}")
    return rec, rpe


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Three synthetic sessions written as NWB files, with their true parameters."""
    folder = tmp_path_factory.mktemp("bandit")
    truth = {}
    for seed, (alpha, beta) in enumerate([(0.2, 6.0), (0.5, 4.0), (0.8, 8.0)]):
        rec, _ = simulate_session(alpha, beta, n_trials=300, seed=seed)
        rec.to_nwb(folder / f"session_{seed}.nwb")
        truth[f"session_{seed}"] = (alpha, beta)
    return folder, truth


# ---------------------------------------------------------------------- fit_choice_model
def test_fit_choice_model_equals_a_scipy_fit_and_recovers_the_agent(sessions):
    from neuroml import load_recording

    folder, truth = sessions
    rec = load_recording(folder / "session_0.nwb")
    out = run_step("fit_choice_model", recording=rec)
    m, values = out["choice_model"], out["choice_values"]
    t = rec.trials
    c = np.where(t["animal_response"] == 2, -1, t["animal_response"]).astype(int)
    r = np.where(c == 1, t["rewarded_historyR"], t["rewarded_historyL"]).astype(float)
    ref = scipy_fit(c, r)
    assert m["nll"] <= ref.fun + 1e-3
    assert m["alpha"] == pytest.approx(ref.x[0], abs=2e-3)
    assert m["beta"] == pytest.approx(ref.x[1], rel=2e-3)
    assert m["nll"] == pytest.approx(plain_nll([m["alpha"], m["beta"]], c, r), abs=1e-8)
    n = int((c >= 0).sum())
    assert (m["n_trials"], m["n_no_response"], m["n_options"]) == (n, 300 - n, 2)
    assert m["aic"] == pytest.approx(4 + 2 * m["nll"])
    assert m["at_bound"] == ""
    assert m["bic"] == pytest.approx(2 * np.log(n) + 2 * m["nll"])
    assert abs(m["alpha"] - truth["session_0"][0]) < 0.15
    assert abs(np.log(m["beta"] / truth["session_0"][1])) < 0.4
    # the per-trial table: RPEs of the fitted model, NaN without a response
    assert values.index.equals(t.index) and len(values) == 300
    np.testing.assert_allclose(values["rpe"], plain_rpe([m["alpha"], m["beta"]], c, r),
                               atol=1e-10)
    assert values.loc[c < 0, ["rpe", "reward", "p_chosen"]].isna().all().all()
    np.testing.assert_allclose(values["p_0"] + values["p_1"], 1.0)
    p_chosen = np.where(c == 1, values["p_1"], values["p_0"])[c >= 0]
    np.testing.assert_allclose(values.loc[c >= 0, "p_chosen"], p_chosen)
    assert m["accuracy"] == pytest.approx(np.mean((values["p_1"] > 0.5)[c >= 0] == (c[c >= 0] == 1)))
    assert {"reward_probabilityL", "reward_probabilityR"} <= set(values.columns)
    assert "alpha = " in out["choice_probability"].axes[0].get_title()


def test_fit_choice_model_with_labels_and_one_reward_column(sessions):
    """String responses mapped by 'options' and one reward column give the same fit."""
    from neuroml import load_recording

    rec = load_recording(sessions[0] / "session_1.nwb")
    t = rec.trials
    base = run_step("fit_choice_model", recording=rec, params={"n_starts": 2})
    label = t["animal_response"].map({0.0: "LEFT", 1.0: "RIGHT", 2.0: ""})
    got = t["rewarded_historyL"] | t["rewarded_historyR"]
    other = rec.with_trials(pd.DataFrame({"side": label, "water": got.astype(float)}))
    out = run_step("fit_choice_model", recording=other,
                   params={"choice": ["response", "side"], "reward": "water",
                           "options": ["LEFT", "RIGHT"], "no_response": [],
                           "option_labels": ["left", "right"], "n_starts": 2})
    for key in ("alpha", "beta", "nll", "n_trials"):
        assert out["choice_model"][key] == pytest.approx(base["choice_model"][key], rel=1e-6)
    assert out["choice_model"]["choice_column"] == "side"
    assert out["choice_probability"].axes[0].get_ylabel() == "P(right)"
    # a third option nobody chose, named in 'options': a three-option fit, not an error
    three = run_step("fit_choice_model", recording=other,
                     params={"choice": "side", "reward": "water", "no_response": [],
                             "options": ["LEFT", "RIGHT", "CENTRE"],
                             "option_labels": ["left", "right", "centre"], "n_starts": 2})
    assert three["choice_model"]["n_options"] == 3
    assert (three["choice_values"]["q_2"].dropna() == 0.5).all()
    assert three["choice_model"]["nll"] >= out["choice_model"]["nll"] - 1e-6
    # extended model: one more parameter, a likelihood at least as good
    ext = run_step("fit_choice_model", recording=rec,
                   params={"parameters": ["alpha", "beta", "bias"], "n_starts": 2})
    assert ext["choice_model"]["nll"] <= base["choice_model"]["nll"] + 1e-3
    assert "bias" in ext["choice_model"]
    # bounds as a YAML mapping of lists
    capped = run_step("fit_choice_model", recording=rec,
                      params={"bounds": {"beta": [0, 2.0]}, "n_starts": 2})
    assert capped["choice_model"]["beta"] <= 2.0 < base["choice_model"]["beta"]


def test_fit_choice_model_errors_name_the_columns(sessions):
    from neuroml import load_recording

    rec = load_recording(sessions[0] / "session_2.nwb")
    with pytest.raises(RecordingError, match=r"no trials column \(any of \['pick', 'c'\]\)"):
        run_step("fit_choice_model", recording=rec, params={"choice": ["pick", "c"]})
    with pytest.raises(RecordingError, match=r"\['gold'\] for the rewards"):
        run_step("fit_choice_model", recording=rec, params={"reward": ["gold", "rewarded_historyR"]})
    with pytest.raises(RecordingError, match="has no trials table"):
        run_step("fit_choice_model", recording=Recording.from_arrays(spike_times=[[0.1]]))
    with pytest.raises(ParameterError, match=r"option_labels names 3 options .* has 2"):
        run_step("fit_choice_model", recording=rec,
                 params={"option_labels": ["left", "right", "centre"], "n_starts": 1})


@pytest.mark.parametrize("params, match", [
    ({"parameters": ["alpha"]}, r"including alpha and beta"),
    ({"parameters": ["alpha", "beta", "gamma"]}, r"params.parameters: must be"),
    ({"bounds": {"alpha": 5}}, r"\[low, high\] with low <= high"),
    ({"bounds": {"beta": [10, 1]}}, r"params.bounds: must be .*Got {'beta': \[10, 1\]}"),
    ({"bounds": {"temperature": [0, 1]}}, r"names among the model's parameters"),
])
def test_fit_choice_model_params_are_checked_before_running(tmp_path, params, match):
    """A bad parameter fails 'neuroml validate', naming it, before any session runs."""
    from neuroml.pipeline.config import load_pipeline

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "steps": [{"step": "fit_choice_model",
                                                            "params": params}]}))
    with pytest.raises(ParameterError, match=match):
        load_pipeline(path)
    good = {"parameters": ["alpha", "beta", "bias"], "bounds": {"beta": [0, 20],
                                                                "bias_1": [-1, 1]}}
    path.write_text(yaml.safe_dump({"name": "p", "steps": [{"step": "fit_choice_model",
                                                            "params": good}]}))
    load_pipeline(path)


# ---------------------------------------------------------------------- rpe_response
def test_rpe_response_finds_the_planted_response_against_scikit_learn():
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_score

    rec, true_rpe = simulate_session(0.4, 5.0, n_trials=200, seed=7)
    values = run_step("fit_choice_model", recording=rec, params={"n_starts": 2})["choice_values"]
    params = {"source": "dff", "window": [-0.5, 1.0], "bin_size": 0.25,
              "response_window": [0.0, 0.5], "n_permutations": 50}
    out = run_step("rpe_response", recording=rec, values=values, params=params)
    m = out["rpe_response"]
    ok = values["rpe"].notna().to_numpy()
    ep = rec.epochs("reward_outcome_time", (-0.5, 1.0), 0.25, source="dff",
                    trials=rec.trials.index[ok])
    y = ep.sel(time=slice(0.0, 0.5)).mean(("time", "channel")).values
    x = values.loc[ok, "rpe"].to_numpy()
    assert m["slope"] == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)
    assert m["r"] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-9)
    r2 = cross_val_score(LinearRegression(), x[:, None], y, cv=KFold(5), scoring="r2").mean()
    assert m["r2"] == pytest.approx(r2, abs=1e-8)
    assert m["r2"] > 0.3 and m["p_value"] == pytest.approx(1 / 51)
    assert m["n_trials"] == ok.sum() and m["n_units"] == 1 and m["source"] == "dff"
    # the fitted model's RPE is close to the agent's own
    assert np.corrcoef(x, true_rpe[ok])[0, 1] > 0.9
    # over time: nothing before the outcome, the response after it
    r2t = out["rpe_r2_over_time"]
    assert r2t.dims == ("time",) and set(r2t.coords) >= {"p_value", "slope"}
    assert r2t.sel(time=slice(None, 0)).max() < 0.05
    assert m["peak_time"] > 0 and m["peak_r2"] == pytest.approx(float(r2t.max()))
    assert out["rpe_response_units"].index.name == "channel"
    assert len(out["rpe_response_figure"].axes) == 2


def test_rpe_response_on_spike_counts_per_unit():
    rec, _ = simulate_session(0.4, 5.0, n_trials=200, seed=8)
    values = run_step("fit_choice_model", recording=rec, params={"n_starts": 2})["choice_values"]
    out = run_step("rpe_response", recording=rec, values=values,
                   params={"window": [-0.5, 1.0], "bin_size": 0.5, "baseline": [-1.0, 0.0],
                           "response_window": [0.0, 0.5], "n_permutations": 30,
                           "time_resolved": False})
    units = out["rpe_response_units"]
    assert units.index.name == "unit" and len(units) == 2
    assert units["slope"].iloc[0] > 1.0 and units["p_value"].iloc[0] == pytest.approx(1 / 31)
    assert units["r2"].iloc[1] < 0.05  # the unit without a response
    m = out["rpe_response"]
    assert m["source"] == "spikes" and m["n_units"] == 2 and m["n_significant_units"] >= 1
    assert out["rpe_r2_over_time"] is None and "peak_r2" not in m
    # baseline subtraction in Hz: the slope of unit 0 equals a direct computation
    ok = values["rpe"].notna().to_numpy()
    sel = rec.trials.index[ok]
    resp = rec.epochs("reward_outcome_time", (0.0, 0.5), 0.5, trials=sel).values[:, 0, 0] / 0.5
    base = rec.epochs("reward_outcome_time", (-1.0, 0.0), 0.5, trials=sel).values[:, :, 0]
    y = resp - base.mean(1) / 0.5
    assert units["slope"].iloc[0] == pytest.approx(np.polyfit(values["rpe"][ok], y, 1)[0],
                                                   rel=1e-9)


def test_rpe_response_errors():
    rec, _ = simulate_session(0.4, 5.0, n_trials=60, seed=9)
    values = run_step("fit_choice_model", recording=rec, params={"n_starts": 1})["choice_values"]
    with pytest.raises(RecordingError, match="no column 'delta'"):
        run_step("rpe_response", recording=rec, values=values, params={"rpe": "delta"})
    with pytest.raises(RecordingError, match=r"no signal \(any of \['G_1', 'G_2'\]\) for the "
                                             r"'source' parameter.*its signals: \["):
        run_step("rpe_response", recording=rec, values=values, params={"source": ["G_1", "G_2"]})
    with pytest.raises(RecordingError, match="no bin centre lies in response_window"):
        run_step("rpe_response", recording=rec, values=values,
                 params={"window": [0, 1], "response_window": [2, 3]})
    with pytest.raises(RecordingError, match="must be the same trials"):
        run_step("rpe_response", recording=rec, values=values.iloc[:10])


# ---------------------------------------------------------------------- pipelines
def test_choice_models_pipeline_gives_a_table_of_learning_rates(sessions, tmp_path):
    folder, truth = sessions
    report = run_pipeline(os.path.join(ROOT, "pipelines", "choice_models.yaml"), folder,
                          tmp_path / "out", device="cpu", progress=False)
    assert report.ok and report.n_ok == 3
    summary = pd.read_csv(report.summary_path).set_index("recording")
    assert list(summary.index) == sorted(truth)
    for sid, (alpha, beta) in truth.items():
        row = summary.loc[sid]
        assert abs(row["choice_model.alpha"] - alpha) < 0.15, sid
        assert abs(np.log(row["choice_model.beta"] / beta)) < 0.5, sid
        assert row["choice_model.n_trials"] + row["choice_model.n_no_response"] == 300
        files = {p.name for p in (tmp_path / "out" / sid).iterdir()}
        assert {"choice_model.json", "choice_values.csv", "choice_probability.png"} <= files
    table = pd.read_csv(tmp_path / "out" / "session_0" / "choice_values.csv", index_col="trial")
    assert table.shape[0] == 300 and {"rpe", "q_0", "q_1", "p_1"} <= set(table.columns)
    assert table.index.tolist() == list(range(300)) and "trial.1" not in table.columns


def test_pipeline_with_the_rpe_response_step(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    simulate_session(0.3, 5.0, n_trials=150, seed=3)[0].to_nwb(folder / "s.nwb")
    text = """
name: rpe
steps:
  - step: fit_choice_model
    params: {n_starts: 2}
  - step: rpe_response
    params: {source: [G_1, dff], window: [-0.5, 1.0], bin_size: 0.5, n_permutations: 20,
             response_window: [0.0, 0.5]}
"""
    path = tmp_path / "rpe.yaml"
    path.write_text(text)
    report = run_pipeline(path, folder, tmp_path / "out", device="cpu", progress=False)
    assert report.ok
    row = pd.read_csv(report.summary_path).iloc[0]
    assert row["rpe_response.source"] == "dff" and row["rpe_response.r2"] > 0.2
    assert row["rpe_response.p_value"] == pytest.approx(1 / 21)
    r2t = xr.load_dataarray(tmp_path / "out" / "s" / "rpe_r2_over_time.nc")
    assert r2t.sizes["time"] == 3 and "p_value" in r2t.coords
    assert (tmp_path / "out" / "s" / "rpe_response_figure.png").stat().st_size > 10_000


# ---------------------------------------------------------------------- real data
def test_neuroml_run_on_the_real_aind_sessions(tmp_path, capsys):
    from neuroml.cli import main

    files = [REAL_DATA / f"mouse_dynamic_foraging_bandit_aind_{s}.nwb" for s in AIND]
    if not all(f.exists() for f in files):
        pytest.skip("the AIND dynamic-foraging sessions are not available")
    folder = tmp_path / "sessions"
    folder.mkdir()
    for f in files:
        (folder / f.name).symlink_to(f)
    out = tmp_path / "out"
    assert main(["run", os.path.join(ROOT, "pipelines", "choice_models.yaml"), str(folder),
                 "--out", str(out), "--device", "cpu", "-q"]) == 0
    summary = pd.read_csv(out / "summary.csv").set_index("recording")
    assert (summary["status"] == "ok").all() and len(summary) == 3
    for session, n in AIND.items():
        row = summary.loc[f"mouse_dynamic_foraging_bandit_aind_{session}"]
        assert row["choice_model.n_trials"] == n  # no-response trials (2) left out
        assert 0 < row["choice_model.alpha"] < 1 and 0 < row["choice_model.beta"] <= 50
        # 689514's side preference: a learning rate near 0 followed strictly, beta at 50
        at_bound = "" if pd.isna(row["choice_model.at_bound"]) else row["choice_model.at_bound"]
        assert at_bound == ("beta" if session == "689514" else "")
        values = pd.read_csv(out / f"mouse_dynamic_foraging_bandit_aind_{session}" /
                             "choice_values.csv")
        c, r = values["choice"].to_numpy(), values["reward"].fillna(0).to_numpy()
        assert row["choice_model.nll"] <= scipy_fit(c, r).fun + 1e-3


def test_rpe_response_on_the_real_photometry_session():
    from neuroml import load_recording

    path = REAL_DATA / "mouse_dynamic_foraging_photometry_aind_717531.zarr.nwb"
    if not path.exists():
        pytest.skip(f"{path.name} is not available")
    rec = load_recording(path)
    fit = run_step("fit_choice_model", recording=rec, params={"n_starts": 2})
    assert fit["choice_model"]["n_trials"] == 672  # 725 trials, 53 without a response
    out = run_step("rpe_response", recording=rec, values=fit["choice_values"],
                   params={"source": ["G_1"], "baseline": [-1.0, 0.0], "n_permutations": 50,
                           "time_resolved": False})
    m = out["rpe_response"]
    assert m["source"] == "G_1" and m["align_to"] == "reward_outcome_time"
    # trials whose window has no signal samples (NaN) are left out
    assert 500 < m["n_trials"] <= 672
    assert np.isfinite([m["r2"], m["slope"], m["p_value"]]).all()
    # this file's green channel has no outcome-locked response (see docs/user-guide/rl.md)
    assert m["r2"] < 0.05
