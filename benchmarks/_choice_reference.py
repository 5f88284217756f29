"""A plain reference for Q-learning choice models: a Python loop and SciPy's L-BFGS-B.

Written from the model's definition (Wilson & Collins 2019, model 3, with the optional
terms of :mod:`neuroml.rl.q_learning`), without neuroml, the way a lab fits one subject
at a time: the negative log-likelihood is a loop over trials in plain Python floats,
and each subject is fit by ``scipy.optimize.minimize(method="L-BFGS-B")`` in natural
units inside the bounds, from every point of a grid, and the best of those fits is kept.
The gradient is analytic for the two-option base model (alpha, beta), else SciPy's
finite differences. Shared by ``benchmarks/bench_choice_models.py`` and
``tests/rl/test_choice.py``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.optimize import minimize

#: Start grid per parameter (natural units) and bounds, as used by :func:`fit_subject`.
GRID = {"alpha": (0.1, 0.5, 0.9), "beta": (1.0, 5.0, 20.0), "alpha_neg": (0.1, 0.5, 0.9),
        "forget": (0.05, 0.3), "bias": (-0.5, 0.5), "perseveration": (0.0, 1.0),
        "perseveration_rate": (0.2, 0.8)}
BOUNDS = {"alpha": (0.0, 1.0), "beta": (0.0, 50.0), "alpha_neg": (0.0, 1.0),
          "forget": (0.0, 1.0), "bias": (-5.0, 5.0), "perseveration": (-5.0, 5.0),
          "perseveration_rate": (0.0, 1.0)}


def negative_log_likelihood(choices, rewards, alpha, beta, q0=0.5, n_options=2, alpha_neg=None,
                            forget=None, bias=None, perseveration=None, perseveration_rate=None):
    """NLL of one subject's choices under Q-learning, one trial at a time.

    ``choices`` are ints (negative: no response, skipped), ``rewards`` floats. ``bias``
    is one number (added to option 1's logit) for two options, else one per option
    1..K-1.
    """
    K = n_options
    q = [q0] * K
    ck = [0.0] * K
    offsets = [0.0] * K
    if bias is not None:
        extra = [bias] if K == 2 else list(bias)
        offsets = [0.0] + [float(b) for b in extra]
    w = 0.0 if perseveration is None else perseveration
    nll = 0.0
    for c, r in zip(choices, rewards):
        if c < 0:
            continue
        logits = [beta * q[k] + offsets[k] + w * ck[k] for k in range(K)]
        top = max(logits)
        lse = top + math.log(sum(math.exp(v - top) for v in logits))
        nll -= logits[c] - lse
        delta = r - q[c]
        rate = alpha_neg if (alpha_neg is not None and delta < 0) else alpha
        q[c] += rate * delta
        if forget is not None:
            for k in range(K):
                if k != c:
                    q[k] += forget * (q0 - q[k])
        if perseveration is not None:
            for k in range(K):
                ck[k] += perseveration_rate * ((1.0 if k == c else 0.0) - ck[k])
    return nll


def negative_log_likelihood_and_gradient(choices, rewards, alpha, beta, q0=0.5):
    """NLL of the two-option base model (alpha, beta) and its gradient, one trial at a
    time: the values' derivatives with respect to alpha are carried along the loop
    (``dQ[c] <- (1 - alpha) dQ[c] + (r - Q[c])``)."""
    q = [q0, q0]
    dq = [0.0, 0.0]
    nll = g_alpha = g_beta = 0.0
    for c, r in zip(choices, rewards):
        if c < 0:
            continue
        diff = q[1] - q[0]                     # P(1) = sigmoid(beta diff)
        z = beta * diff if c == 1 else -beta * diff
        # -log sigmoid(z), stably, and d/dz of it = -(1 - sigmoid(z))
        nll += math.log1p(math.exp(-z)) if z > -30 else -z
        s = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        sign = 1.0 if c == 1 else -1.0
        g_alpha -= (1.0 - s) * sign * beta * (dq[1] - dq[0])
        g_beta -= (1.0 - s) * sign * diff
        delta = r - q[c]
        dq[c] = (1.0 - alpha) * dq[c] + delta
        q[c] += alpha * delta
    return nll, np.array([g_alpha, g_beta])


def negative_log_likelihood_numpy(choices, rewards, alpha, beta, q0=0.5, n_options=2):
    """The base model's NLL written the way agent code usually is (e.g. the Allen
    Institute's dynamic-foraging agents): NumPy arrays for the values and the softmax,
    one trial at a time."""
    q = np.full(n_options, q0, dtype=float)
    nll = 0.0
    for c, r in zip(choices, rewards):
        if c < 0:
            continue
        logits = beta * q
        p = np.exp(logits - logits.max())
        p /= p.sum()
        nll -= np.log(p[c])
        q[c] += alpha * (r - q[c])
    return nll


def fit_subject(choices, rewards, parameters=("alpha", "beta"), q0=0.5, n_options=2, grid=None,
                style="fast"):
    """Best L-BFGS-B fit from every point of the start grid.

    ``style="fast"``: plain-Python floats, with the analytic gradient for the two-option
    base model; ``style="numpy"``: :func:`negative_log_likelihood_numpy` and SciPy's
    finite-difference gradient (base model only).

    Returns
    -------
    params : dict
    nll : float
    n_evaluations : int
    """
    choices = [int(c) for c in choices]
    rewards = [float(r) for r in rewards]
    grid = {**GRID, **(grid or {})}
    names = list(parameters)
    bounds = [BOUNDS[p] for p in names]

    analytic = tuple(names) == ("alpha", "beta") and n_options == 2 and style == "fast"
    if style == "numpy":
        if tuple(names) != ("alpha", "beta"):
            raise ValueError("style='numpy' fits the base model (alpha, beta) only")
        choices = np.asarray(choices, dtype=int)

    def objective(theta):
        if style == "numpy":
            return negative_log_likelihood_numpy(choices, rewards, theta[0], theta[1], q0,
                                                 n_options)
        if analytic:
            return negative_log_likelihood_and_gradient(choices, rewards, theta[0], theta[1], q0)
        return negative_log_likelihood(choices, rewards, q0=q0, n_options=n_options,
                                       **dict(zip(names, theta)))

    best, evaluations = None, 0
    for start in itertools.product(*(grid[p] for p in names)):
        res = minimize(objective, np.array(start, dtype=float), method="L-BFGS-B",
                       bounds=bounds, jac=analytic)
        evaluations += res.nfev
        if best is None or res.fun < best.fun:
            best = res
    return dict(zip(names, best.x)), float(best.fun), evaluations


def fit_all(choices, rewards, subject, parameters=("alpha", "beta"), q0=0.5, n_options=2):
    """:func:`fit_subject` for each subject in turn (subjects in order of first appearance).

    Returns
    -------
    labels : list
    params : list of dict
    nll : ndarray
    """
    from threadpoolctl import threadpool_limits

    choices, rewards, subject = np.asarray(choices), np.asarray(rewards), np.asarray(subject)
    labels = list(dict.fromkeys(subject.tolist()))
    params, nll = [], []
    # one BLAS thread: L-BFGS-B's vector operations are tiny, and waking BLAS threads for
    # them made the loop 3-4x slower on a 2-core machine
    with threadpool_limits(1):
        for label in labels:
            rows = subject == label
            p, f, _ = fit_subject(choices[rows], rewards[rows], parameters, q0, n_options)
            params.append(p)
            nll.append(f)
    return labels, params, np.array(nll)
