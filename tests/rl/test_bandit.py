"""Bandit data helpers: trials tables -> choices, the real bandit readers, the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neuroml.errors import ParameterError, RecordingError
from neuroml.rl.bandit import block_probabilities, simulate_bandit
from neuroml.rl.choice import QLearning
from neuroml.rl.choice_data import (
    choices_from_trials,
    read_choice_engineering,
    read_dynamic_foraging,
)
from neuroml.rl.q_learning import q_learning
from tests.conftest import REAL_DATA, real_file

HUMANS = REAL_DATA / "human_two_armed_bandit_dan_loewenstein"
# (file, left, right, no response, rewarded) as listed in shared/data/real/SOURCES.md
AIND = [("mouse_dynamic_foraging_bandit_aind_703548.nwb", 179, 326, 50, 271),
        ("mouse_dynamic_foraging_bandit_aind_689514.nwb", 308, 75, 49, 239),
        ("mouse_dynamic_foraging_bandit_aind_697062.nwb", 299, 127, 44, 191),
        ("mouse_dynamic_foraging_photometry_aind_717531.zarr.nwb", 449, 223, 53, None)]


# ---------------------------------------------------------------------- trials tables
def test_choices_from_trials_takes_the_chosen_options_reward():
    trials = pd.DataFrame({"response": [0, 1, 2, 1, np.nan],
                           "rewardL": [True, True, False, False, False],
                           "rewardR": [False, False, False, True, True]},
                          index=pd.Index([10, 11, 12, 13, 14], name="trial"))
    out = choices_from_trials(trials, choice="response", reward=("rewardL", "rewardR"),
                              no_response=2)
    assert out.index.equals(trials.index)
    assert out["choice"].tolist() == [0, 1, -1, 1, -1]
    np.testing.assert_array_equal(out["reward"].to_numpy(), [1.0, 0.0, np.nan, 1.0, np.nan])


def test_choices_from_trials_maps_labels_and_keeps_columns():
    trials = pd.DataFrame({"side": ["LEFT", "RIGHT", "", "RIGHT"], "won": [1, 0, 0, 1],
                           "rt": [300, 420, np.nan, 380], "who": ["a", "a", "a", "b"]})
    out = choices_from_trials(trials, choice="side", reward="won", options=["LEFT", "RIGHT"],
                              subject="who", keep=["rt"])
    assert out["choice"].tolist() == [0, 1, -1, 1]
    assert out["subject"].tolist() == ["a", "a", "a", "b"]
    np.testing.assert_array_equal(out["rt"].to_numpy(), trials["rt"].to_numpy())
    booleans = pd.DataFrame({"chose_right": [True, False, True], "r": [1, 1, 0]})
    assert choices_from_trials(booleans, choice="chose_right", reward="r")["choice"].tolist() == \
        [1, 0, 1]


@pytest.mark.parametrize("kwargs, match", [
    ({"choice": "nope", "reward": "won"}, "'choice' column"),
    ({"choice": "side", "reward": ("won", "missing")}, "'reward' column"),
    ({"choice": "side", "reward": "won", "options": ["LEFT"]}, "'RIGHT'.*not an option"),
    ({"choice": "code", "reward": "won"}, "holds 0.5"),
])
def test_choices_from_trials_errors_name_the_column(kwargs, match):
    trials = pd.DataFrame({"side": ["LEFT", "RIGHT"], "won": [1, 0], "code": [0, 0.5]})
    with pytest.raises(ParameterError, match=match):
        choices_from_trials(trials, **kwargs)


# ---------------------------------------------------------------------- real data
def test_read_choice_engineering_reads_all_97_subjects():
    if not HUMANS.is_dir():
        pytest.skip(f"{HUMANS} is not available")
    df = read_choice_engineering(HUMANS)
    files = sorted(HUMANS.glob("*.csv"))
    assert len(files) == 97 and df["subject"].nunique() == 97
    lengths = df.groupby("subject").size()
    assert set(lengths) <= {99, 100} and (lengths == 100).sum() == 61  # per SOURCES.md
    assert set(df["choice"]) == {0, 1} and set(df["reward"]) == {0.0, 1.0}
    # one file parsed by hand: "true" in is_biased_choice is option 1
    raw = [[v.strip() for v in line.split(",")] for line in files[0].read_text().splitlines()]
    head, rows = raw[0], raw[1:]
    biased = [row[head.index("is_biased_choice")] == "true" for row in rows]
    reward = [float(row[head.index("observed_reward")]) for row in rows]
    one = df[df["subject"] == files[0].stem]
    assert one["choice"].tolist() == [int(b) for b in biased]
    assert one["reward"].tolist() == reward


def test_read_choice_engineering_refuses_other_files(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a, b\n1, 2\n")
    with pytest.raises(RecordingError, match="lacks the columns"):
        read_choice_engineering(bad)
    with pytest.raises(RecordingError, match="No Choice Engineering CSV"):
        read_choice_engineering(tmp_path / "empty")


def test_aind_sessions_load_and_fit_with_no_response_trials():
    sessions = []
    for name, left, right, none, rewarded in AIND:
        df = read_dynamic_foraging(real_file(name))
        counts = df["choice"].value_counts()
        assert (counts[0], counts[1], counts[-1]) == (left, right, none), name
        assert df.loc[df["choice"] < 0, "reward"].isna().all()
        if rewarded is not None:
            assert df["reward"].sum() == rewarded, name
        sessions.append(df.assign(session=name))
    data = pd.concat(sessions, ignore_index=True)
    # all four sessions (different lengths, padded) in one batched fit
    model = QLearning(n_starts=4, random_state=0, device="cpu").fit(
        data["choice"], data["reward"], data["session"])
    answered = data[data["choice"] >= 0].groupby("session").size()
    assert model.n_trials_.loc[answered.index].tolist() == answered.tolist()
    assert model.summary_["converged"].all()
    # every session's choices are predicted better than chance
    assert (model.nll_.loc[answered.index] < answered * np.log(2) - 20).all()
    values = model.values(data["choice"], data["reward"], data["session"])
    assert values.loc[data["choice"] < 0, "rpe"].isna().all()
    assert values.loc[data["choice"] >= 0, "rpe"].notna().all()


# ---------------------------------------------------------------------- simulation
def test_block_probabilities_reverse_in_blocks():
    p = block_probabilities(500, ((0.8, 0.2), (0.2, 0.8)), block_length=(40, 60),
                            random_state=0)
    assert p.shape == (500, 2)
    change = np.flatnonzero(np.diff(p[:, 0]) != 0) + 1
    lengths = np.diff(np.r_[0, change])
    assert lengths.size >= 7 and lengths.min() >= 40 and lengths.max() <= 60
    np.testing.assert_array_equal(p[:, 0] + p[:, 1], 1.0)
    many = block_probabilities(100, block_length=(10, 30), n_agents=5, random_state=1)
    assert many.shape == (5, 100, 2) and not np.array_equal(many[0], many[1])
    with pytest.raises(ParameterError, match="block_length"):
        block_probabilities(100, block_length=0)


def test_simulated_agents_follow_their_parameters():
    T, n = 2000, 6
    p = np.tile([0.9, 0.2], (T, 1))
    params = {"alpha": np.full(n, 0.3), "beta": np.array([0.0, 0.0, 0.0, 20.0, 20.0, 20.0])}
    sim = simulate_bandit(params, p, random_state=0)
    choices, rewards = sim.choices.numpy(), sim.rewards.numpy()
    assert choices.shape == (n, T) and rewards.shape == (n, T)
    # beta = 0: a coin flip; beta = 20: the better option almost always (after learning)
    np.testing.assert_allclose((choices[:3] == 0).mean(), 0.5, atol=0.03)
    assert (choices[3:, 100:] == 0).mean() > 0.95
    # rewards are Bernoulli with the chosen option's probability
    for option, prob in ((0, 0.9), (1, 0.2)):
        assert abs(rewards[choices == option].mean() - prob) < 0.04
    again = simulate_bandit(params, p, random_state=0)
    assert torch.equal(again.choices, sim.choices)


def test_simulated_choices_follow_the_softmax_of_the_values():
    # alpha = 1, beta = 60: the agent takes the higher value whenever values differ
    # (P(other) = exp(-30) for a difference of 0.5) and flips a coin when they are equal
    sim = simulate_bandit({"alpha": 1.0, "beta": 60.0}, np.tile([0.5, 0.5], (600, 1)),
                          random_state=3)
    c, r = sim.choices[0].numpy(), sim.rewards[0].numpy()
    q = q_learning(c, r, 1.0, 60.0).values.numpy()
    diff = q[:, 1] - q[:, 0]
    differ = np.abs(diff) >= 0.5
    assert differ.sum() > 200
    np.testing.assert_array_equal(c[differ], (diff[differ] > 0).astype(int))
    tie = diff == 0
    assert tie.sum() > 100 and 0.35 < c[tie].mean() < 0.65


def test_simulate_bandit_errors():
    p = np.tile([0.5, 0.5], (10, 1))
    with pytest.raises(ParameterError, match="'alpha' and 'beta'"):
        simulate_bandit({"alpha": 0.3}, p)
    with pytest.raises(ParameterError, match="number of agents"):
        simulate_bandit({"alpha": np.ones(3) * 0.3, "beta": np.ones(2)}, p)
    with pytest.raises(ParameterError, match="reward_probabilities"):
        simulate_bandit({"alpha": 0.3, "beta": 1.0}, np.full((10, 2), 1.5))
