"""Representation learning: training throughput against a hand-written loop and CEBRA.

1. **Estimator overhead.** ``Autoencoder``, ``VAE`` and ``ContrastiveEmbedding`` ``fit``
   (input checks, the one ``Trainer`` loop, the history, the final pass for latent
   statistics) against a minimal hand-written PyTorch loop that trains the same module
   class from the same initial weights on the same minibatches (the same permutations,
   reparameterisation noise and negatives, drawn from generators seeded the same way)
   with the same optimiser (Adam, fused kernel where available).
   The final weights are asserted equal, so both did the same work. Throughput is
   training samples per second (samples x epochs / time); overhead in percent
   (target <= 10 %).
2. **CEBRA.** ``ContrastiveEmbedding(positive="time")`` against CEBRA's scikit-learn
   estimator (``cebra.CEBRA``, conditional "time", "offset5-model": both see 5 time
   bins) on the same binned recording, same batch size, temperature, learning rate and
   number of steps. CEBRA runs in its own virtual environment (``--cebra-python``,
   default ``/tmp/cebra-venv/bin/python``, made with ``pip install torch==2.13.0 cebra``)
   because it is not a neuroml dependency; it is skipped when that interpreter is absent.
   The architectures differ (CEBRA: conv k=2, residual conv k=3, conv k=2, 32 channels;
   ours: conv k=5 then an MLP, 32 units), so the ratio compares whole estimators, not
   loops. Both embeddings are also scored: consistency between them (R^2 of the best
   linear map, CEBRA's definition) and R^2 of a linear map to the planted latents.

Timings are the best of ``--repeats`` runs (which loop runs first alternates), wall
clock and process CPU time (less disturbed by other programs on a busy machine).

Run with ``python benchmarks/bench_representation.py`` (``--quick`` for a short run,
``--threads N`` to set torch's CPU threads, ``--device cuda`` on a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import LinearRegression

from neuroml.datasets import make_reaching
from neuroml.device import resolve_device
from neuroml.representation import VAE, Autoencoder, ContrastiveEmbedding, consistency_score
from neuroml.representation._networks import AutoencoderNet, VAENet, WindowEncoder
from neuroml.representation.autoencoder import reconstruction_loss
from neuroml.representation.contrastive import infonce
from neuroml.representation.vae import elbo_terms
from neuroml.training import fused_adam_supported

SEED = 0
LR = 1e-3


def recording(n_trials: int):
    """A make_reaching session binned at 40 ms, smoothed, sqrt (time, unit), and its latents."""
    rec = make_reaching(n_units=100, n_trials=n_trials, max_rate=100.0, noise=0.005,
                        random_state=0)
    counts = rec.bin(0.04)
    smooth = gaussian_filter1d(counts.values.astype(np.float64), 1.0, axis=0)
    latents = np.nan_to_num(rec.signal("latents", at=counts["time"].values).values)
    return smooth.astype(np.float32), latents


# ---------------------------------------------------------------- hand-written loops
def adam(module, lr):
    """Adam as the Trainer makes it (the fused kernel where torch has one)."""
    params = list(module.parameters())
    return torch.optim.Adam(params, lr=lr, fused=fused_adam_supported(params))


def _batches(gen, n, batch_size, device, order=None):
    perm = torch.randperm(n, generator=gen).to(device)
    perm = perm if order is None else order[perm]
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def hand_autoencoder(X, hidden, n_latents, batch_size, epochs):
    """Minimal loop: the estimator's module and loss, Adam, randperm minibatches."""
    torch.manual_seed(SEED)
    m = AutoencoderNet(X.shape[1], n_latents, hidden, "tanh").to(X.device)
    with torch.no_grad():
        m.standardize.set_(X)
        m.decoder[-1].bias.copy_(X.mean(0))
    opt = adam(m, LR)
    gen = torch.Generator().manual_seed(SEED)
    order = torch.randperm(X.shape[0], generator=gen).to(X.device)  # the Trainer's split
    m.train()
    for _ in range(epochs):
        for idx in _batches(gen, X.shape[0], batch_size, X.device, order):
            xb = X[idx]
            opt.zero_grad(set_to_none=True)
            reconstruction_loss(m(xb), xb, "mse").mean().backward()
            opt.step()
    return m


def hand_vae(X, hidden, n_latents, batch_size, epochs):
    torch.manual_seed(SEED)
    m = VAENet(X.shape[1], n_latents, hidden, "tanh").to(X.device)
    with torch.no_grad():
        m.standardize.set_(X)
        m.decoder[-1].bias.copy_(X.mean(0).clamp_min(1e-3).log())
    opt = adam(m, LR)
    gen = torch.Generator().manual_seed(SEED)
    order = torch.randperm(X.shape[0], generator=gen).to(X.device)
    m.train()
    for _ in range(epochs):
        for idx in _batches(gen, X.shape[0], batch_size, X.device, order):
            recon, kl = elbo_terms(m, X[idx], "poisson")
            opt.zero_grad(set_to_none=True)
            (recon.mean() + kl.mean()).backward()
            opt.step()
    return m


def hand_contrastive(X, window, offset, temperature, batch_size, epochs):
    """Windows by replicate padding (not the estimator's index arithmetic), positives
    ``offset`` bins later, uniform negatives from a seeded generator."""
    torch.manual_seed(SEED)
    n, n_units = X.shape
    m = WindowEncoder(n_units, 3, window, (32, 32), "gelu").to(X.device)
    with torch.no_grad():
        m.standardize.set_(X)
    left = (window - 1) // 2
    padded = torch.cat([X[:1].expand(left, -1), X, X[-1:].expand(window - 1 - left, -1)])
    windows = padded.unfold(0, window, 1).transpose(1, 2).contiguous()  # (n, window, unit)
    anchors = torch.arange(n - offset, device=X.device)
    opt = adam(m, 3e-3)
    tgen = torch.Generator().manual_seed(SEED)
    sgen = torch.Generator(device=X.device).manual_seed(SEED)
    m.train()
    for _ in range(epochs):
        for idx in _batches(tgen, anchors.numel(), batch_size, X.device):
            ref = anchors[idx]
            neg = anchors[torch.randint(anchors.numel(), (ref.numel(),), generator=sgen,
                                        device=X.device)]
            emb = m(windows[torch.cat([ref, ref + offset, neg])])
            b = ref.numel()
            loss = infonce(emb[:b], emb[b : 2 * b], emb[2 * b :], temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return m


# ---------------------------------------------------------------- timing
def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - w, time.process_time() - c


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.allclose(sa[k].float(), sb[k].float(), rtol=1e-4, atol=1e-6) for k in sa)


def compare(name, ours, hand, n_samples, epochs, repeats, device):
    ours(), hand()  # warm-up: first calls pay one-off costs (allocator, kernels)
    best = {"ours": (np.inf, np.inf), "hand": (np.inf, np.inf)}
    est = mod = None
    for r in range(repeats):
        pair = (("ours", ours), ("hand", hand))
        for key, fn in pair if r % 2 == 0 else pair[::-1]:  # alternate who runs first
            out, w, c = timed(fn, device)
            best[key] = (min(best[key][0], w), min(best[key][1], c))
            if key == "ours":
                est = out
            else:
                mod = out
    assert same_weights(est.module_, mod), f"{name}: the two loops did different work"
    n = n_samples * epochs
    (wo, co), (wh, ch) = best["ours"], best["hand"]
    print(f"{name:<22} ours {n / wo:>10,.0f} samples/s (cpu {n / co:>10,.0f})   "
          f"hand loop {n / wh:>10,.0f} (cpu {n / ch:>10,.0f})   "
          f"overhead wall {100 * (wo / wh - 1):+5.1f} %  cpu {100 * (co / ch - 1):+5.1f} %")
    return 100 * (wo / wh - 1), 100 * (co / ch - 1)


# ---------------------------------------------------------------- CEBRA
CEBRA_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    import cebra
    X = np.load(sys.argv[1]); cfg = json.loads(sys.argv[2])
    torch.set_num_threads(cfg["threads"])
    best = None
    for _ in range(cfg["repeats"]):
        model = cebra.CEBRA(model_architecture="offset5-model", batch_size=cfg["batch_size"],
                            learning_rate=cfg["lr"], temperature=cfg["temperature"],
                            temperature_mode="constant", output_dimension=3,
                            max_iterations=cfg["steps"], distance="cosine",
                            conditional="time", time_offsets=cfg["time_offset"],
                            num_hidden_units=32, device=cfg["device"], verbose=False)
        w, c = time.perf_counter(), time.process_time()
        model.fit(X)
        w, c = time.perf_counter() - w, time.process_time() - c
        best = (w, c) if best is None else (min(best[0], w), min(best[1], c))
    np.save(sys.argv[3], model.transform(X))
    print(json.dumps({"wall": best[0], "cpu": best[1], "version": cebra.__version__}))
""")


def bench_cebra(X, latents, args, device):
    python = Path(args.cebra_python)
    if not python.exists():
        print(f"CEBRA: skipped ({python} not found; make it with `python -m venv "
              "/tmp/cebra-venv && /tmp/cebra-venv/bin/pip install torch==2.13.0 cebra`)")
        return None
    batch, T, lr, offset = 512, 0.5, 3e-3, 2
    epochs = args.cebra_epochs
    n_anchor = X.shape[0] - offset
    steps = epochs * int(np.ceil(n_anchor / batch))  # our steps for `epochs` epochs
    est_kwargs = dict(positive="time", time_offset=offset, window=5, temperature=T, lr=lr,
                      batch_size=batch, max_epochs=epochs, validation_fraction=0.0,
                      patience=None, device=device, random_state=SEED)
    best, est = (np.inf, np.inf), None
    for _ in range(args.repeats):
        est, w, c = timed(lambda: ContrastiveEmbedding(3, **est_kwargs).fit(X), device)
        best = (min(best[0], w), min(best[1], c))
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "X.npy", X)
        cfg = dict(batch_size=batch, lr=lr, temperature=T, steps=steps, time_offset=offset,
                   device=str(device), threads=torch.get_num_threads(), repeats=args.repeats)
        res = subprocess.run([str(python), "-c", CEBRA_SCRIPT, str(Path(tmp) / "X.npy"),
                              json.dumps(cfg), str(Path(tmp) / "emb.npy")],
                             capture_output=True, text=True, env={**os.environ,
                                                                  "PYTHONWARNINGS": "ignore"})
        if res.returncode != 0:
            print("CEBRA: failed to run:\n" + res.stderr[-2000:])
            return None
        timing = json.loads(res.stdout.strip().splitlines()[-1])
        emb_cebra = np.load(Path(tmp) / "emb.npy")
    emb_ours = est.transform(X)
    refs, refs_cebra = n_anchor * epochs, steps * batch  # ours: a smaller last batch
    ours_rate, cebra_rate = refs / best[0], refs_cebra / timing["wall"]
    print(f"\nCEBRA {timing['version']} vs ContrastiveEmbedding, {X.shape[0]} bins x "
          f"{X.shape[1]} units, {steps} steps of {batch} references (+{batch} positives, "
          f"+{batch} negatives)")
    print(f"  ours  {ours_rate:>10,.0f} references/s (cpu {refs / best[1]:>10,.0f})")
    print(f"  CEBRA {cebra_rate:>10,.0f} references/s "
          f"(cpu {refs_cebra / timing['cpu']:>10,.0f})")
    print(f"  speed ratio ours / CEBRA: wall {ours_rate / cebra_rate:.2f}x, "
          f"cpu {(refs / best[1]) / (refs_cebra / timing['cpu']):.2f}x")
    r2 = {name: LinearRegression().fit(e, latents).score(e, latents)
          for name, e in (("ours", emb_ours), ("CEBRA", emb_cebra))}
    print(f"  consistency(ours, CEBRA) = {consistency_score([emb_ours, emb_cebra]):.3f}; "
          f"R^2 to planted latents: ours {r2['ours']:.3f}, CEBRA {r2['CEBRA']:.3f}")
    return ours_rate / cebra_rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cebra-python", default=os.environ.get(
        "CEBRA_PYTHON", "/tmp/cebra-venv/bin/python"))
    parser.add_argument("--cebra-epochs", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    n_trials = 100 if args.quick else 400
    epochs = 2 if args.quick else 4
    args.cebra_epochs = args.cebra_epochs or (2 if args.quick else 5)
    X_np, latents = recording(n_trials)
    X = torch.from_numpy(X_np).to(device)
    n = X.shape[0]
    print(f"make_reaching: {n} bins x {X.shape[1]} units (40 ms, smoothed); device {device}, "
          f"{torch.get_num_threads()} threads; best of {args.repeats}")
    hidden, bs = (64,), 256
    common = dict(hidden_layer_sizes=hidden, max_epochs=epochs, batch_size=bs, lr=LR,
                  validation_fraction=0.0, patience=None, device=device, random_state=SEED)
    compare("Autoencoder (mse)",
            lambda: Autoencoder(4, activation="tanh", **common).fit(X),
            lambda: hand_autoencoder(X, hidden, 4, bs, epochs), n, epochs, args.repeats, device)
    counts = torch.from_numpy(np.round(X_np)).to(device)
    compare("VAE (poisson)",
            lambda: VAE(4, likelihood="poisson", activation="tanh", **common).fit(counts),
            lambda: hand_vae(counts, hidden, 4, bs, epochs), n, epochs, args.repeats, device)
    ckw = dict(positive="time", time_offset=2, window=5, temperature=0.5, lr=3e-3,
               batch_size=512, max_epochs=epochs, validation_fraction=0.0, patience=None,
               device=device, random_state=SEED)
    compare("ContrastiveEmbedding",
            lambda: ContrastiveEmbedding(3, **ckw).fit(X),
            lambda: hand_contrastive(X, 5, 2, 0.5, 512, epochs), n - 2, epochs,
            args.repeats, device)
    bench_cebra(X_np, latents, args, device)


if __name__ == "__main__":
    sys.exit(main())
