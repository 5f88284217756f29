"""LogisticDecoderCV against scikit-learn's LogisticRegressionCV.

50,000 trials x 256 units, 8 classes (reach directions), 10 C values x 5 folds. The
data are Poisson spike counts of cosine-tuned units, z-scored per unit (as a decoding
pipeline standardises before a logistic decoder; scikit-learn's lbfgs also needs scaled
features to converge in its default ``max_iter``). Both libraries get the same folds
(one ``StratifiedKFold`` object), the same ``Cs`` (``np.logspace(-4, 4, 10)``), the
same ``tol`` (1e-4 on the gradient) and accuracy scoring.

scikit-learn fits float64 (it converts its input); neuroml is timed on float32 input
(it keeps float32, the precision a GPU works in) and, with ``--float64``, also on
float64 input. Agreement: cross-validated accuracy at the chosen C within 0.5 points of
scikit-learn's, the same ``C_``, and every fold's score at that C within 0.5 points.
The largest difference over all (fold, C) cells is printed too; it is not asserted: at
weakly regularised C on small data (``--n-samples 3000``: 2,400 training trials for
2,048 weights) the objective is so flat that where inside ``tol`` each solver stops
moves test accuracy by a few points (4.7 at C >= 21.5, where scikit-learn's warm-started
lbfgs stops after 0-15 iterations); with ``tol=1e-8`` the two agree within 0.3 points
there too.

Each library is timed the best of ``--repeats`` runs, the two taking turns so that
changes in machine load hit both alike. ``--threads`` sets the threads of both (torch,
and BLAS/OpenMP through threadpoolctl); the default leaves every core to both.

Run with ``python benchmarks/bench_logistic_cv.py`` (``--n-samples 10000`` for a quick
run, ``--device cuda`` on a GPU machine).
"""

from __future__ import annotations

import argparse
import contextlib
import warnings

import numpy as np
import torch
from _timing import interleaved
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from neuroml import LogisticDecoderCV


def make_data(n_samples: int, n_features: int, n_classes: int, seed: int = 0):
    """z-scored Poisson counts of cosine-tuned units, and the direction labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_samples)
    angle = 2 * np.pi * y / n_classes
    preferred = rng.uniform(0, 2 * np.pi, n_features)
    baseline = rng.uniform(1.0, 6.0, n_features)
    depth = rng.uniform(0.0, 0.3, n_features)
    rates = baseline * np.exp(depth * np.cos(angle[:, None] - preferred[None]))
    X = rng.poisson(rates).astype(np.float64)
    X -= X.mean(axis=0)
    X /= X.std(axis=0)
    return X, y


def sklearn_cv(X, y, cv, Cs, tol):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarnings about 1.10 defaults
        return LogisticRegressionCV(Cs=Cs, cv=cv, scoring="accuracy", tol=tol, l1_ratios=(0.0,),
                                    use_legacy_attributes=False).fit(X, y)


def main(n_samples=50_000, n_features=256, n_classes=8, n_Cs=10, n_folds=5, device="cpu",
         repeats=1, threads=None, float64=False, tol=1e-4) -> dict:
    X, y = make_data(n_samples, n_features, n_classes)
    X32 = X.astype(np.float32)
    cv = StratifiedKFold(n_folds, shuffle=True, random_state=0)
    Cs = np.logspace(-4, 4, n_Cs)
    limit = threadpool_limits(threads) if threads else contextlib.nullcontext()
    if threads:
        torch.set_num_threads(threads)
    print(f"data: {n_samples:,} x {n_features}, {n_classes} classes; {n_Cs} Cs x {n_folds} folds; "
          f"torch threads={torch.get_num_threads()}; device={device}")
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else None
    fns = {
        "sklearn": lambda: sklearn_cv(X, y, cv, Cs, tol),
        "neuroml": lambda: LogisticDecoderCV(Cs=Cs, cv=cv, tol=tol, device=device).fit(X32, y),
    }
    if float64:
        fns["neuroml64"] = lambda: LogisticDecoderCV(Cs=Cs, cv=cv, tol=tol, device=device).fit(X, y)
    with limit:
        LogisticDecoderCV(Cs=3, cv=2, device=device).fit(X32[:2000], y[:2000])  # warm-up
        best, cpu, fitted = interleaved(fns, repeats, sync)
    sk, ours = fitted["sklearn"], fitted["neuroml"]
    sk_scores = sk.scores_[:, 0, :]  # (folds, Cs)
    result = {"n_samples": n_samples, "sklearn_s": best["sklearn"], "neuroml_s": best["neuroml"],
              "ratio": best["sklearn"] / best["neuroml"],
              "sklearn_cpu_s": cpu["sklearn"], "neuroml_cpu_s": cpu["neuroml"],
              "cpu_ratio": cpu["sklearn"] / cpu["neuroml"],
              "sklearn_iterations": int(sk.n_iter_.sum()), "neuroml_iterations": int(ours.n_iter_.sum())}
    print(f"sklearn LogisticRegressionCV (float64): {best['sklearn']:8.2f} s "
          f"(CPU {cpu['sklearn']:7.2f} s)  {result['sklearn_iterations']} lbfgs iterations, "
          f"C_={sk.C_:.4g}")
    print(f"neuroml LogisticDecoderCV (float32)   : {best['neuroml']:8.2f} s "
          f"(CPU {cpu['neuroml']:7.2f} s)  {result['neuroml_iterations']} iterations, "
          f"C_={ours.C_:.4g}")
    names = ["neuroml"]
    if float64:
        o64 = fitted["neuroml64"]
        result.update(neuroml64_s=best["neuroml64"], ratio64=best["sklearn"] / best["neuroml64"],
                      neuroml64_cpu_s=cpu["neuroml64"],
                      cpu_ratio64=cpu["sklearn"] / cpu["neuroml64"])
        print(f"neuroml LogisticDecoderCV (float64)   : {best['neuroml64']:8.2f} s "
              f"(CPU {cpu['neuroml64']:7.2f} s)  {int(o64.n_iter_.sum())} iterations, "
              f"C_={o64.C_:.4g}")
        names.append("neuroml64")
    for name in names:
        est = fitted[name]
        acc_ours = est.scores_.mean(axis=0).max()
        acc_sk = sk_scores.mean(axis=0).max()
        best_c = int(np.argmin(np.abs(Cs - sk.C_)))
        diff = np.abs(est.scores_[:, best_c] - sk_scores[:, best_c]).max()
        diff_all = np.abs(est.scores_ - sk_scores).max()
        print(f"{name}: best mean CV accuracy {acc_ours:.4f} vs sklearn {acc_sk:.4f} "
              f"(difference {100 * abs(acc_ours - acc_sk):.2f} points); largest per-fold "
              f"score difference at C_ {100 * diff:.2f} points, over all Cs "
              f"{100 * diff_all:.2f} points")
        assert abs(acc_ours - acc_sk) <= 0.005, (acc_ours, acc_sk)
        assert np.isclose(est.C_, sk.C_), (est.C_, sk.C_)
        assert diff <= 0.005, diff
        result[f"{name}_accuracy_difference"] = float(abs(acc_ours - acc_sk))
    print(f"ratio sklearn / neuroml = {result['ratio']:.2f}x (float32)"
          + (f", {result['ratio64']:.2f}x (float64)" if float64 else "")
          + f"; CPU-time ratio {result['cpu_ratio']:.2f}x"
          + (f", {result['cpu_ratio64']:.2f}x" if float64 else ""))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--n-features", type=int, default=256)
    parser.add_argument("--n-classes", type=int, default=8)
    parser.add_argument("--n-Cs", type=int, default=10)
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: all cores)")
    parser.add_argument("--float64", action="store_true", help="also time neuroml on float64")
    args = parser.parse_args()
    main(args.n_samples, args.n_features, args.n_classes, args.n_Cs, args.n_folds, args.device,
         args.repeats, args.threads, args.float64)
