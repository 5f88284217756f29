"""ParametricRegressor against SciPy's curve_fit run neuron by neuron.

1,000 neurons per model, two models:

- ``sine``: the lecture's ``amplitude * sin(frequency * x + phase)`` at 200 distinct,
  evenly spaced x in [0, 10] (no repeated x), amplitude U(1, 3), frequency U(1, 4),
  phase U(-pi, pi), Gaussian noise of s.d. 0.5;
- ``von_mises``: ``b + a exp(kappa (cos(x - mu) - 1))`` at 16 directions x 8 trials
  (128 samples with repeats, a typical tuning experiment), b U(1, 3), a U(2, 8),
  kappa U(1, 4), mu U(-pi, pi), noise s.d. 0.5.

curve_fit gets the same data-driven initial guess per neuron that ParametricRegressor
starts from (the preset's guess, computed once outside the timed region: a head start
for SciPy) and its fastest method, MINPACK's Levenberg-Marquardt (``method="lm"``,
unbounded; the fits land inside neuroml's bounds). With ``--bounded`` it is also timed
with the same bounds as the preset (which makes SciPy use its slower "trf" method).
neuroml runs with its defaults (``device="cpu"``, float64, ``n_starts=1``, ``tol=1e-8``).

Agreement: per neuron, the largest relative difference over the parameters (periodic
ones compared on the circle, relative to pi); the fraction of neurons within 1e-3, the
median and the largest, and how many neurons each method fits with a lower loss.

Both run on ``--threads`` threads (default 1: curve_fit is single-threaded, and this
shared machine gives no reliable second core); each is timed the best of
``--repeats`` runs, taking turns. Run: ``python benchmarks/bench_parametric.py``.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from _timing import interleaved
from scipy.optimize import curve_fit
from threadpoolctl import threadpool_limits

from neuroml.nn._parametric_models import PRESETS
from neuroml.nn.parametric import ParametricRegressor


def sine(x, amplitude, frequency, phase):
    return amplitude * np.sin(frequency * x + phase)


def von_mises(x, b, a, kappa, mu):
    return b + a * np.exp(kappa * (np.cos(x - mu) - 1))


MODELS = {"sine": (sine, ("phase",)), "von_mises": (von_mises, ("mu",))}


def make_data(model: str, n_neurons: int, seed: int = 0):
    """Inputs, responses (n_samples, n_neurons) and the planted parameters."""
    rng = np.random.default_rng(seed)
    if model == "sine":
        x = np.linspace(0, 10, 200)
        P = np.c_[rng.uniform(1, 3, n_neurons), rng.uniform(1, 4, n_neurons),
                  rng.uniform(-np.pi, np.pi, n_neurons)]
    else:
        x = np.repeat(np.linspace(-np.pi, np.pi, 16, endpoint=False), 8)
        P = np.c_[rng.uniform(1, 3, n_neurons), rng.uniform(2, 8, n_neurons),
                  rng.uniform(1, 4, n_neurons), rng.uniform(-np.pi, np.pi, n_neurons)]
    f = MODELS[model][0]
    Y = f(x[:, None], *P.T) + rng.normal(0, 0.5, (len(x), n_neurons))
    return x, Y, P


def initial_guess(model: str, x, Y) -> np.ndarray:
    """The preset's data-driven first start for every neuron (what neuroml starts from)."""
    xu, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    Ybar = np.zeros((len(xu), Y.shape[1]))
    np.add.at(Ybar, inverse, Y)
    Ybar /= counts[:, None]
    w = None if len(xu) == len(x) else torch.as_tensor(counts, dtype=torch.float64)
    starts = PRESETS[model].init(torch.as_tensor(xu), torch.as_tensor(Ybar), w, 1)
    return starts[:, 0].numpy()


def scipy_fits(model: str, x, Y, p0, bounds=None) -> np.ndarray:
    f = MODELS[model][0]
    out = np.empty_like(p0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(Y.shape[1]):
            if bounds is None:
                out[i] = curve_fit(f, x, Y[:, i], p0=p0[i], method="lm")[0]
            else:
                start = np.clip(p0[i], bounds[0] + 1e-9, bounds[1])
                out[i] = curve_fit(f, x, Y[:, i], p0=start, bounds=bounds)[0]
    return out


def canonical(model: str, P: np.ndarray) -> np.ndarray:
    """Fold the sine's symmetries (negative amplitude or frequency) into neuroml's form;
    wrap periodic parameters into [-pi, pi)."""
    P = P.copy()
    if model == "sine":
        neg_f = P[:, 1] < 0
        P[neg_f, 1] *= -1
        P[neg_f, 2] = np.pi - P[neg_f, 2]  # a sin(-w x + p) = a sin(w x + pi - p)
        neg_a = P[:, 0] < 0
        P[neg_a, 0] *= -1
        P[neg_a, 2] += np.pi
    periodic = [2] if model == "sine" else [3]
    P[:, periodic] = np.mod(P[:, periodic] + np.pi, 2 * np.pi) - np.pi
    return P


def relative_difference(model: str, ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Per neuron, the largest relative parameter difference (angles relative to pi)."""
    diff = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)
    j = 2 if model == "sine" else 3
    diff[:, j] = np.abs(np.angle(np.exp(1j * (ours[:, j] - theirs[:, j])))) / np.pi
    return diff.max(axis=1)


def losses(model: str, x, Y, P) -> np.ndarray:
    f = MODELS[model][0]
    return ((Y - f(x[:, None], *P.T)) ** 2).mean(axis=0)


def run(model: str, n_neurons: int, repeats: int, bounded: bool) -> dict:
    x, Y, _ = make_data(model, n_neurons)
    p0 = initial_guess(model, x, Y)
    fns = {
        "scipy": lambda: scipy_fits(model, x, Y, p0),
        "neuroml": lambda: ParametricRegressor(model, device="cpu").fit(x, Y),
    }
    if bounded:
        lo = np.array([-np.inf if n not in PRESETS[model].bounds else PRESETS[model].bounds[n][0]
                       for n in PRESETS[model].names])
        hi = np.full_like(lo, np.inf)
        fns["scipy_bounded"] = lambda: scipy_fits(model, x, Y, p0, (lo, hi))
    ParametricRegressor(model, device="cpu").fit(x, Y[:, :10])  # warm-up
    best, cpu, res = interleaved(fns, repeats, pause=0.3)
    ours = res["neuroml"].param_values_
    theirs = canonical(model, res["scipy"])
    rel = relative_difference(model, ours, theirs)
    loss_ours, loss_theirs = losses(model, x, Y, ours), losses(model, x, Y, theirs)
    out = {
        "model": model, "scipy_s": best["scipy"], "neuroml_s": best["neuroml"],
        "ratio": best["scipy"] / best["neuroml"], "cpu_ratio": cpu["scipy"] / cpu["neuroml"],
        "within_1e-3": float(np.mean(rel <= 1e-3)), "median_rel": float(np.median(rel)),
        "max_rel": float(rel.max()), "lower_loss_ours": int(np.sum(loss_ours < loss_theirs * (1 - 1e-9))),
        "lower_loss_scipy": int(np.sum(loss_theirs < loss_ours * (1 - 1e-9))),
        "iterations": int(res["neuroml"].n_iter_),
    }
    print(f"{model}: {n_neurons} neurons x {len(x)} samples")
    print(f"  scipy curve_fit (lm), neuron by neuron: {best['scipy']:7.3f} s "
          f"(CPU {cpu['scipy']:.3f} s)")
    if bounded:
        out["ratio_bounded"] = best["scipy_bounded"] / best["neuroml"]
        print(f"  scipy curve_fit (bounds, trf)        : {best['scipy_bounded']:7.3f} s")
    print(f"  neuroml ParametricRegressor           : {best['neuroml']:7.3f} s "
          f"(CPU {cpu['neuroml']:.3f} s), {out['iterations']} iterations")
    print(f"  ratio {out['ratio']:.1f}x (CPU time {out['cpu_ratio']:.1f}x)"
          + (f"; vs bounded curve_fit {out['ratio_bounded']:.1f}x" if bounded else ""))
    print(f"  agreement: {100 * out['within_1e-3']:.1f} % of neurons within 1e-3 relative; "
          f"median {out['median_rel']:.1e}, largest {out['max_rel']:.1e}; lower loss: "
          f"neuroml {out['lower_loss_ours']}, scipy {out['lower_loss_scipy']} neurons")
    return out


def main(models=("sine", "von_mises"), n_neurons=1000, repeats=3, threads=1, bounded=False):
    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        print(f"torch threads={torch.get_num_threads()}")
        return [run(m, n_neurons, repeats, bounded) for m in models]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["sine", "von_mises"], choices=list(MODELS))
    parser.add_argument("--n-neurons", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bounded", action="store_true",
                        help="also time curve_fit with the preset's bounds (trf)")
    args = parser.parse_args()
    main(tuple(args.models), args.n_neurons, args.repeats, args.threads, args.bounded)
