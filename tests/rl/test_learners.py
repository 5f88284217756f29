"""The pure learners: Rescorla-Wagner, TD(lambda), distributional TD.

Numbers are checked against closed forms and against plain-Python loops written here
from the stated update rules (no torch), never against the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroml.errors import ParameterError
from neuroml.rl.features import complete_serial_compound, microstimulus, presence
from neuroml.rl.learners import distributional_td, rescorla_wagner, td_learning


# ---------------------------------------------------------------------- Rescorla-Wagner
def test_rescorla_wagner_closed_form():
    n, alpha, r = 40, 0.15, 2.0
    out = rescorla_wagner(np.ones((n, 1)), np.full(n, r), alpha)
    expected = r * (1 - (1 - alpha) ** np.arange(n))  # V before trial n's update
    np.testing.assert_allclose(out.values.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(out.rpe.numpy(), r - expected, rtol=1e-12)
    assert float(out.weights[0]) == pytest.approx(r * (1 - (1 - alpha) ** n), rel=1e-12)
    np.testing.assert_allclose(out.weights_history[:, 0].numpy(),
                               r * (1 - (1 - alpha) ** np.arange(1, n + 1)), rtol=1e-12)


def _rw_loop(cues, rewards, alpha, v0):
    w = [float(v) for v in v0]
    values = []
    for x, r in zip(cues.tolist(), rewards.tolist()):
        v = sum(wi * xi for wi, xi in zip(w, x))
        values.append(v)
        w = [wi + alpha * (r - v) * xi for wi, xi in zip(w, x)]
    return np.array(values), np.array(w)


def test_rescorla_wagner_compound_cues_match_a_plain_loop_and_batch():
    rng = np.random.default_rng(1)
    cues = (rng.random((60, 3)) < 0.5).astype(float)
    rewards = cues @ np.array([1.0, -0.5, 0.3]) + 0.1 * rng.standard_normal(60)
    alphas = np.array([0.05, 0.2, 0.6])
    v0 = np.array([0.1, 0.0, -0.2])
    out = rescorla_wagner(cues, rewards, torch.as_tensor(alphas), v0)  # batch of 3 alphas
    assert out.values.shape == (3, 60) and out.weights.shape == (3, 3)
    for b, alpha in enumerate(alphas):
        values, w = _rw_loop(cues, rewards, alpha, v0)
        np.testing.assert_allclose(out.values[b].numpy(), values, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out.weights[b].numpy(), w, rtol=1e-10, atol=1e-12)


def test_rescorla_wagner_blocking():
    # A alone to asymptote, then AB: B's weight stays near 0 (Kamin blocking); with AB
    # from the start the two cues share the reward equally (overshadowing).
    a_then_ab = np.array([[1, 0]] * 100 + [[1, 1]] * 50, dtype=float)
    out = rescorla_wagner(a_then_ab, np.ones(150), 0.2)
    assert abs(float(out.weights[1])) < 1e-4
    both = rescorla_wagner(np.ones((150, 2)), np.ones(150), 0.2)
    np.testing.assert_allclose(both.weights.numpy(), [0.5, 0.5], atol=1e-10)


# ---------------------------------------------------------------------- TD(lambda)
def _td0_loop(x, r, alpha, gamma):
    """Textbook semi-gradient TD(0), per trial: delta = r + gamma w.x(t) - w.x(t-1),
    w += alpha delta x(t-1); x(-1) = 0."""
    n_trials, n_time, n_feat = x.shape
    w = [0.0] * n_feat
    values, rpes = np.zeros((n_trials, n_time)), np.zeros((n_trials, n_time))
    for n in range(n_trials):
        prev = [0.0] * n_feat
        for t in range(n_time):
            cur = x[n, t].tolist()
            v = sum(a * b for a, b in zip(w, cur))
            v_prev = sum(a * b for a, b in zip(w, prev))
            delta = r[n, t] + gamma * v - v_prev
            w = [wi + alpha * delta * pi for wi, pi in zip(w, prev)]
            values[n, t], rpes[n, t] = v, delta
            prev = cur
    return values, rpes, np.array(w)


def _td_lambda_loop(x, r, alpha, gamma, lam):
    """The update order of Ludvig, Sutton & Kehoe's published MATLAB code:
    value = x.w; delta = r + gamma value - oldvalue; w += alpha delta e;
    e = x + gamma lambda e; oldvalue = x.w (new weights); reset per trial."""
    n_trials, n_time, n_feat = x.shape
    w = [0.0] * n_feat
    values, rpes = np.zeros((n_trials, n_time)), np.zeros((n_trials, n_time))
    for n in range(n_trials):
        e, old = [0.0] * n_feat, 0.0
        for t in range(n_time):
            cur = x[n, t].tolist()
            value = sum(a * b for a, b in zip(cur, w))
            delta = r[n, t] + gamma * value - old
            w = [wi + alpha * delta * ei for wi, ei in zip(w, e)]
            e = [xi + gamma * lam * ei for xi, ei in zip(cur, e)]
            old = sum(a * b for a, b in zip(cur, w))
            values[n, t], rpes[n, t] = value, delta
    return values, rpes, np.array(w)


def _task(n_trials=30, n_time=12, seed=0):
    rng = np.random.default_rng(seed)
    s = np.zeros((n_trials, n_time, 2))
    s[:, 2, 0] = 1
    s[:, 5, 1] = rng.random(n_trials) < 0.5
    r = np.zeros((n_trials, n_time))
    r[:, 9] = rng.random(n_trials) < 0.7
    r[:, 10] = 0.3 * rng.standard_normal(n_trials)
    return s, r


@pytest.mark.parametrize("rep", [complete_serial_compound, presence, microstimulus])
def test_lambda_zero_is_textbook_td0(rep):
    s, r = _task()
    x = rep(s).numpy()
    out = td_learning(x, r, 0.2, 0.9, 0.0)
    values, rpes, w = _td0_loop(x, r, 0.2, 0.9)
    np.testing.assert_allclose(out.values.numpy(), values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.rpe.numpy(), rpes, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.weights.numpy(), w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rep", [complete_serial_compound, microstimulus])
def test_td_lambda_matches_the_published_update_order(rep):
    s, r = _task(seed=3)
    x = rep(s).numpy()
    out = td_learning(x, r, 0.1, 0.97, 0.95)
    values, rpes, w = _td_lambda_loop(x, r, 0.1, 0.97, 0.95)
    np.testing.assert_allclose(out.values.numpy(), values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.rpe.numpy(), rpes, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.weights.numpy(), w, rtol=1e-10, atol=1e-12)


def test_td_batch_of_parameter_sets_equals_separate_runs():
    s, r = _task(n_trials=15)
    x = microstimulus(s)
    alpha = torch.tensor([0.05, 0.1, 0.3], dtype=torch.float64)
    gamma = torch.tensor([0.9, 0.95, 1.0], dtype=torch.float64)
    lam = torch.tensor([0.0, 0.5, 0.9], dtype=torch.float64)
    out = td_learning(x, r, alpha, gamma, lam)
    assert out.values.shape == (3, 15, 12) and out.weights_history.shape == (3, 15, 12)
    for b in range(3):
        one = td_learning(x, r, float(alpha[b]), float(gamma[b]), float(lam[b]))
        np.testing.assert_allclose(out.rpe[b].numpy(), one.rpe.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out.weights[b].numpy(), one.weights.numpy(), rtol=1e-12)


def _cue_reward(n_trials, n_time=14, cue=3, reward=9):
    s = np.zeros((n_trials, n_time))
    s[:, cue] = 1
    r = np.zeros((n_trials, n_time))
    r[:, reward] = 1.0
    return s, r


def test_csc_td0_rpe_moves_from_reward_to_cue_and_omission_gives_minus_one():
    cue, reward = 3, 9
    s, r = _cue_reward(301, cue=cue, reward=reward)
    r[-1, reward] = 0.0  # the last trial omits the reward
    out = td_learning(complete_serial_compound(s), r, 0.3, 1.0, 0.0)
    rpe = out.rpe.numpy()
    assert rpe[0, reward] == pytest.approx(1.0)  # naive: the reward is a surprise
    learned = rpe[-2]
    assert learned[cue] == pytest.approx(1.0, abs=1e-6)
    assert learned[reward] == pytest.approx(0.0, abs=1e-6)
    assert np.abs(np.delete(learned, cue)).max() < 1e-6
    assert rpe[-1, reward] == pytest.approx(-1.0, abs=1e-6)  # omission
    assert rpe[-1, cue] == pytest.approx(1.0, abs=1e-6)


def test_with_alpha_one_the_value_front_moves_back_one_bin_per_trial():
    cue, reward, n_trials = 3, 9, 10
    s, r = _cue_reward(n_trials, cue=cue, reward=reward)
    out = td_learning(complete_serial_compound(s), r, 1.0, 1.0, 0.0)
    for n in range(n_trials):
        front = max(reward - n, cue)  # where the positive RPE is on trial n
        expected_rpe = np.zeros(14)
        expected_rpe[front] = 1.0
        np.testing.assert_allclose(out.rpe[n].numpy(), expected_rpe, atol=1e-12)
        expected_value = np.zeros(14)
        if n > 0:
            expected_value[max(reward - n, cue):reward] = 1.0  # learned so far
        np.testing.assert_allclose(out.values[n].numpy(), expected_value, atol=1e-12)


# ---------------------------------------------------------------------- distributional
def _distributional_loop(rewards, taus, alpha, kind):
    values = [0.0] * len(taus)
    for r in rewards.tolist():
        for i, tau in enumerate(taus):
            d = r - values[i]
            rate = alpha * tau if d > 0 else alpha * (1 - tau)
            step = d if kind == "expectile" else (d > 0) - (d < 0)
            values[i] += rate * step
    return np.array(values)


@pytest.mark.parametrize("kind", ["expectile", "quantile"])
def test_distributional_td_matches_a_plain_loop(kind):
    rng = np.random.default_rng(2)
    rewards = rng.choice([0.0, 1.0, 4.0], size=3000)
    taus = [0.1, 0.5, 0.9]
    out = distributional_td(rewards, taus, 0.02, kind, record_every=7)
    np.testing.assert_allclose(out.values.numpy(), _distributional_loop(rewards, taus, 0.02, kind),
                               rtol=1e-9, atol=1e-9)
    steps = out.steps.numpy()
    assert steps[0] == 0 and steps[-1] == 3000 and np.all(np.diff(steps[:-1]) == 7)
    np.testing.assert_array_equal(out.history[0].numpy(), 0.0)
    np.testing.assert_array_equal(out.history[-1].numpy(), out.values.numpy())
    mid = distributional_td(rewards[:700], taus, 0.02, kind).values
    np.testing.assert_allclose(out.history[100].numpy(), mid.numpy(), rtol=1e-12)


def test_distributional_td_batches_subjects():
    rng = np.random.default_rng(4)
    rewards = rng.exponential(size=(2, 500))
    alpha = torch.tensor([[0.01], [0.05]], dtype=torch.float64)  # one per subject
    out = distributional_td(rewards, [0.2, 0.8], alpha)
    assert out.values.shape == (2, 2) and out.history.shape == (2, 501, 2)
    for b in range(2):
        one = distributional_td(rewards[b], [0.2, 0.8], float(alpha[b, 0]))
        np.testing.assert_allclose(out.values[b].numpy(), one.values.numpy(), rtol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: rescorla_wagner(np.ones((5, 1)), np.ones(4), 0.1), "5 trials"),
    (lambda: rescorla_wagner(np.ones((5, 1)), [1, 1, np.nan, 1, 1], 0.1), "'rewards'.*NaN"),
    (lambda: td_learning(np.ones((2, 3, 1)), np.ones((2, 4)), 0.1, 1, 0), "different"),
    (lambda: td_learning(np.ones((2, 3)), np.ones((2, 3)), 0.1, 1, 0), "'features'"),
    (lambda: td_learning(np.ones((2, 3, 1)), np.ones((2, 3)), np.ones(4), np.ones(3), 0),
     "do not broadcast"),
    (lambda: distributional_td(np.ones(5), [0.0, 0.5], 0.1), r"open interval \(0, 1\)"),
    (lambda: distributional_td(np.ones(5), [0.5], 0.1, kind="median"), "'kind'"),
    (lambda: distributional_td([1.0, np.nan], [0.5], 0.1), "NaN"),
    (lambda: distributional_td(np.ones(5), [0.5], 0.1, record_every=0), "'record_every'"),
])
def test_bad_input(call, match):
    with pytest.raises(ParameterError, match=match):
        call()
