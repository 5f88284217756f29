"""Timing shared by the benchmark scripts: the libraries take turns, best time wins."""

from __future__ import annotations

import time

import numpy as np


def interleaved(fns: dict, repeats: int, sync=None, *, warmup: bool = False,
                pause: float = 0.0) -> tuple[dict, dict, dict]:
    """Best wall time and best process CPU time of each function over ``repeats``
    rounds, and the last results.

    Each round runs every function once, in turn, so a change in machine load during
    the run affects all of them alike. On a shared machine the wall time of a run
    depends on the other processes; with one thread the CPU time measures the work
    itself.

    Parameters
    ----------
    fns : dict of name -> zero-argument callable
    repeats : int
    sync : callable, optional
        Called before and after each run (``torch.cuda.synchronize`` on a GPU).
    warmup : bool, default=False
        Call every function once, untimed, first.
    pause : float, default=0.0
        Seconds to sleep before each timed run (on the 2-core development machine a run
        started right after the other library's was 10-25 % slower than one started
        after 0.3 s, whichever library ran second).
    """
    results = {name: fn() for name, fn in fns.items()} if warmup else {}
    best, cpu = dict.fromkeys(fns, np.inf), dict.fromkeys(fns, np.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            results[name] = None
            time.sleep(pause)
            if sync:
                sync()
            t0, c0 = time.perf_counter(), time.process_time()
            results[name] = fn()
            if sync:
                sync()
            best[name] = min(best[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    return best, cpu, results
