"""The exact gradient and Hessian of QLearning's likelihood (forward-mode recursions)
against autograd through a plain per-trial loop written independently here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroml.rl._q_derivatives import nll_derivatives
from neuroml.rl.q_learning import _prepare

MODELS = [
    (2, ("alpha", "beta")),
    (2, ("alpha", "beta", "forget")),
    (2, ("alpha", "beta", "bias", "perseveration", "perseveration_rate")),
    (3, ("alpha", "beta", "forget", "bias_1", "bias_2", "perseveration", "perseveration_rate")),
]


def loop_nll(choices, rewards, theta, columns, n_options, q0=0.5):
    """One subject's negative log-likelihood, trial by trial (autograd-able)."""
    p = dict(zip(columns, theta))
    zero = theta[0] * 0
    Q = [zero + q0 for _ in range(n_options)]
    CK = [zero for _ in range(n_options)]
    total = zero
    for c, r in zip(choices, rewards):
        bias = [zero] + [p.get("bias", zero) if n_options == 2 else p[f"bias_{k}"]
                         for k in range(1, n_options)] if ("bias" in p or "bias_1" in p) \
            else [zero] * n_options
        logits = torch.stack([p["beta"] * Q[k] + bias[k] + p.get("perseveration", zero) * CK[k]
                              for k in range(n_options)])
        if c < 0:
            continue
        total = total - torch.log_softmax(logits, 0)[c]
        Q = [Q[k] + p["alpha"] * (r - Q[k]) if k == c else Q[k] + p.get("forget", zero)
             * (q0 - Q[k]) for k in range(n_options)]
        if "perseveration" in p:
            CK = [CK[k] + p["perseveration_rate"] * (float(k == c) - CK[k])
                  for k in range(n_options)]
    return total


@pytest.mark.parametrize("n_options, columns", MODELS)
@pytest.mark.parametrize("block", [7, 64])
def test_value_gradient_and_hessian_equal_autograd(n_options, columns, block):
    rng = np.random.default_rng(n_options + len(columns))
    n, T = 3, 40
    choices = rng.integers(-1, n_options, (n, T))  # -1: trials without a response
    rewards = rng.random((n, T))
    trials = _prepare(torch.as_tensor(choices), torch.as_tensor(rewards), n_options)
    scale = np.array([4.0 if c == "beta" else 1.0 for c in columns])
    theta = torch.as_tensor(rng.uniform(0.1, 0.9, (n, len(columns))) * scale)
    f, g, H = nll_derivatives(trials, theta, columns, 0.5, n_options, block=block)
    value_only = nll_derivatives(trials, theta, columns, 0.5, n_options, block=block,
                                 derivatives=False)
    torch.testing.assert_close(value_only[0], f, rtol=1e-13, atol=1e-12)
    assert value_only[1] is None and value_only[2] is None
    for i in range(n):
        def fun(t, i=i):
            return loop_nll(choices[i], rewards[i], t, columns, n_options)
        t = theta[i].clone().requires_grad_(True)
        ref = fun(t)
        (grad,) = torch.autograd.grad(ref, t)
        hess = torch.autograd.functional.hessian(fun, theta[i])
        assert float(f[i]) == pytest.approx(float(ref.detach()), rel=1e-12)
        torch.testing.assert_close(g[i], grad, rtol=1e-10, atol=1e-11)
        torch.testing.assert_close(H[i], hess, rtol=1e-10, atol=1e-11)


def test_alpha_neg_is_refused():
    trials = _prepare(torch.zeros(1, 5, dtype=torch.int64), torch.ones(1, 5, dtype=torch.float64),
                      2)
    with pytest.raises(ValueError, match="alpha_neg"):
        nll_derivatives(trials, torch.ones(1, 3, dtype=torch.float64),
                        ("alpha", "alpha_neg", "beta"), 0.5, 2)
