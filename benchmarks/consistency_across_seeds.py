"""How reliable the contrastive embedding is across seeds, on one device.

The data and settings of ``tests/representation/test_reaching.py``: a simulated reaching
session (300 trials, 100 units, 40 ms bins, smoothed square-root counts), a time-contrastive
``ContrastiveEmbedding(3, time_offset=2)`` with default training, fitted on 225 trials
with ``--seeds`` random states; prints the pairwise consistency (CEBRA's linear R2) of
their embeddings of the 75 held-out trials, its minimum and mean, and each fit's epochs
and best validation loss.

    python benchmarks/consistency_across_seeds.py --device cuda --seeds 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.ndimage import gaussian_filter1d

from neuroml.datasets import make_reaching
from neuroml.representation import ContrastiveEmbedding, consistency_score


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    rec = make_reaching(n_units=100, n_trials=300, max_rate=100.0, noise=0.005,
                        random_state=0)
    counts = rec.epochs("movement_onset", (-0.25, 0.55), 0.04)
    X = np.sqrt(counts.copy(data=gaussian_filter1d(counts.values.astype(float), 1.0, axis=1)))
    embeddings = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        est = ContrastiveEmbedding(3, positive="time", time_offset=2, random_state=seed,
                                   device=args.device).fit(X[:225])
        embeddings.append(est.transform(X[225:]))
        print(f"seed {seed}: {len(est.history_)} epochs, best val InfoNCE "
              f"{est.history_['val_loss'].min():.4f}, {time.perf_counter() - t0:.1f} s",
              flush=True)
    pairs = consistency_score(embeddings, pairwise=True)
    pairs = (pairs + pairs.T) / 2
    with np.printoptions(precision=2, suppress=True):
        print(pairs)
    result = {"device": args.device, "seeds": args.seeds, "min": float(np.nanmin(pairs)),
              "mean": float(np.nanmean(pairs))}
    print(f"consistency across {args.seeds} seeds on {args.device}: min pair "
          f"{result['min']:.3f}, mean {result['mean']:.3f}")
    return result


if __name__ == "__main__":
    main()
