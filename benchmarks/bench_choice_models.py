"""QLearning against a per-subject SciPy L-BFGS-B loop, on the same simulated subjects.

Data: ``--n-subjects`` simulated Q-learning agents (Wilson & Collins model 3; alpha ~
U(0.05, 0.95), beta ~ U(1, 10)), ``--n-trials`` trials each on a two-armed bandit whose
reward probabilities (0.8 / 0.2) reverse every 40-80 trials. Default 1,000 x 1,000.

- neuroml: ``QLearning(n_starts=8)``: all subjects x restarts in one batched fit on
  ``--device`` (float64).
- SciPy: ``benchmarks/_choice_reference.py``: for each subject in turn, L-BFGS-B in
  natural units inside the bounds from a 3 x 3 grid of starts (alpha 0.1 / 0.5 / 0.9 x
  beta 1 / 5 / 20); the best of the nine fits is kept: one session at a time, as labs
  fit. Two versions of the per-subject likelihood (``--reference``):
  ``fast``, a hand-tuned loop in plain-Python floats with the analytic gradient (the
  strongest per-subject loop we could write), and ``numpy``, the loop as agent code
  usually has it (NumPy arrays for the values and the softmax, as in the Allen
  Institute's dynamic-foraging agents) with SciPy's finite-difference gradient.
  NumPy's BLAS is held to one thread while SciPy runs: on the 2-core development machine
  its threads, woken for L-BFGS-B's tiny vector operations, made the loop 3-4x slower.

The SciPy loops cost about 0.1-0.15 s (``fast``) and 1.4-1.7 s (``numpy``) per 1,000-trial
subject (2-core development VM and the H200 machine's host CPU alike),
so ``--scipy-subjects`` (default: all) fits only the first subjects and the full loop's
time is extrapolated linearly (the subjects are independent: the loop's time is a sum
of per-subject times); the output says when it does. Agreement: each subject's NLL from
neuroml minus SciPy's (negative: neuroml found a better optimum), over the subjects
SciPy fitted. All are timed in the same process, one after the other (wall and process
CPU time); on a shared machine compare ratios from one run only.

``--humans DIR`` instead times the 97 real human subjects of
``human_two_armed_bandit_dan_loewenstein`` (about 100 trials each; the folder under
``shared/data/real/``): ``QLearning()`` with its defaults against
``_choice_reference.fit_all`` (the hand-tuned loop), best of ``--repeats`` runs each.

Run with ``python benchmarks/bench_choice_models.py`` (``--n-subjects 200 --n-trials 500``
for a quick run, ``--device cuda`` on a GPU machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _choice_reference import fit_all, fit_subject
from threadpoolctl import threadpool_limits

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


def main(n_subjects=1000, n_trials=1000, device="cpu", scipy_subjects=None, n_starts=8,
         references=("fast", "numpy"), numpy_subjects=None) -> dict:
    sim, alpha, beta = make_data(n_subjects, n_trials)
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
    summary = model.summary_
    print(f"neuroml QLearning (n_starts={n_starts}): {ours_s:9.2f} s (CPU {ours_cpu:9.2f} s); "
          f"evaluations per restart: median {int(summary['n_iter'].median())}, max "
          f"{int(summary['n_iter'].max())}; converged {int(summary['converged'].sum())}"
          f"/{n_subjects}")
    fitted = model.params_.to_numpy()
    r_alpha = np.corrcoef(fitted[:, 0], alpha)[0, 1]
    r_beta = np.corrcoef(np.log(fitted[:, 1]), np.log(beta))[0, 1]
    result = {"n_subjects": n_subjects, "n_trials": n_trials, "device": str(device),
              "neuroml_s": ours_s, "neuroml_cpu_s": ours_cpu, "r_alpha": r_alpha,
              "r_log_beta": r_beta}
    for style in references:
        limit = scipy_subjects if style == "fast" else (numpy_subjects or scipy_subjects)
        n_scipy = n_subjects if limit is None else min(limit, n_subjects)

        def scipy_loop(style=style, n_scipy=n_scipy):
            with threadpool_limits(1):
                return np.array([fit_subject(choices[s], rewards[s], style=style)[1]
                                 for s in range(n_scipy)])

        scipy_nll, scipy_s, scipy_cpu = timed(scipy_loop)
        scale = n_subjects / n_scipy
        full_s, full_cpu = scipy_s * scale, scipy_cpu * scale
        diff = model.nll_.to_numpy()[:n_scipy] - scipy_nll
        how = "" if n_scipy == n_subjects else \
            f" (measured on {n_scipy} subjects: {scipy_s:.2f} s, CPU {scipy_cpu:.2f} s; " \
            f"extrapolated x{scale:g} to all {n_subjects})"
        print(f"SciPy L-BFGS-B loop, {style:5s} likelihood: {full_s:9.2f} s (CPU "
              f"{full_cpu:9.2f} s){how}")
        print(f"  NLL neuroml - SciPy over {n_scipy} subjects: max {diff.max():+.2e}, median "
              f"{np.median(diff):+.2e}, min {diff.min():+.2e}; subjects worse by > 1e-3: "
              f"{int((diff > 1e-3).sum())}")
        print(f"  ratio SciPy ({style}) / neuroml = {full_s / ours_s:.1f}x (wall), "
              f"{full_cpu / ours_cpu:.1f}x (CPU time)")
        result.update({f"scipy_{style}_s": full_s, f"scipy_{style}_cpu_s": full_cpu,
                       f"ratio_{style}": full_s / ours_s,
                       f"cpu_ratio_{style}": full_cpu / ours_cpu,
                       f"max_nll_excess_{style}": float(diff.max()),
                       f"scipy_{style}_subjects": n_scipy})
    print(f"recovery: r(alpha) = {r_alpha:.3f}, r(log beta) = {r_beta:.3f}")
    return result


def humans(folder: str, device: str = "cpu", repeats: int = 3) -> dict:
    """QLearning against the per-subject SciPy loop on the 97 real human subjects."""
    from pathlib import Path

    from neuroml.rl.choice_data import read_choice_engineering

    df = read_choice_engineering(Path(folder))
    first = df[df["subject"].isin(df["subject"].unique()[:3])]
    QLearning(device=device).fit(first["choice"], first["reward"], first["subject"])  # warm-up
    ours, theirs = [], []
    for _ in range(repeats):
        model, wall, cpu = timed(lambda: QLearning(random_state=0, device=device).fit(
            df["choice"], df["reward"], df["subject"]))
        ours.append((wall, cpu))
        (labels, _, nll), wall, cpu = timed(lambda: fit_all(df["choice"], df["reward"],
                                                             df["subject"]))
        theirs.append((wall, cpu))
    (o_wall, o_cpu), (t_wall, t_cpu) = min(ours), min(theirs)
    excess = model.nll_.loc[labels].to_numpy() - nll
    print(f"{len(labels)} human subjects, {len(df):,} trials; device={device}")
    print(f"neuroml QLearning(): {o_wall:.3f} s (CPU {o_cpu:.3f} s); SciPy loop: {t_wall:.3f} s "
          f"(CPU {t_cpu:.3f} s); ratio {t_wall / o_wall:.1f}x wall, {t_cpu / o_cpu:.1f}x CPU")
    print(f"NLL neuroml - SciPy: max {excess.max():+.2e}; subjects worse by > 1e-3: "
          f"{int((excess > 1e-3).sum())}")
    return {"neuroml_s": o_wall, "scipy_s": t_wall, "ratio": t_wall / o_wall,
            "cpu_ratio": t_cpu / o_cpu, "max_nll_excess": float(excess.max())}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-subjects", type=int, default=1000)
    parser.add_argument("--n-trials", type=int, default=1000)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--scipy-subjects", type=int, default=None,
                        help="fit only this many subjects with SciPy and extrapolate")
    parser.add_argument("--numpy-subjects", type=int, default=None,
                        help="the same for the numpy-style reference (default: as above)")
    parser.add_argument("--reference", choices=["fast", "numpy", "both"], default="both")
    parser.add_argument("--n-starts", type=int, default=8)
    parser.add_argument("--humans", metavar="DIR", default=None,
                        help="time the 97 human subjects in DIR instead")
    parser.add_argument("--repeats", type=int, default=3, help="runs with --humans")
    args = parser.parse_args()
    if args.humans:
        humans(args.humans, args.device, args.repeats)
        raise SystemExit
    refs = ("fast", "numpy") if args.reference == "both" else (args.reference,)
    main(args.n_subjects, args.n_trials, args.device, args.scipy_subjects, args.n_starts, refs,
         args.numpy_subjects)
