"""QLearning against a per-subject SciPy L-BFGS-B loop, on the same simulated subjects.

Data: ``--n-subjects`` simulated Q-learning agents (Wilson & Collins model 3; alpha ~
U(0.05, 0.95), beta ~ U(1, 10)), ``--n-trials`` trials each on a two-armed bandit whose
reward probabilities (0.8 / 0.2) reverse every 40-80 trials. Default 1,000 x 1,000.

- neuroml: ``QLearning(n_starts=8)``: all subjects x restarts in one batched fit on
  ``--device`` (float64).
- SciPy: ``benchmarks/_choice_reference.py``: for each subject in turn, L-BFGS-B in
  natural units inside the bounds from a 3 x 3 grid of starts (alpha 0.1 / 0.5 / 0.9 x
  beta 1 / 5 / 20), on a plain-Python loop over trials with the analytic gradient; the
  best of the nine fits is kept. This is how a lab fits one session at a time.

The SciPy loop costs about a third of a second per 1,000-trial subject, so
``--scipy-subjects`` (default: all) fits only the first subjects and the full loop's
time is extrapolated linearly (the subjects are independent: the loop's time is a sum
of per-subject times); the output says when it does. Agreement: each subject's NLL from
neuroml minus SciPy's (negative: neuroml found a better optimum), over the subjects
SciPy fitted. Both are timed in the same process, one after the other (wall and process
CPU time).

Run with ``python benchmarks/bench_choice_models.py`` (``--n-subjects 200 --n-trials 500``
for a quick run, ``--device cuda`` on a GPU machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _choice_reference import fit_subject

from neuroml.rl.bandit import block_probabilities
from neuroml.rl.choice import QLearning


def make_data(n_subjects: int, n_trials: int, seed: int = 0):
    """Simulated agents: a trials table (subject, trial, choice, reward) and the truth."""
    rng = np.random.default_rng(seed)
    alpha, beta = rng.uniform(0.05, 0.95, n_subjects), rng.uniform(1, 10, n_subjects)
    p = block_probabilities(n_trials, ((0.8, 0.2), (0.2, 0.8)), block_length=(40, 80),
                            n_agents=n_subjects, random_state=seed + 1)
    sim = QLearning().simulate(n_trials, p, params={"alpha": alpha, "beta": beta},
                               random_state=seed + 2)
    return sim, alpha, beta


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(n_subjects=1000, n_trials=1000, device="cpu", scipy_subjects=None, n_starts=8) -> dict:
    sim, alpha, beta = make_data(n_subjects, n_trials)
    n_scipy = n_subjects if scipy_subjects is None else min(scipy_subjects, n_subjects)
    print(f"data: {n_subjects:,} subjects x {n_trials:,} trials; device={device}; "
          f"torch threads={torch.get_num_threads()}")
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    small = sim[sim["subject"] < 4]
    QLearning(n_starts=2, max_iter=5, device=device).fit(small["choice"], small["reward"],
                                                         small["subject"])  # warm-up

    def ours():
        model = QLearning(n_starts=n_starts, random_state=0, device=device).fit(
            sim["choice"], sim["reward"], sim["subject"])
        sync()
        return model

    model, ours_s, ours_cpu = timed(ours)
    choices = sim["choice"].to_numpy().reshape(n_subjects, n_trials)
    rewards = sim["reward"].to_numpy().reshape(n_subjects, n_trials)

    def scipy_loop():
        return np.array([fit_subject(choices[s], rewards[s])[1] for s in range(n_scipy)])

    scipy_nll, scipy_s, scipy_cpu = timed(scipy_loop)
    scale = n_subjects / n_scipy
    full_s, full_cpu = scipy_s * scale, scipy_cpu * scale
    diff = model.nll_.to_numpy()[:n_scipy] - scipy_nll
    fitted = model.params_.to_numpy()
    r_alpha = np.corrcoef(fitted[:, 0], alpha)[0, 1]
    r_beta = np.corrcoef(np.log(fitted[:, 1]), np.log(beta))[0, 1]
    result = {"n_subjects": n_subjects, "n_trials": n_trials, "device": str(device),
              "neuroml_s": ours_s, "neuroml_cpu_s": ours_cpu, "scipy_subjects": n_scipy,
              "scipy_s": full_s, "scipy_cpu_s": full_cpu, "ratio": full_s / ours_s,
              "cpu_ratio": full_cpu / ours_cpu, "max_nll_excess": float(diff.max()),
              "n_worse_1e-3": int((diff > 1e-3).sum()), "r_alpha": r_alpha, "r_log_beta": r_beta}
    print(f"neuroml QLearning (n_starts={n_starts}): {ours_s:9.2f} s (CPU {ours_cpu:9.2f} s); "
          f"evaluations per problem: median {int(model.summary_['n_iter'].median())}, "
          f"max {int(model.summary_['n_iter'].max())}; converged "
          f"{int(model.summary_['converged'].sum())}/{n_subjects}")
    how = "" if n_scipy == n_subjects else \
        f" (measured on {n_scipy} subjects: {scipy_s:.2f} s, CPU {scipy_cpu:.2f} s; " \
        f"extrapolated x{scale:g} to all {n_subjects})"
    print(f"SciPy L-BFGS-B loop (3 x 3 grid)    : {full_s:9.2f} s (CPU {full_cpu:9.2f} s){how}")
    print(f"NLL neuroml - SciPy over {n_scipy} subjects: max {diff.max():+.2e}, median "
          f"{np.median(diff):+.2e}, min {diff.min():+.2e}; subjects worse by > 1e-3: "
          f"{result['n_worse_1e-3']}")
    print(f"recovery: r(alpha) = {r_alpha:.3f}, r(log beta) = {r_beta:.3f}")
    print(f"ratio SciPy / neuroml = {result['ratio']:.1f}x (wall), {result['cpu_ratio']:.1f}x "
          "(CPU time)")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-subjects", type=int, default=1000)
    parser.add_argument("--n-trials", type=int, default=1000)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--scipy-subjects", type=int, default=None,
                        help="fit only this many subjects with SciPy and extrapolate")
    parser.add_argument("--n-starts", type=int, default=8)
    args = parser.parse_args()
    main(args.n_subjects, args.n_trials, args.device, args.scipy_subjects, args.n_starts)
