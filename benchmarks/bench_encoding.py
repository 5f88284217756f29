"""ConvEncodingModel: training overhead against a plain PyTorch loop, and what it recovers.

Both sides train the same network (:class:`neuroml.nn._readouts.EncodingNetwork`, the
same initial weights), on the same standardised images, with the same loss (Poisson
negative log-likelihood plus the readout L1 and smoothness penalties), Adam, batch size
and number of epochs, without a validation set. The plain loop is randperm + slicing +
forward / backward / step. The best of a few alternating repeats is reported as images
per second and the estimator's overhead in percent (everything ``fit`` does beyond the
loop: validation of the input, standardisation, readout initialisation, the history).

Then, on held-out data, what the model recovers: the correlation of each simple cell's
receptive field with its planted Gabor, the held-out correlation on complex cells
against scikit-learn's ridge regression on the pixels, and the FEVE on the test repeats.

Run with ``python benchmarks/bench_encoding.py`` (``--device cuda`` on a GPU, ``--quick``
for a short run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _timing import interleaved
from sklearn.linear_model import RidgeCV

from neuroml._parallel import threads_for
from neuroml.datasets.visual import make_visual_population
from neuroml.device import resolve_device
from neuroml.nn.encoding import ConvEncodingModel
from neuroml.training import fused_adam_supported


def hand_loop(model: ConvEncodingModel, X: torch.Tensor, Y: torch.Tensor, epochs: int):
    """The same network, loss and optimiser in the minimal PyTorch loop, with the torch
    thread count ``fit`` uses (one CPU thread for small convolutions, see
    ``neuroml._parallel.threads_for``)."""
    torch.manual_seed(0)
    with threads_for(model._work(min(model.batch_size, len(X))), X.device):
        return _loop(model, X, Y, epochs)


def _loop(model, X, Y, epochs):
    net = model._build_module()["module_"].to(X.device)
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=model.lr, fused=fused_adam_supported(params))
    n, bs = len(X), model.batch_size
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(n, device=X.device)
        for start in range(0, n, bs):
            idx = perm[start : start + bs]
            opt.zero_grad(set_to_none=True)
            loss, _ = model._loss(net, X[idx], Y[idx])
            loss.backward()
            opt.step()
    net.eval()
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    device = resolve_device(args.device)
    n_images, size, neurons, epochs = (1500, 16, 8, 3) if args.quick else (5000, 32, 32, 10)
    pop = make_visual_population(n_neurons=neurons, n_images=n_images, image_size=size,
                                 random_state=0)
    X = torch.as_tensor(pop.images.values, device=device)
    params = dict(validation_fraction=0.0, patience=None, max_epochs=epochs, device=device,
                  random_state=0)
    if args.quick:
        params.update(channels=8, batch_size=128, lr=1e-2)
    ref = ConvEncodingModel(**params).fit(X[:64], pop.responses.values[:64])  # shapes
    Xs = ref._standardise(X[:, None])
    Y = torch.as_tensor(pop.responses.values, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    best, cpu, _ = interleaved({
        "neuroml": lambda: ConvEncodingModel(**params).fit(X, pop.responses.values),
        "plain torch": lambda: hand_loop(ref, Xs, Y, epochs),
    }, repeats=2 if args.quick else 3, sync=sync, warmup=True)
    print(f"{n_images} images {size}x{size}, {neurons} neurons, {epochs} epochs on {device}")
    for name in best:
        print(f"  {name:12s} {n_images * epochs / best[name]:10.0f} images/s (wall)  "
              f"{n_images * epochs / cpu[name]:10.0f} images/s (CPU time)")
    print(f"  overhead: {100 * (best['neuroml'] / best['plain torch'] - 1):+.1f} % (wall)")

    t0 = time.perf_counter()
    model = ConvEncodingModel(**{**params, "validation_fraction": 0.1, "patience": 10,
                                 "max_epochs": 200}).fit(X, pop.responses.values)
    fit_s = time.perf_counter() - t0
    rf = model.receptive_fields().values
    simple = np.flatnonzero(pop.cell_type == "simple")
    complex_ = np.flatnonzero(pop.cell_type == "complex")
    rf_corr = [np.corrcoef(rf[i].ravel(), pop.filters.values[i].ravel())[0, 1] for i in simple]
    target = pop.test_responses.mean("repeat").values
    ours = model.predict(pop.test_images.values)
    ridge = RidgeCV(alphas=np.logspace(1, 9, 17)).fit(
        pop.images.values.reshape(n_images, -1), pop.responses.values).predict(
        pop.test_images.values.reshape(len(target), -1))
    corr = lambda p, i: np.corrcoef(p[:, i], target[:, i])[0, 1]  # noqa: E731
    print(f"default training: {model.n_iter_} epochs, {fit_s:.1f} s")
    print(f"  simple-cell RF correlation: min {min(rf_corr):.3f}, mean {np.mean(rf_corr):.3f}")
    print(f"  complex cells, held-out correlation: CNN "
          f"{np.mean([corr(ours, i) for i in complex_]):.3f}, ridge "
          f"{np.mean([corr(ridge, i) for i in complex_]):.3f}")
    print(f"  FEVE (test repeats): {model.score(pop.test_images, pop.test_responses):.3f}")


if __name__ == "__main__":
    main()
