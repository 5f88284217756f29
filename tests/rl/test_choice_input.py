"""Bad input to the choice models and bandit helpers: each gets a ParameterError or
RecordingError naming the argument (or file), the bad value and what is allowed; never a
raw numpy / pandas / torch error or a silently wrong result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neuroml.errors import ParameterError, RecordingError
from neuroml.rl.bandit import block_probabilities, simulate_bandit
from neuroml.rl.choice import QLearning
from neuroml.rl.choice_data import choices_from_trials, read_choice_engineering
from neuroml.rl.q_learning import q_learning

CPU = {"device": "cpu", "random_state": 0, "n_starts": 2}


@pytest.fixture(scope="module")
def sim():
    p = block_probabilities(200, block_length=40, random_state=0)
    return QLearning().simulate(200, p, params={"alpha": 0.3, "beta": 5.0}, random_state=1)


# ---------------------------------------------------------------------- option coding
def test_one_based_choices_are_refused(sim):
    c, r = sim["choice"].to_numpy(), sim["reward"].to_numpy()
    with pytest.raises(ParameterError, match=r"'choices' argument holds the options \[1, 2\] "
                                             r"but no subject ever chose \[0\]") as err:
        QLearning(**CPU).fit(c + 1, r)
    message = str(err.value)
    assert "0..K-1" in message and "Subtract 1" in message and "negative or NaN" in message
    with pytest.raises(ParameterError, match=r"ever chose \[1\]"):
        QLearning(**CPU).fit(np.where(c == 1, 2, 0), r)  # options 0 and 2 only
    # a no-response code of 9 on a two-option task: options 2..8 were never chosen
    with pytest.raises(ParameterError, match=r"ever chose \[2, 3, 4, 5, 6, 7, 8\]"):
        QLearning(**CPU).fit(np.r_[c[:-3], 9, 9, 9], r)


def test_n_options_states_a_task_with_options_nobody_chose(sim):
    """A three-armed task whose subject never picks option 1: n_options says K = 3."""
    c, r = sim["choice"].to_numpy(), sim["reward"].to_numpy()
    three = np.where(c == 1, 2, 0)
    with pytest.raises(ParameterError, match=r"QLearning\(n_options=\.\.\.\)"):
        QLearning(**CPU).fit(three, r)
    model = QLearning(n_options=3, **CPU).fit(three, r)
    assert model.n_options_ == 3 and np.isfinite(model.nll_).all()
    values = model.values(three, r)
    np.testing.assert_array_equal(values["q_1"], 0.5)  # never chosen: stays at q0
    # the same fit as a two-option task with a third option of fixed value q0 the subject
    # never takes: lower likelihood than the two-option fit, never better
    two = QLearning(**CPU).fit(c, r)
    assert model.nll_.iloc[0] >= two.nll_.iloc[0] - 1e-9
    with pytest.raises(ParameterError, match=r"holds option 2, but the 'n_options' parameter "
                                             r"of QLearning is 2"):
        QLearning(n_options=2, **CPU).fit(three, r)
    # and a K = 2 task whose only subject always picks option 1 keeps n_options 2
    assert QLearning(n_options=2, **CPU).fit(np.ones(60), r[:60]).n_options_ == 2


def test_a_lone_subject_who_only_chooses_option_1_still_fits():
    rng = np.random.default_rng(3)
    r = (rng.random(60) < 0.6).astype(float)
    model = QLearning(**CPU).fit(np.ones(60), r)
    assert model.n_options_ == 2
    assert model.summary_.loc[0, "constant_choice"]
    assert model.params_.loc[0, "beta"] == 50.0
    p = model.params_.loc[0]
    direct = q_learning(np.ones(60), r, p["alpha"], p["beta"])
    assert model.nll_.loc[0] == pytest.approx(-float(direct.log_likelihood.sum()), rel=1e-9)


def test_options_are_shared_by_subjects_and_an_unchosen_one_keeps_q0():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2, 80)          # subject a: options 0 and 1 only
    b = rng.integers(1, 3, 80)          # subject b: options 1 and 2 only
    c = np.r_[a, b].astype(float)
    r = (rng.random(160) < 0.5).astype(float)
    s = np.repeat(["a", "b"], 80)
    model = QLearning(q0=0.25, **CPU).fit(c, r, s)
    assert model.n_options_ == 3
    values = model.values(c, r, s)
    np.testing.assert_array_equal(values.loc[values.subject == "a", "q_2"], 0.25)
    np.testing.assert_array_equal(values.loc[values.subject == "b", "q_0"], 0.25)
    proba = model.predict_proba(c, r, s)
    assert (proba[:80, 2] > 0).all() and np.allclose(proba.sum(1), 1)


# ---------------------------------------------------------------------- pandas alignment
def test_series_with_different_indexes_are_refused(sim):
    c = pd.Series(sim["choice"].to_numpy(), index=np.arange(1000, 1200))
    r = pd.Series(sim["reward"].to_numpy(), index=np.arange(1000, 1200))
    shuffled = r.sample(frac=1, random_state=0)
    with pytest.raises(ParameterError, match=r"'choices' and 'rewards' arguments are pandas "
                                             r"Series with different indexes.*reindex"):
        QLearning(**CPU).fit(c, shuffled)
    subject = pd.Series("x", index=np.arange(200))
    with pytest.raises(ParameterError, match="'choices' and 'subject'"):
        QLearning(**CPU).fit(c, r, subject)
    model = QLearning(**CPU).fit(c, r)
    for method in (model.predict_proba, model.values):
        with pytest.raises(ParameterError, match="'choices' and 'rewards'"):
            method(c, shuffled)
    # aligned by label, the shuffled rewards give the fit of the original pairing
    again = QLearning(**CPU).fit(c, shuffled.reindex(c.index))
    np.testing.assert_allclose(again.params_.to_numpy(), model.params_.to_numpy(), rtol=1e-9)
    arrays = QLearning(**CPU).fit(c.to_numpy(), r.to_numpy())
    np.testing.assert_allclose(arrays.params_.to_numpy(), model.params_.to_numpy(), rtol=1e-9)
    assert model.predict_proba(c, r).index.equals(c.index)


# ---------------------------------------------------------------------- domains
@pytest.mark.parametrize("bounds, match", [
    ({"beta": 5}, r"'beta' the bounds 5; they must be a pair \(low, high\)"),
    ({"beta": (0, 1, 2)}, r"'beta' the bounds \(0, 1, 2\); they must be a pair"),
    ({"beta": ("a", "b")}, r"'beta' the bounds \('a', 'b'\); they must be a pair"),
    ({"beta": (0, np.inf)}, "finite numbers with low <= high"),
    ({"alpha": (0.8, 0.2)}, "low <= high"),
    ({"alpha": (0, 2)}, r"'alpha' the bounds \(0.0, 2.0\); they must lie within its domain "
                        r"\[0, 1\]"),
    ({"alpha": (-1, 1)}, r"domain \[0, 1\]"),
    ({"beta": (-50, 50)}, r"'beta'.*domain \[0, inf\]"),
])
def test_bounds_must_be_pairs_within_the_domain(sim, bounds, match):
    with pytest.raises(ParameterError, match=match):
        QLearning(bounds=bounds, **CPU).fit(sim["choice"], sim["reward"])


def test_bounds_as_arrays_tensors_and_numpy_scalars(sim):
    c, r = sim["choice"], sim["reward"]
    for pair in (np.array([0.0, 20.0]), torch.tensor([0.0, 20.0]),
                 (np.float64(0.0), np.int64(20)), [np.array(0.0), np.array(20.0)]):
        model = QLearning(bounds={"beta": pair}, **CPU).fit(c, r)
        assert model.bounds_["beta"] == (0.0, 20.0)


def test_bounds_for_the_optional_terms_and_q0():
    rng = np.random.default_rng(5)
    c, r = rng.integers(0, 2, 60), rng.random(60).round()
    for name, bounds in (("forget", (-0.1, 1)), ("perseveration", (0, 1.5))):
        parameters = ("alpha", "beta", name)
        with pytest.raises(ParameterError, match=r"domain \[0, 1\]"):
            QLearning(parameters, bounds={name if name == "forget" else "perseveration_rate":
                                          bounds}, **CPU).fit(c, r)
    model = QLearning(("alpha", "beta", "bias"), bounds={"bias": (-20, 20),
                                                         "beta": np.array([0, 10])}, **CPU)
    assert model.fit(c, r).bounds_ == {"alpha": (0.0, 1.0), "beta": (0.0, 10.0),
                                       "bias": (-20.0, 20.0)}
    for q0 in (np.nan, np.inf):
        with pytest.raises(ParameterError, match="'q0' parameter"):
            QLearning(q0=q0, **CPU).fit(c, r)


def test_fit_without_trials_is_refused():
    with pytest.raises(ParameterError, match="'choices' argument holds no trials"):
        QLearning(**CPU).fit([], [])


# ---------------------------------------------------------------------- simulation
@pytest.mark.parametrize("n_trials", [2.5, 0, -1, True, "10"])
def test_simulate_needs_a_whole_number_of_trials(n_trials):
    with pytest.raises(ParameterError, match="'n_trials' must be an integer >= 1"):
        QLearning().simulate(n_trials, [0.8, 0.2], params={"alpha": 0.3, "beta": 5.0})


@pytest.mark.parametrize("params, match", [
    ({"alpha": -1.0, "beta": 5.0}, r"'alpha' the value -1.0; it must be in \[0, 1\]"),
    ({"alpha": 0.3, "beta": np.nan}, "'beta' the value nan; it must be a finite number >= 0"),
    ({"alpha": 0.3, "beta": np.inf}, "'beta' the value inf"),
    ({"alpha": 0.3, "beta": -2.0}, "'beta' the value -2.0"),
    ({"alpha": "a", "beta": 5.0}, "'alpha' the value 'a', which is not a number"),
    ({"alpha": [[0.3, 0.4]], "beta": 5.0}, r"'params' gives 'alpha' shape \(1, 2\)"),
    ({"alpha": [0.3, 0.4], "beta": [5, 6, 7]}, "'params'"),
])
def test_simulate_checks_the_parameter_values(params, match):
    with pytest.raises(ParameterError, match=match):
        QLearning().simulate(5, [0.8, 0.2], params=params, random_state=0)


def test_simulate_bandit_checks_its_input():
    p = np.full((10, 3), 0.5)
    with pytest.raises(ParameterError, match="n_trials >= 1"):
        simulate_bandit({"alpha": 0.3, "beta": 1.0}, np.zeros((0, 2)))
    with pytest.raises(ParameterError, match=r"'perseveration_rate' the value 2.0"):
        simulate_bandit({"alpha": 0.3, "beta": 1.0, "perseveration": 1.0,
                         "perseveration_rate": 2.0}, p)
    with pytest.raises(ParameterError, match=r"'bias' shape \(4,\); it must be \(K-1,\)"):
        simulate_bandit({"alpha": 0.3, "beta": 1.0, "bias": np.zeros(4)}, p)
    with pytest.raises(ParameterError, match="'q0' must be a finite number"):
        simulate_bandit({"alpha": 0.3, "beta": 1.0}, p, q0=np.nan)
    with pytest.raises(ParameterError, match="'reward_probabilities'"):
        simulate_bandit({"alpha": 0.3, "beta": 1.0}, [["a", "b"]])
    # an agent per row of a bias table; probabilities at the sides of [0, 1] pay as they say
    out = simulate_bandit({"alpha": 0.3, "beta": 1.0, "bias": np.zeros((2, 2))},
                          np.tile([1.0, 1.0, 0.0], (10, 1)), random_state=0)
    assert out.choices.shape == (2, 10)
    np.testing.assert_array_equal(out.rewards.numpy(), (out.choices.numpy() < 2).astype(float))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_trials": 2.5}, "'n_trials' must be an integer >= 1; got 2.5"),
    ({"n_trials": 0}, "'n_trials' must be an integer >= 1; got 0"),
    ({"n_trials": 10, "n_agents": 0}, "'n_agents' must be an integer >= 1; got 0"),
    ({"n_trials": 10, "n_agents": -1}, "'n_agents'"),
    ({"n_trials": 10, "block_length": 2.7}, "'block_length' must be an integer >= 1 .*got 2.7"),
    ({"n_trials": 10, "block_length": 0}, "'block_length'"),
    ({"n_trials": 10, "block_length": (5, 2)}, r"1 <= low <= high; got \(5, 2\)"),
    ({"n_trials": 10, "block_length": (3,)}, "'block_length'"),
    ({"n_trials": 10, "block_length": "5"}, "'block_length'"),
    ({"n_trials": 10, "probabilities": ((0.8, 0.2), (0.5,))}, "rectangular table"),
    ({"n_trials": 10, "probabilities": ((1.2, 0.2),)}, r"probabilities in \[0, 1\]"),
    ({"n_trials": 10, "probabilities": ((np.nan, 0.2),)}, "'probabilities'"),
    ({"n_trials": 10, "probabilities": np.full((2, 2, 2), 0.5)}, "'probabilities'"),
])
def test_block_probabilities_checks_its_arguments(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        block_probabilities(**kwargs)


def test_block_probabilities_accepts_numpy_integers():
    out = block_probabilities(np.int64(9), block_length=np.array([3, 3]), n_agents=np.int32(2))
    assert out.shape == (2, 9, 2)
    np.testing.assert_array_equal(out[0, :, 0], np.repeat([0.8, 0.2, 0.8], 3))
    # whole numbers written as floats (e.g. read from a file) are whole numbers
    np.testing.assert_array_equal(block_probabilities(9.0, block_length=3.0, n_agents=2.0), out)
    sim = simulate_bandit({"alpha": 0.3, "beta": 2.0}, out, q0=np.array(0.5), random_state=0)
    ref = simulate_bandit({"alpha": 0.3, "beta": 2.0}, out, q0=0.5, random_state=0)
    np.testing.assert_array_equal(sim.choices.cpu(), ref.choices.cpu())


# ---------------------------------------------------------------------- readers
_HEADER = "trial_number, is_biased_choice, side_choice, RT, observed_reward\n"


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"# Sources, of data\nsee below\nx, y, z, w\n", "is not a Choice Engineering CSV"),
    (b"\xff\xfe\x00\x81garbage\n\x00\x9c", "not a Choice Engineering CSV|lacks the columns"),
    ((_HEADER + "0, true, LEFT, 300, 1\n1, false, RIGHT, 280, abc\n").encode(),
     r"'observed_reward' column holds 'abc' on line 3"),
    ((_HEADER + "0, 1, LEFT, 300, 1\n").encode(), "'is_biased_choice' column holds 1 on line 2"),
])
def test_read_choice_engineering_names_the_file(tmp_path, content, match):
    path = tmp_path / "subject_7.csv"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=match) as err:
        read_choice_engineering(path)
    assert "subject_7.csv" in str(err.value)
    with pytest.raises(RecordingError, match="subject_7.csv"):  # the same file in a folder
        read_choice_engineering(tmp_path)


def test_read_choice_engineering_refuses_a_folder_without_csvs_and_none(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RecordingError, match="No Choice Engineering CSV files at .*folder"):
        read_choice_engineering(tmp_path)
    with pytest.raises(ParameterError, match="'path' must be a folder .* got None"):
        read_choice_engineering(None)
    good = tmp_path / "s1.csv"
    good.write_text(_HEADER + "0, true, LEFT, 300, 1\n1, false, RIGHT, 280, 0\n")
    df = read_choice_engineering(tmp_path)
    assert df["choice"].tolist() == [1, 0] and df["reward"].tolist() == [1.0, 0.0]


def test_choices_from_trials_errors_print_plain_rows_and_refuse_bad_options():
    t = pd.DataFrame({"lab": ["LEFT", "RIGHT", "NONE"], "won": ["1", "x", ""],
                      "rew": [1.0, 0.0, np.nan]}, index=[10, 11, 12])
    with pytest.raises(ParameterError, match=r"'won' reward column holds 'x' \(row 11; 1 such"):
        choices_from_trials(t, choice="lab", reward="won", options=["LEFT", "RIGHT"],
                            no_response="NONE")
    with pytest.raises(ParameterError, match=r"holds 'NONE' \(row 12\), which is not an option"):
        choices_from_trials(t, choice="lab", reward="rew", options=["LEFT", "RIGHT"])
    with pytest.raises(ParameterError, match="'options' maps 'LEFT' to 0.5; options must be "
                                             "integers"):
        choices_from_trials(t, choice="lab", reward="rew", options={"LEFT": 0.5, "RIGHT": 1})
    with pytest.raises(ParameterError, match="'options' maps 'RIGHT' to 'b'"):
        choices_from_trials(t, choice="lab", reward="rew", options={"LEFT": 0, "RIGHT": "b"})
    t["won"] = ["1", " 0", ""]  # numeric strings are numbers, a blank is none
    out = choices_from_trials(t, choice="lab", reward="won",
                              options={"LEFT": 0, "RIGHT": 1.0, "NONE": -1})
    assert out["choice"].tolist() == [0, 1, -1]
    np.testing.assert_array_equal(out["reward"].to_numpy(), [1.0, 0.0, np.nan])


# ---------------------------------------------------------------------- max_iter
def test_n_iter_stays_within_max_iter(sim):
    for max_iter, most in ((1, 1), (2, 2), (3, 3)):
        model = QLearning(max_iter=max_iter, **CPU).fit(sim["choice"], sim["reward"])
        assert 1 <= model.summary_.loc[0, "n_iter"] <= most
