"""QLearning fit to behaviour: SciPy per-subject fits on real data, parameter recovery,
the optional terms, outputs, errors, save/load and devices."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import neuroml
from neuroml.errors import NotFittedError, ParameterError
from neuroml.rl.bandit import block_probabilities
from neuroml.rl.choice import QLearning
from neuroml.rl.choice_data import read_choice_engineering
from neuroml.rl.q_learning import q_learning
from tests.conftest import REAL_DATA

HUMANS = REAL_DATA / "human_two_armed_bandit_dan_loewenstein"


def _reference():
    """benchmarks/_choice_reference.py: a per-subject Python loop + SciPy L-BFGS-B."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_choice_reference.py"
    spec = importlib.util.spec_from_file_location("_choice_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _agents(n, T, params, columns=("alpha", "beta"), bounds=None, seed=0):
    p = block_probabilities(T, block_length=(40, 80), n_agents=n, random_state=seed)
    return QLearning(columns, bounds=bounds).simulate(T, p, params=params, random_state=seed + 1)


# ---------------------------------------------------------------------- evidence
def test_every_human_subject_fits_at_least_as_well_as_scipy_from_a_grid():
    if not HUMANS.is_dir():
        pytest.skip(f"{HUMANS} is not available")
    df = read_choice_engineering(HUMANS)
    ref = _reference()
    labels, _, scipy_nll = ref.fit_all(df["choice"], df["reward"], df["subject"])
    model = QLearning(random_state=0, device="cpu").fit(df["choice"], df["reward"],
                                                         df["subject"])
    ours = model.nll_.loc[labels].to_numpy()
    assert len(labels) == 97
    worse = ours - scipy_nll
    assert worse.max() <= 1e-3, (labels[int(np.argmax(worse))], worse.max())
    # the reported NLL is the model's: recompute it for every subject with the loop
    for label in labels[:10]:
        rows = df["subject"] == label
        p = model.params_.loc[label]
        loop = ref.negative_log_likelihood(df.loc[rows, "choice"].tolist(),
                                           df.loc[rows, "reward"].tolist(), p["alpha"], p["beta"])
        assert model.nll_.loc[label] == pytest.approx(loop, rel=1e-9)
    assert model.summary_["converged"].all()


def test_parameter_recovery_on_simulated_agents():
    # one design of the recovery study; over ten such designs (seeds 0-9 here)
    # r(log beta) was 0.84-0.92 (median 0.90): agents with alpha and beta both high choose
    # almost deterministically, their beta is not identified and is reported at its bound
    n, T, seed = 150, 500, 4
    rng = np.random.default_rng(seed)
    alpha, beta = rng.uniform(0.05, 0.95, n), rng.uniform(1, 10, n)
    p = block_probabilities(T, ((0.8, 0.2), (0.2, 0.8)), block_length=(40, 80), n_agents=n,
                            random_state=seed + 10)
    sim = QLearning().simulate(T, p, params={"alpha": alpha, "beta": beta},
                               random_state=seed + 11)
    model = QLearning(n_starts=4, random_state=0, device="cpu").fit(
        sim["choice"], sim["reward"], sim["subject"])
    fitted = model.params_.loc[np.arange(n)]
    r_alpha = np.corrcoef(fitted["alpha"], alpha)[0, 1]
    r_beta = np.corrcoef(np.log(fitted["beta"]), np.log(beta))[0, 1]
    assert r_alpha >= 0.85 and r_beta >= 0.85, (r_alpha, r_beta)


@pytest.mark.parametrize("case", ["alpha_neg", "forget", "bias", "perseveration"])
def test_optional_parameters_are_recovered(case):
    n, T = 50, 400
    rng = np.random.default_rng(1)
    params = {"alpha": rng.uniform(0.2, 0.8, n), "beta": rng.uniform(3, 10, n)}
    bounds, thresholds = None, {}
    if case == "alpha_neg":
        params.update(alpha=rng.uniform(0.1, 0.9, n), alpha_neg=rng.uniform(0.1, 0.9, n))
        columns, thresholds = ("alpha", "alpha_neg", "beta"), {"alpha": 0.65, "alpha_neg": 0.8}
    elif case == "forget":
        params["forget"] = rng.uniform(0.0, 0.5, n)
        columns, thresholds = ("alpha", "beta", "forget"), {"forget": 0.6}
    elif case == "bias":
        params["bias"] = rng.uniform(-1.5, 1.5, n)
        columns, thresholds = ("alpha", "beta", "bias"), {"bias": 0.85}
    else:  # a kernel of the last choice: the rate fixed at 1
        params.update(perseveration=rng.uniform(-1, 2, n), perseveration_rate=np.ones(n))
        columns, bounds = ("alpha", "beta", "perseveration"), {"perseveration_rate": (1, 1)}
        thresholds = {"perseveration": 0.85}
    sim = _agents(n, T, params, columns, bounds, seed=20)
    model = QLearning(columns, bounds=bounds, n_starts=2, random_state=0, device="cpu").fit(
        sim["choice"], sim["reward"], sim["subject"])
    fitted = model.params_.loc[np.arange(n)]
    for name, least in thresholds.items():
        r = np.corrcoef(fitted[name], params[name])[0, 1]
        assert r >= least, (name, r)
    if case == "perseveration":
        assert (fitted["perseveration_rate"] == 1.0).all()
        assert model.summary_["aic"].equals(2 * 3 + 2 * model.summary_["nll"])  # rate not counted


def test_perseveration_with_its_weight_held_at_zero_is_the_base_model():
    n, T = 8, 300
    rng = np.random.default_rng(2)
    sim = _agents(n, T, {"alpha": rng.uniform(0.2, 0.8, n), "beta": rng.uniform(2, 8, n)})
    base = QLearning(random_state=0, device="cpu").fit(sim["choice"], sim["reward"],
                                                        sim["subject"])
    zero = QLearning(("alpha", "beta", "perseveration"), bounds={"perseveration": (0, 0)},
                     random_state=0, device="cpu").fit(sim["choice"], sim["reward"],
                                                      sim["subject"])
    np.testing.assert_allclose(zero.nll_.to_numpy(), base.nll_.to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(zero.params_[["alpha", "beta"]].to_numpy(),
                               base.params_.to_numpy(), rtol=1e-3)
    free = QLearning(("alpha", "beta", "perseveration"), random_state=0, device="cpu").fit(
        sim["choice"], sim["reward"], sim["subject"])
    assert (free.nll_.to_numpy() <= base.nll_.to_numpy() + 1e-6).all()  # nested model


def test_no_response_trials_leave_the_fit_unchanged():
    sim = _agents(3, 200, {"alpha": [0.2, 0.5, 0.8], "beta": [3.0, 5.0, 8.0]}, seed=3)
    clean = QLearning(random_state=0, device="cpu").fit(sim["choice"], sim["reward"],
                                                         sim["subject"])
    gappy = sim.copy()
    rng = np.random.default_rng(4)
    extra = gappy.sample(40, random_state=5).assign(choice=-1, reward=np.nan)
    extra.loc[extra.index[:10], "choice"] = np.nan
    gappy = pd.concat([gappy, extra]).sort_index(kind="stable")
    fitted = QLearning(random_state=0, device="cpu").fit(gappy["choice"], gappy["reward"],
                                                          gappy["subject"])
    np.testing.assert_allclose(fitted.nll_.to_numpy(), clean.nll_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(fitted.params_.to_numpy(), clean.params_.to_numpy(), rtol=1e-3)
    assert fitted.n_trials_.tolist() == [200, 200, 200]
    assert rng is not None


def test_subjects_fit_together_equal_subjects_fit_alone():
    sim = _agents(4, 250, {"alpha": [0.1, 0.4, 0.6, 0.9], "beta": [2.0, 4.0, 6.0, 9.0]}, seed=6)
    sim = sim[~((sim["subject"] == 2) & (sim["trial"] >= 150))]  # subjects of unequal length
    together = QLearning(random_state=0, device="cpu").fit(sim["choice"], sim["reward"],
                                                            sim["subject"])
    for s in range(4):
        one = sim[sim["subject"] == s]
        alone = QLearning(random_state=1, device="cpu").fit(one["choice"], one["reward"])
        assert together.nll_.loc[s] == pytest.approx(alone.nll_.iloc[0], abs=1e-6)


def test_a_subject_who_never_changes_option_has_beta_at_its_bound():
    rng = np.random.default_rng(7)
    sim = _agents(1, 120, {"alpha": 0.4, "beta": 5.0}, seed=8)
    constant = pd.DataFrame({"subject": 1, "trial": np.arange(80), "choice": 1,
                             "reward": (rng.random(80) < 0.7).astype(float)})
    data = pd.concat([sim, constant], ignore_index=True)
    model = QLearning(random_state=0, device="cpu", bounds={"beta": (0, 30)}).fit(
        data["choice"], data["reward"], data["subject"])
    assert model.params_.loc[1, "beta"] == 30.0
    assert model.summary_.set_index("subject").loc[1, "constant_choice"]
    assert model.params_.loc[0, "beta"] < 30.0
    assert not model.summary_.set_index("subject").loc[0, "constant_choice"]
    assert model.summary_["at_bound"].tolist() == ["", "beta"]
    # its NLL is the model's at the reported parameters
    p = model.params_.loc[1]
    direct = q_learning(constant["choice"], constant["reward"], p["alpha"], p["beta"])
    assert model.nll_.loc[1] == pytest.approx(-float(direct.log_likelihood.sum()), rel=1e-9)


# ---------------------------------------------------------------------- outputs
@pytest.fixture(scope="module")
def fitted():
    sim = _agents(2, 150, {"alpha": [0.3, 0.6], "beta": [4.0, 6.0]}, seed=9)
    sim["subject"] = sim["subject"].map({0: "ann", 1: "bob"})
    sim.loc[sim.index[[5, 70, 200]], ["choice", "reward"]] = [-1, np.nan]
    model = QLearning(("alpha", "beta", "perseveration"), n_starts=2, random_state=0,
                      device="cpu").fit(sim["choice"], sim["reward"], sim["subject"])
    return model, sim


def test_fitted_tables(fitted):
    model, sim = fitted
    assert model.params_.index.tolist() == ["ann", "bob"]
    assert model.params_.columns.tolist() == ["alpha", "beta", "perseveration",
                                              "perseveration_rate"]
    assert model.n_trials_.tolist() == [148, 149]
    k = 4
    np.testing.assert_allclose(model.aic_, 2 * k + 2 * model.nll_)
    np.testing.assert_allclose(model.bic_, k * np.log(model.n_trials_) + 2 * model.nll_)
    lo, hi = model.bounds_["perseveration"]
    assert (lo, hi) == (-5.0, 5.0) and model.bounds_["beta"] == (0.0, 50.0)


def test_predict_proba_and_values_follow_the_learner(fitted):
    model, sim = fitted
    proba = model.predict_proba(sim["choice"], sim["reward"], sim["subject"])
    assert isinstance(proba, pd.DataFrame) and proba.index.equals(sim.index)
    table = model.values(sim["choice"], sim["reward"], sim["subject"])
    assert table.index.equals(sim.index)
    assert {"subject", "trial", "q_0", "q_1", "q_chosen", "rpe", "p_chosen", "kernel_0"} <= \
        set(table.columns)
    for name in ("ann", "bob"):
        rows = (sim["subject"] == name).to_numpy()
        p = model.params_.loc[name]
        out = q_learning(sim.loc[rows, "choice"], sim.loc[rows, "reward"], p["alpha"], p["beta"],
                         perseveration=p["perseveration"],
                         perseveration_rate=p["perseveration_rate"])
        np.testing.assert_allclose(proba.to_numpy()[rows], out.log_prob.exp().numpy(),
                                   rtol=1e-12)
        np.testing.assert_allclose(table.loc[rows, ["q_0", "q_1"]].to_numpy(),
                                   out.values.numpy(), rtol=1e-12)
        answered = sim.loc[rows, "choice"].to_numpy() >= 0
        np.testing.assert_allclose(table.loc[rows, "rpe"].to_numpy()[answered],
                                   out.rpe.numpy()[answered], rtol=1e-12)
        assert model.nll_.loc[name] == pytest.approx(-float(out.log_likelihood.sum()), rel=1e-9)
    assert table["rpe"].isna().sum() == 3 and table["p_chosen"].isna().sum() == 3
    np.testing.assert_allclose(table["reward"] - table["q_chosen"], table["rpe"])


def test_outputs_follow_the_input_type(fitted):
    model, sim = fitted
    ann = sim[sim["subject"] == "ann"]
    c, r, s = ann["choice"].to_numpy(), ann["reward"].to_numpy(), ann["subject"].to_numpy()
    as_numpy = model.predict_proba(c, r, s)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (150, 2)
    as_tensor = model.predict_proba(torch.tensor(c), torch.tensor(r), s)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.device == model.device_
    np.testing.assert_allclose(as_tensor.cpu().numpy(), as_numpy)
    da = xr.DataArray(c, dims="trial", coords={"trial": np.arange(100, 250)})
    as_da = model.predict_proba(da, r, s)
    assert as_da.dims == ("trial", "option") and as_da["trial"].values[0] == 100
    one = QLearning(n_starts=1, random_state=0, device="cpu").fit(c, r)
    assert one.predict_proba(c, r).shape == (150, 2)  # one subject: no labels needed


def test_simulate_from_the_fitted_subjects(fitted):
    model, _ = fitted
    p = block_probabilities(100, block_length=25)
    sim = model.simulate(100, p, random_state=0)
    assert sim.columns.tolist() == ["subject", "trial", "choice", "reward", "p_reward_0",
                                    "p_reward_1"]
    assert sim["subject"].unique().tolist() == ["ann", "bob"] and len(sim) == 200
    again = model.simulate(100, p, random_state=0)
    pd.testing.assert_frame_equal(sim, again)
    with pytest.raises(ParameterError, match="missing"):
        model.simulate(100, p, params={"alpha": 0.3, "beta": 2.0})


def test_save_and_load_round_trip(fitted, tmp_path):
    model, sim = fitted
    path = model.save(tmp_path / "q.pt")
    back = neuroml.load(path)
    pd.testing.assert_frame_equal(back.params_, model.params_)
    pd.testing.assert_series_equal(back.nll_, model.nll_)
    np.testing.assert_allclose(back.predict_proba(sim["choice"], sim["reward"], sim["subject"]),
                               model.predict_proba(sim["choice"], sim["reward"], sim["subject"]))


def test_same_random_state_same_fit():
    sim = _agents(3, 150, {"alpha": [0.2, 0.5, 0.8], "beta": [2.0, 5.0, 9.0]}, seed=11)
    a = QLearning(n_starts=3, random_state=42, device="cpu").fit(sim["choice"], sim["reward"],
                                                                  sim["subject"])
    b = QLearning(n_starts=3, random_state=42, device="cpu").fit(sim["choice"], sim["reward"],
                                                                  sim["subject"])
    pd.testing.assert_frame_equal(a.summary_, b.summary_)


# ---------------------------------------------------------------------- errors
def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.integers(0, 2, n).astype(float), rng.random(n).round(), np.repeat(["a", "b"], n // 2)


@pytest.mark.parametrize("change, match", [
    (lambda c, r, s: (np.r_[c[:-1], 1.5], r, s), "'choices' argument holds 1.5"),
    (lambda c, r, s: (c, np.r_[np.nan, r[1:]], s), "'rewards' argument is NaN"),
    (lambda c, r, s: (c, r[:-1], s), "'rewards' argument has 39 trials"),
    (lambda c, r, s: (c, r, s[:-1]), "'subject' argument must give one label per trial"),
    (lambda c, r, s: (np.r_[c[:25], -np.ones(15)], r, s), "subject 'b' only 5 answered"),
    (lambda c, r, s: (np.c_[c, c], r, s), "'choices' argument must be 1-D"),
])
def test_bad_data_names_the_argument(change, match):
    c, r, s = change(*_data())
    with pytest.raises(ParameterError, match=match):
        QLearning(n_starts=1).fit(c, r, s)


@pytest.mark.parametrize("params, match", [
    ({"parameters": ("alpha", "beta", "gamma")}, "unknown: \\['gamma'\\]"),
    ({"parameters": ("alpha",)}, "'parameters' parameter"),
    ({"parameters": ("alpha", "beta", "perseveration_rate")}, "without 'perseveration'"),
    ({"bounds": {"forget": (0, 1)}}, "'bounds' parameter .* names \\['forget'\\]"),
    ({"bounds": {"beta": (5, 1)}}, "low <= high"),
    ({"n_starts": 0}, "'n_starts' parameter"),
    ({"tol": -1.0}, "'tol' parameter"),
])
def test_bad_parameters_are_named(params, match):
    c, r, s = _data()
    with pytest.raises(ParameterError, match=match):
        QLearning(**params).fit(c, r, s)


def test_predicting_needs_a_fit_and_known_subjects(fitted):
    c, r, s = _data()
    with pytest.raises(NotFittedError):
        QLearning().predict_proba(c, r, s)
    model, _ = fitted
    with pytest.raises(ParameterError, match="not fit to"):
        model.predict_proba(c, r, s)
    with pytest.raises(ParameterError, match="'subject' argument is needed"):
        model.values(c, r)
    with pytest.raises(ParameterError, match="integers 0..1"):
        model.predict_proba(np.r_[c[:-1], 2], r, np.where(s == "a", "ann", "bob"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_matches_cpu():
    sim = _agents(20, 300, {"alpha": np.linspace(0.1, 0.9, 20), "beta": np.linspace(1, 9, 20)})
    cpu = QLearning(random_state=0, device="cpu").fit(sim["choice"], sim["reward"],
                                                       sim["subject"])
    gpu = QLearning(random_state=0, device="cuda").fit(sim["choice"], sim["reward"],
                                                        sim["subject"])
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.nll_.to_numpy(), cpu.nll_.to_numpy(), atol=1e-6)
    proba = gpu.predict_proba(torch.tensor(sim["choice"].to_numpy(), device="cuda"),
                              torch.tensor(sim["reward"].to_numpy(), device="cuda"),
                              sim["subject"])
    assert proba.device.type == "cuda"


def test_extended_model_finds_the_corner_optimum_of_a_human_subject():
    """alpha_neg on a real subject whose best fit is in a corner of the bounds (alpha_neg
    at 0, beta at 50): restarts are pruned for trailing only once their gradient is small
    (pruned sooner, this subject ended 26.6 above SciPy's 27-start grid)."""
    if not HUMANS.is_dir():
        pytest.skip(f"{HUMANS} is not available")
    df = read_choice_engineering(HUMANS)
    label = "1548316696_47"
    rows = df[df["subject"] == label]
    columns = ("alpha", "alpha_neg", "beta")
    _, scipy_nll, _ = _reference().fit_subject(rows["choice"].to_numpy(),
                                               rows["reward"].to_numpy(), columns, 0.5, 2)
    model = QLearning(columns, random_state=0, device="cpu").fit(df["choice"], df["reward"],
                                                                 df["subject"])
    assert model.nll_.loc[label] <= scipy_nll + 1e-3
    assert model.params_.loc[label, "beta"] == pytest.approx(50.0, abs=0.1)
