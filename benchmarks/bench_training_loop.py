"""Training-loop overhead: :class:`neuroml.training.Trainer` against a hand-written loop.

The same MLP (same initial weights), the same data, batch size, epochs and Adam
settings (torch's fused Adam where it is supported, for both), no validation set for
either. The hand loop is the minimal PyTorch loop
(random permutation, slicing, forward / backward / step) and draws its permutations
from a generator seeded like the Trainer's, so both see the minibatches in the same
order: the final weights are asserted equal (identical on the CPU), which shows the two
loops do the same work. The best of a few alternating repeats is reported as samples
per second (wall clock and process CPU time, the latter less disturbed by other
programs on a busy machine), with the Trainer's overhead in percent (target <= 10 %).

Run with ``python benchmarks/bench_training_loop.py`` (``--device cuda`` on a GPU,
``--quick`` for a short run, ``--threads N`` to set torch's CPU threads).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from neuroml.device import resolve_device
from neuroml.training import Trainer, fused_adam_supported

#: (n_samples, n_features, hidden layers, batch size, epochs)
CASES = [
    (100_000, 100, (256, 256), 256, 5),
    (100_000, 100, (64,), 256, 5),
    (20_000, 20, (32,), 64, 5),
]
QUICK = [(20_000, 100, (256, 256), 256, 2), (20_000, 20, (32,), 64, 2)]
LR = 1e-3
SEED = 0


def make_model(n_features: int, hidden: tuple[int, ...]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    sizes = [n_features, *hidden]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(sizes[-1], 1))
    return torch.nn.Sequential(*layers)


def mse(model: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(xb), yb)


def hand_loop(model, X, y, batch_size: int, epochs: int) -> None:
    """randperm + slicing + forward/backward/step, nothing else."""
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=LR, fused=fused_adam_supported(params))  # as the Trainer
    n = X.shape[0]
    gen = torch.Generator().manual_seed(SEED)
    order = torch.randperm(n, generator=gen).to(X.device)  # the Trainer's (empty) split
    model.train()
    for _ in range(epochs):
        perm = order[torch.randperm(n, generator=gen).to(X.device)]
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = mse(model, X[idx], y[idx])
            loss.backward()
            opt.step()
    model.eval()


def trainer_loop(model, X, y, batch_size: int, epochs: int) -> None:
    Trainer(model, mse, max_epochs=epochs, batch_size=batch_size, lr=LR,
            validation_fraction=0.0, patience=None, seed=SEED).fit(X, y)


def timed(fn, device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    w, c = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - w, time.process_time() - c


def run_case(n, p, hidden, batch_size, epochs, device, repeats):
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(n, p, generator=gen).to(device)
    y = (torch.sin(X[:, :1] * 2) + 0.1 * X[:, 1:2] ** 2).to(device)
    torch.manual_seed(SEED)
    init = make_model(p, hidden).to(device)
    results = {"hand": [], "trainer": []}
    finals = {}
    # warm-up (allocator, kernels) on a slice, then alternate the timed runs
    for _name, fn in (("hand", hand_loop), ("trainer", trainer_loop)):
        fn(copy.deepcopy(init), X[:2048], y[:2048], batch_size, 1)
    for _ in range(repeats):
        for name, fn in (("hand", hand_loop), ("trainer", trainer_loop)):
            model = copy.deepcopy(init)
            results[name].append(timed(lambda f=fn, m=model: f(m, X, y, batch_size, epochs),
                                       device))
            finals[name] = model
    for a, b in zip(finals["hand"].parameters(), finals["trainer"].parameters()):
        if device.type == "cpu":
            assert torch.equal(a, b), "Trainer and hand loop did different work"
        else:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    samples = n * epochs
    wall = {k: min(t[0] for t in v) for k, v in results.items()}
    cpu = {k: min(t[1] for t in v) for k, v in results.items()}
    print(f"\n{n} x {p}, MLP {hidden}, batch {batch_size}, {epochs} epochs "
          f"({steps} steps) on {device}")
    for k in ("hand", "trainer"):
        print(f"  {k:8s} {samples / wall[k]:12,.0f} samples/s wall ({wall[k]:.3f} s)   "
              f"{samples / cpu[k]:12,.0f} samples/s CPU ({cpu[k]:.3f} s)")
    ow = 100 * (wall["trainer"] / wall["hand"] - 1)
    oc = 100 * (cpu["trainer"] / cpu["hand"] - 1)
    print(f"  Trainer overhead: {ow:+.1f} % wall, {oc:+.1f} % CPU "
          f"({1e6 * (wall['trainer'] - wall['hand']) / steps:+.1f} us per step)")
    return ow, oc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 epochs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}")
    for case in QUICK if args.quick else CASES:
        run_case(*case, device=device, repeats=args.repeats)


if __name__ == "__main__":
    main()
