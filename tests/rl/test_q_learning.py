"""The pure Q-learning learner, checked against a NumPy loop written here from the rules.

The loop below follows Wilson & Collins (2019), model 3 (and the optional terms as the
module docstring states them), one trial at a time with NumPy arrays; it shares no
code with neuroml.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroml.errors import ParameterError
from neuroml.rl.q_learning import q_learning


def _numpy_loop(choices, rewards, alpha, beta, q0=0.5, K=2, alpha_neg=None, forget=None,
                bias=None, perseveration=None, perseveration_rate=None):
    """Values before each trial, RPEs and log P(choice) of one agent, trial by trial."""
    q = np.full(K, q0, dtype=float)
    ck = np.zeros(K)
    offset = np.zeros(K)
    if bias is not None:
        offset[1:] = np.atleast_1d(bias)
    values, rpes, loglik = [], [], []
    for c, r in zip(choices, rewards):
        values.append(q.copy())
        logits = beta * q + offset + (0.0 if perseveration is None else perseveration * ck)
        logp = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
        if not (c >= 0):  # no response: nothing changes, nothing is scored
            rpes.append(0.0)
            loglik.append(0.0)
            continue
        c = int(c)
        loglik.append(logp[c])
        delta = r - q[c]
        rpes.append(delta)
        rate = alpha_neg if alpha_neg is not None and delta < 0 else alpha
        q[c] += rate * delta
        if forget is not None:
            others = np.arange(K) != c
            q[others] += forget * (q0 - q[others])
        if perseveration is not None:
            ck += perseveration_rate * (np.eye(K)[c] - ck)
    return np.array(values), np.array(rpes), np.array(loglik)


def _bandit(n, K=2, seed=0, missing=0.1):
    rng = np.random.default_rng(seed)
    choices = rng.integers(0, K, n).astype(float)
    rewards = (rng.random(n) < 0.6).astype(float)
    gone = rng.random(n) < missing
    choices[gone] = -1
    rewards[gone] = np.nan
    return choices, rewards


def test_model_3_matches_a_numpy_loop_for_a_batch_of_agents():
    choices, rewards = _bandit(300)
    alphas = np.array([0.05, 0.3, 0.9])
    betas = np.array([0.5, 4.0, 12.0])
    out = q_learning(np.tile(choices, (3, 1)), np.tile(rewards, (3, 1)),
                     torch.as_tensor(alphas), torch.as_tensor(betas))
    assert out.values.shape == (3, 300, 2) and out.log_likelihood.shape == (3, 300)
    for b in range(3):
        values, rpes, loglik = _numpy_loop(choices, rewards, alphas[b], betas[b])
        np.testing.assert_allclose(out.values[b].numpy(), values, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out.rpe[b].numpy(), rpes, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(out.log_likelihood[b].numpy(), loglik, rtol=1e-10, atol=1e-12)
    probs = out.log_prob.exp().numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("extra", [
    {"alpha_neg": 0.05},
    {"forget": 0.2},
    {"bias": 0.7},
    {"perseveration": 1.5, "perseveration_rate": 0.4},
    {"alpha_neg": 0.6, "forget": 0.1, "bias": -0.3, "perseveration": -0.8,
     "perseveration_rate": 0.9},
])
def test_optional_terms_match_the_numpy_loop(extra):
    choices, rewards = _bandit(250, seed=3)
    out = q_learning(choices, rewards, 0.35, 3.0, q0=0.2, **extra)
    values, rpes, loglik = _numpy_loop(choices, rewards, 0.35, 3.0, q0=0.2, **extra)
    np.testing.assert_allclose(out.values.numpy(), values, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out.rpe.numpy(), rpes, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out.log_likelihood.numpy(), loglik, rtol=1e-10, atol=1e-12)


def test_three_options_with_a_bias_per_option():
    choices, rewards = _bandit(200, K=3, seed=5)
    out = q_learning(choices, rewards, 0.4, 5.0, bias=[0.5, -1.0])
    values, _, loglik = _numpy_loop(choices, rewards, 0.4, 5.0, K=3, bias=[0.5, -1.0])
    assert out.values.shape == (200, 3)
    np.testing.assert_allclose(out.values.numpy(), values, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out.log_likelihood.numpy(), loglik, rtol=1e-10, atol=1e-12)


def test_no_response_trials_change_nothing_and_score_nothing():
    choices, rewards = _bandit(120, seed=7, missing=0.0)
    gappy_c = np.insert(choices, [10, 10, 50, 90], -1.0)
    gappy_r = np.insert(rewards, [10, 10, 50, 90], np.nan)
    gappy_c[30] = np.nan  # NaN choice: also no response
    kept = ~np.isnan(gappy_c) & (gappy_c >= 0)
    full = q_learning(gappy_c[kept], gappy_r[kept], 0.3, 4.0)
    gappy = q_learning(gappy_c, gappy_r, 0.3, 4.0)
    assert float(gappy.log_likelihood.sum()) == pytest.approx(float(full.log_likelihood.sum()),
                                                              rel=1e-12)
    np.testing.assert_allclose(gappy.values.numpy()[kept], full.values.numpy(), rtol=1e-12)
    assert np.all(gappy.rpe.numpy()[~kept] == 0) and np.all(gappy.log_likelihood.numpy()[~kept] == 0)


def test_perseveration_with_zero_weight_is_the_base_model():
    choices, rewards = _bandit(200, seed=9)
    base = q_learning(choices, rewards, 0.25, 6.0)
    sticky = q_learning(choices, rewards, 0.25, 6.0, perseveration=0.0, perseveration_rate=0.7)
    np.testing.assert_allclose(sticky.log_likelihood.numpy(), base.log_likelihood.numpy(),
                               rtol=1e-14, atol=1e-15)
    assert sticky.kernel.abs().sum() > 0  # the kernel still learns, with no weight


def test_forget_decays_the_unchosen_value_geometrically():
    # option 1 is chosen (and rewarded) once, then option 0 is chosen n times
    n, f, alpha, q0 = 30, 0.15, 0.5, 0.5
    choices = np.r_[1, np.zeros(n)]
    rewards = np.r_[1.0, np.zeros(n)]
    out = q_learning(choices, rewards, alpha, 1.0, q0=q0, forget=f)
    after = q0 + alpha * (1.0 - q0)
    expected = q0 + (after - q0) * (1 - f) ** np.arange(n)
    np.testing.assert_allclose(out.values[1:, 1].numpy(), expected, rtol=1e-12)
    no_forget = q_learning(choices, rewards, alpha, 1.0, q0=q0)
    np.testing.assert_allclose(no_forget.values[1:, 1].numpy(), after, rtol=1e-14)


def test_negative_rpes_use_alpha_neg():
    out = q_learning([0, 0, 0], [1.0, 0.0, 0.0], 0.5, 1.0, alpha_neg=0.1)
    # Q: 0.5 -> +0.5*0.5 = 0.75 -> 0.75 - 0.1*0.75 = 0.675
    np.testing.assert_allclose(out.values[:, 0].numpy(), [0.5, 0.75, 0.675], rtol=1e-14)


def test_gradient_through_the_recursion_matches_finite_differences():
    choices, rewards = _bandit(150, seed=11)
    theta = torch.tensor([0.3, 4.0, 0.2], dtype=torch.float64, requires_grad=True)

    def nll(t):
        return -q_learning(choices, rewards, t[0], t[1], forget=t[2]).log_likelihood.sum()

    (grad,) = torch.autograd.grad(nll(theta), theta)
    eps = 1e-6
    numeric = []
    for j in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[j] = eps
        numeric.append(float(nll(theta.detach() + e) - nll(theta.detach() - e)) / (2 * eps))
    np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-6)


def test_batch_axes_broadcast():
    choices, rewards = _bandit(80, seed=2)
    alpha = torch.tensor([[0.1], [0.5]], dtype=torch.float64)   # (2, 1)
    beta = torch.tensor([1.0, 3.0, 9.0], dtype=torch.float64)   # (3,)
    out = q_learning(choices, rewards, alpha, beta)
    assert out.log_likelihood.shape == (2, 3, 80)
    one = q_learning(choices, rewards, 0.5, 9.0)
    np.testing.assert_allclose(out.log_likelihood[1, 2].numpy(), one.log_likelihood.numpy(),
                               rtol=1e-14)


def test_float32_input_stays_float32():
    choices, rewards = _bandit(40, seed=4, missing=0.0)
    out = q_learning(torch.as_tensor(choices), torch.as_tensor(rewards, dtype=torch.float32),
                     0.3, 2.0)
    # the first tensor decides: choices are float64 here
    assert out.values.dtype == torch.float64
    out32 = q_learning(torch.as_tensor(rewards, dtype=torch.float32).round().long().float(),
                       torch.as_tensor(rewards, dtype=torch.float32), 0.3, 2.0)
    assert out32.values.dtype == torch.float32


@pytest.mark.parametrize("kwargs, match", [
    ({"choices": [0, 1.5, 1]}, "integer option"),
    ({"choices": [0, 1, 2], "n_options": 2}, "outside 0..1"),
    ({"rewards": [1.0, np.nan, 0.0]}, "NaN or infinity on trials with a response"),
    ({"choices": [0, 1]}, "same shape"),
    ({"perseveration": 1.0}, "perseveration_rate"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = {"choices": [0, 1, 1], "rewards": [1.0, 0.0, 1.0], "alpha": 0.3, "beta": 2.0}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match):
        q_learning(**args)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    choices, rewards = _bandit(200, seed=8)
    cpu = q_learning(choices, rewards, 0.3, 5.0, forget=0.1)
    dev = torch.device("cuda")
    gpu = q_learning(torch.as_tensor(choices, device=dev), torch.as_tensor(rewards, device=dev),
                     0.3, 5.0, forget=0.1)
    assert gpu.values.device.type == "cuda"
    np.testing.assert_allclose(gpu.log_likelihood.cpu().numpy(), cpu.log_likelihood.numpy(),
                               rtol=1e-10, atol=1e-12)


def test_linear_recurrence_gradient_is_exact():
    """The fused recursion's hand-written adjoint against autograd's numerical check."""
    from neuroml.rl.q_learning import _LinearRecurrence

    gen = torch.Generator().manual_seed(0)
    for T in (7, 40):  # 40: past the 16 sequential steps, through the doubling scan
        a = torch.rand(T, 2, 1, dtype=torch.float64, generator=gen).requires_grad_()  # broadcast
        b = torch.randn(T, 2, 3, dtype=torch.float64, generator=gen).requires_grad_()
        h0 = torch.randn(2, 3, dtype=torch.float64, generator=gen).requires_grad_()
        assert torch.autograd.gradcheck(_LinearRecurrence.apply, (a, b, h0))
        assert torch.autograd.gradgradcheck(_LinearRecurrence.apply, (a, b, h0))
        h = _LinearRecurrence.apply(a, b, h0)
        expected = [h0.expand(2, 3)]
        for t in range(T - 1):
            expected.append(a[t] * expected[-1] + b[t])
        torch.testing.assert_close(h, torch.stack(expected), rtol=1e-12, atol=1e-12)


def test_hessian_through_q_learning_equals_the_forward_mode_one():
    """Second derivatives through q_learning's autograd path (the linear recurrence's
    differentiable backward) against nll_derivatives' forward-mode recursions."""
    from neuroml.rl._q_derivatives import nll_derivatives
    from neuroml.rl.q_learning import _prepare

    choices, rewards = _bandit(60, seed=4)
    theta = torch.tensor([0.3, 4.0], dtype=torch.float64)

    def nll(t):
        return -q_learning(choices, rewards, t[0], t[1]).log_likelihood.sum()

    hessian = torch.autograd.functional.hessian(nll, theta)
    trials = _prepare(torch.as_tensor(np.asarray(choices))[None].long(),
                      torch.as_tensor(np.asarray(rewards, dtype=float))[None], 2)
    _, _, H = nll_derivatives(trials, theta[None], ("alpha", "beta"), 0.5, 2)
    torch.testing.assert_close(hessian, H[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("extra", [{}, {"forget": 0.2},
                                   {"perseveration": 1.5, "perseveration_rate": 0.3}])
def test_linear_updates_equal_the_step_by_step_recursion(extra):
    """Models without alpha_neg run as one linear recurrence; the step-by-step path (used
    with alpha_neg) gives the same values, kernel, likelihood and gradient."""
    from neuroml.rl.q_learning import _linear_states, _nonlinear_states, _prepare

    rng = np.random.default_rng(3)
    choices = torch.as_tensor(rng.integers(-1, 3, (4, 60)))
    rewards = torch.as_tensor(rng.random((4, 60)))
    trials = _prepare(choices, rewards, 3)
    params = {"alpha": torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64,
                                    requires_grad=True)}
    params.update({k: torch.full((4,), v, dtype=torch.float64, requires_grad=True)
                   for k, v in extra.items()})
    out = [states(trials, params, 0.5, 3, (4,)) for states in (_linear_states,
                                                               _nonlinear_states)]
    for fast, slow in zip(out[0], out[1]):
        if fast is None:
            assert slow is None
            continue
        torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)
    weights = torch.as_tensor(rng.random((60, 3, 4)))
    grads = [torch.autograd.grad((o[0] * weights).sum() + (0 if o[1] is None else o[1].sum()),
                                 list(params.values()), allow_unused=True) for o in out]
    for g_fast, g_slow in zip(*grads):  # the weight of the kernel is not a state's parameter
        assert (g_fast is None) == (g_slow is None)
        if g_fast is not None:
            torch.testing.assert_close(g_fast, g_slow, rtol=1e-10, atol=1e-12)
