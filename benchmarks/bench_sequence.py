"""Training overhead of :class:`RNNDecoder` against a hand-written PyTorch loop.

Both train the same network (the decoder's LSTM or GRU and linear readout, built from
the same seed, so the same initial weights) on the same standardised data with the same
minibatches of trials (drawn from a generator seeded like the Trainer's), Adam with the
same settings (torch's fused kernel where supported), the same gradient-norm clipping,
and the same number of epochs; the decoder runs without a validation set or early
stopping (``validation_fraction=0, patience=None``) so both do the same optimisation
steps. The decoder's time includes everything ``fit`` does besides: input validation,
the padding mask, standardisation, the masked loss and the history. The final weights of
the two are asserted close, which shows they did the same work.

The hand loop is the minimal one: ``randperm``, slicing, forward, mean squared error,
backward, clipping, step. Both run with the same torch thread count (``--threads``, 1
by default: the decoder trains these small recurrent products one-threaded on the CPU,
see ``neuroml._parallel.threads_for``). Best of a few alternating repeats, wall clock and
process CPU time; the overhead target is <= 10 %.

Run with ``python benchmarks/bench_sequence.py`` (``--device cuda`` on a GPU, ``--quick``
for a short run).
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from _timing import interleaved

from neuroml.device import resolve_device, torch_seed
from neuroml.nn._sequence_base import MAX_GRAD_NORM, masked_moments
from neuroml.nn.recurrent import RNNDecoder, _RecurrentNet
from neuroml.training import fused_adam_supported

#: (n_trials, n_times, n_units, cell, hidden_size, batch_size, epochs)
CASES = [
    (200, 100, 60, "lstm", 64, 16, 10),
    (200, 100, 60, "gru", 64, 16, 10),
    (400, 50, 100, "lstm", 128, 32, 10),
]
QUICK = [(100, 50, 30, "lstm", 32, 16, 3)]
LR = 3e-3
SEED = 0


def make_data(n_trials: int, n_times: int, n_units: int):
    rng = np.random.default_rng(1)
    X = rng.poisson(1.0, size=(n_trials, n_times, n_units)).astype(np.float32)
    y = np.cumsum(X[..., :2] - 1.0, axis=1).astype(np.float32) * 0.1
    return X, y


def hand_loop(model, X, Y, batch_size: int, epochs: int) -> None:
    """randperm + slicing + forward / MSE / backward / clip / step, nothing else."""
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=LR, fused=fused_adam_supported(params))
    n = X.shape[0]
    lengths = torch.full((n,), X.shape[1], device=X.device)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(X.device)
        for start in range(0, n, batch_size):
            idx = perm[start: start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * ((model(X[idx], lengths[idx]) - Y[idx]) ** 2).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM, foreach=True)
            opt.step()
    model.eval()


def run_case(n_trials, n_times, n_units, cell, hidden, batch_size, epochs, device, repeats):
    X, y = make_data(n_trials, n_times, n_units)
    params = dict(hidden_size=hidden, batch_size=batch_size, max_epochs=epochs, lr=LR,
                  validation_fraction=0.0, patience=None, device=device, random_state=SEED)
    # the hand loop gets the data as the decoder standardises it
    Xt = torch.as_tensor(X, device=device)
    Yt = torch.as_tensor(y, device=device)
    mask = torch.ones(Xt.shape[:2], dtype=torch.bool, device=device)
    (xm, xs), (ym, ys) = masked_moments(Xt, mask), masked_moments(Yt, mask)
    Xs, Ys = (Xt - xm) / xs, (Yt - ym) / ys
    with torch_seed(SEED, device):
        init = _RecurrentNet(cell, n_units, hidden, 1, 2, False, 0.0, last=False).to(device)
    hand_model = {}

    def hand():
        hand_model["m"] = copy.deepcopy(init)
        hand_loop(hand_model["m"], Xs, Ys, batch_size, epochs)

    def decoder():
        return RNNDecoder(cell, **params).fit(X, y)

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    wall, cpu, results = interleaved({"hand": hand, "RNNDecoder": decoder}, repeats, sync,
                                     warmup=True, pause=0.3)
    for a, b in zip(hand_model["m"].parameters(), results["RNNDecoder"].module_.parameters()):
        # float32 rounding of the two loss reductions drifts apart over the steps
        torch.testing.assert_close(a, b, rtol=0, atol=5e-3)
    steps = epochs * -(-n_trials // batch_size)
    print(f"\n{n_trials} trials x {n_times} bins x {n_units} units, {cell.upper()} {hidden}, "
          f"batch {batch_size}, {epochs} epochs ({steps} steps) on {device}")
    for k in ("hand", "RNNDecoder"):
        print(f"  {k:10s} {wall[k]:7.3f} s wall   {cpu[k]:7.3f} s CPU   "
              f"{1e3 * cpu[k] / steps:6.2f} ms CPU per step")
    ow = 100 * (wall["RNNDecoder"] / wall["hand"] - 1)
    oc = 100 * (cpu["RNNDecoder"] / cpu["hand"] - 1)
    print(f"  RNNDecoder overhead: {ow:+.1f} % wall, {oc:+.1f} % CPU")
    return ow, oc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="one small case")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}")
    for case in QUICK if args.quick else CASES:
        run_case(*case, device=device, repeats=args.repeats)


if __name__ == "__main__":
    main()
