"""TimeResolvedDecoder against a loop of scikit-learn LogisticRegression fits.

The loop is what MNE's ``SlidingEstimator`` does: one ``LogisticRegression`` per time
bin and fold. Data: 400 trials x 100 time bins x 128 units, two classes; Poisson counts
whose class difference switches on at bin 30, z-scored per unit and bin (as the
``StandardScaler`` of a decoding pipeline would). Both use the same 5 stratified folds,
``C=1`` and ``tol=1e-4``; neuroml solves all 100 bins x 5 folds in one batched solve.
The loop computes the cross-validated scores only (MNE's ``cross_val_multiscore``), so
neuroml is timed with ``refit=False`` — the same 500 fits; ``refit=True`` (also each
bin's decoder on all trials, 600 fits, what ``fit`` does by default) is timed too.

Agreement: per-(fold, bin) accuracies equal up to a rare flipped held-out prediction
(both solvers stop within ``tol`` of the optimum): the mean absolute difference must be
below 0.5 points and the largest one at most two test trials (four in the off-diagonal
cells of the generalisation matrix: 50,000 cells, each a model applied to another bin's
trials, many of them near its boundary; measured three). With ``--generalize`` the
temporal-generalisation matrix (train bin x test bin) is also compared with the loop
(scikit-learn scored on every test bin, MNE's ``GeneralizingEstimator``).

Each library is timed the best of ``--repeats`` runs, taking turns; wall and process CPU
time are printed (on a shared machine, with ``--threads 1``, the CPU time measures the
work itself). ``--threads`` sets the threads of both (torch, and BLAS/OpenMP through
threadpoolctl). ``--float32`` also times neuroml on float32 input (scikit-learn always
works in float64 here).

Run with ``python benchmarks/bench_time_resolved.py`` (``--n-times 30`` for a quick run,
``--device cuda`` on a GPU machine).
"""

from __future__ import annotations

import argparse
import contextlib
import warnings

import numpy as np
import torch
from _timing import interleaved
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from neuroml import LogisticDecoder, TimeResolvedDecoder


def make_data(n_trials: int, n_times: int, n_units: int, onset: int, seed: int = 0):
    """z-scored Poisson counts (trial, time, unit) with a class code from bin ``onset`` on."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_trials)
    base = rng.uniform(2.0, 8.0, n_units)
    code = rng.normal(0.0, 0.03, n_units)
    gain = (np.arange(n_times) >= onset).astype(float)
    rates = base * np.exp(np.outer(2 * y - 1, code)[:, None, :] * gain[None, :, None])
    X = rng.poisson(np.broadcast_to(rates, (n_trials, n_times, n_units))).astype(np.float64)
    X -= X.mean(axis=0)
    X /= X.std(axis=0) + 1e-12
    return X, y


def sklearn_loop(X, y, splits, generalize: bool):
    n_times = X.shape[1]
    shape = (len(splits), n_times, n_times) if generalize else (len(splits), n_times)
    out = np.empty(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f, (tr, te) in enumerate(splits):
            for t in range(n_times):
                model = LogisticRegression(C=1.0, tol=1e-4).fit(X[tr, t], y[tr])
                if generalize:
                    for u in range(n_times):
                        out[f, t, u] = model.score(X[te, u], y[te])
                else:
                    out[f, t] = model.score(X[te, t], y[te])
    return out


def main(n_trials=400, n_times=100, n_units=128, n_folds=5, device="cpu", repeats=3,
         threads=None, generalize=False, float32=False) -> dict:
    X, y = make_data(n_trials, n_times, n_units, onset=int(0.3 * n_times))
    cv = StratifiedKFold(n_folds, shuffle=True, random_state=0)
    splits = list(cv.split(X[:, 0], y))
    limit = threadpool_limits(threads) if threads else contextlib.nullcontext()
    if threads:
        torch.set_num_threads(threads)
    print(f"data: {n_trials} trials x {n_times} bins x {n_units} units; {n_folds} folds; "
          f"generalize={generalize}; torch threads={torch.get_num_threads()}; device={device}")
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else None

    def ours(data, refit=False):
        est = TimeResolvedDecoder(LogisticDecoder(C=1.0, tol=1e-4, device=device), cv=cv,
                                  generalize=generalize, refit=refit, device=device)
        return est.fit(data, y).scores_.values

    fns = {"sklearn": lambda: sklearn_loop(X, y, splits, generalize), "neuroml": lambda: ours(X),
           "neuroml_refit": lambda: ours(X, refit=True)}
    if float32:
        X32 = X.astype(np.float32)
        fns["neuroml32"] = lambda: ours(X32)
    with limit:
        TimeResolvedDecoder(cv=2, device=device).fit(X[:40, :3], y[:40])  # warm-up
        best, cpu, res = interleaved(fns, repeats, sync, pause=0.5)
    n_test = min(len(te) for _, te in splits)
    print(f"sklearn loop of {len(splits) * n_times} LogisticRegression fits: {best['sklearn']:8.3f} s "
          f"(CPU {cpu['sklearn']:.3f} s)")
    result = {"sklearn_s": best["sklearn"]}
    for name in [k for k in fns if k != "sklearn"]:
        diff = np.abs(res[name] - res["sklearn"])
        label = "float32" if name.endswith("32") else "float64"
        label += ", refit=True" if name.endswith("refit") else ""
        print(f"neuroml TimeResolvedDecoder ({label}, one batched solve): {best[name]:8.3f} s "
              f"(CPU {cpu[name]:.3f} s)")
        print(f"  accuracy difference per (fold, bin{', bin' if generalize else ''}): mean "
              f"{100 * diff.mean():.3f} points, max {100 * diff.max():.2f} points "
              f"(one test trial = {100 / n_test:.2f} points); mean accuracy after onset "
              f"{res[name][..., int(0.3 * n_times):].mean():.3f} (sklearn "
              f"{res['sklearn'][..., int(0.3 * n_times):].mean():.3f})")
        assert diff.mean() < 0.005, diff.mean()
        # the fits' own bins: at most two flipped test trials; a model applied to other
        # bins (generalisation) sees more trials near its boundary: at most four
        own = np.diagonal(diff, axis1=-2, axis2=-1) if generalize else diff
        assert own.max() <= 2 / n_test + 1e-6, own.max()
        assert diff.max() <= 4 / n_test + 1e-6, diff.max()
        ratio = best["sklearn"] / best[name]
        print(f"  ratio sklearn / neuroml ({label}) = {ratio:.1f}x; CPU-time ratio "
              f"{cpu['sklearn'] / cpu[name]:.1f}x")
        result.update({f"{name}_s": best[name], f"{name}_ratio": ratio,
                       f"{name}_cpu_ratio": cpu["sklearn"] / cpu[name],
                       f"{name}_mean_abs_difference": float(diff.mean())})
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-trials", type=int, default=400)
    parser.add_argument("--n-times", type=int, default=100)
    parser.add_argument("--n-units", type=int, default=128)
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: all cores)")
    parser.add_argument("--generalize", action="store_true",
                        help="temporal generalisation (train bin x test bin)")
    parser.add_argument("--float32", action="store_true",
                        help="also time neuroml on float32 input")
    args = parser.parse_args()
    main(args.n_trials, args.n_times, args.n_units, args.n_folds, args.device, args.repeats,
         args.threads, args.generalize, args.float32)
