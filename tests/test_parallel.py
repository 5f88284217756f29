"""The CPU thread helpers the solvers and PCA share (neuroml/_parallel.py)."""

from __future__ import annotations

import multiprocessing as mp
import sys
import threading

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from neuroml import _parallel
from neuroml._parallel import available_threads, is_single, run_blocks, threads_for


def _blas_threads():
    return sorted((i["internal_api"], i["num_threads"]) for i in threadpool_info()
                  if i["user_api"] == "blas")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_run_blocks_order_isolation_and_restore(two_threads):
    blas = _blas_threads()
    main = threading.get_ident()

    def work(k):
        # each block: one torch thread, one-threaded BLAS, marked single, off the main thread
        assert torch.get_num_threads() == 1 and is_single()
        assert all(n == 1 for _, n in _blas_threads())
        return k * k, threading.get_ident()

    out = run_blocks(work, list(range(6)))
    assert [v for v, _ in out] == [0, 1, 4, 9, 16, 25]
    assert main not in {t for _, t in out}
    assert torch.get_num_threads() == 2 and not is_single() and _blas_threads() == blas


def test_run_blocks_error_propagates_and_restores(two_threads):
    def work(k):
        if k == 1:
            raise ValueError("block 1 failed")
        return k

    with pytest.raises(ValueError, match="block 1 failed"):
        run_blocks(work, [0, 1, 2])
    assert torch.get_num_threads() == 2 and not is_single()


def test_run_blocks_nested_runs_inline(two_threads):
    """run_blocks inside a block (the pool busy with the outer call) must not wait for
    the pool: the inner blocks run in the calling pool thread."""
    def inner(k):
        return threading.get_ident(), k

    def outer(k):
        return threading.get_ident(), run_blocks(inner, [k, k + 10])

    for ident, inner_out in run_blocks(outer, [1, 2]):
        assert [k for _, k in inner_out] in ([1, 11], [2, 12])
        assert {t for t, _ in inner_out} == {ident}


def test_threads_for_small_work_nests_and_restores(two_threads):
    cpu = torch.device("cpu")
    with threads_for(1e3, cpu):
        assert torch.get_num_threads() == 1 and is_single() and available_threads() == 2
        with threads_for(1e3, cpu):  # nested: no-op
            assert is_single() and available_threads() == 2
        assert is_single() and available_threads() == 2
    assert torch.get_num_threads() == 2 and not is_single() and available_threads() == 2
    with threads_for(1e9, cpu):  # large products keep torch's threads
        assert torch.get_num_threads() == 2 and not is_single()


def _child(queue):
    out = run_blocks(lambda k: float(np.sum(np.ones(k))), [1, 2, 3])
    queue.put(out)


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_pool_works_in_a_forked_child(two_threads):
    """A child forked after the pool ran must not wait for the parent's (absent) threads."""
    run_blocks(lambda k: k, [1, 2])  # the parent's pool exists and has threads
    assert _parallel._POOL is not None
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
        pytest.fail("run_blocks hung in a forked child")
    assert proc.exitcode == 0
    assert queue.get(timeout=5) == [1.0, 2.0, 3.0]


_FAULTS = """
import resource
from neuroml.rl.bandit import block_probabilities
from neuroml.rl.choice import QLearning
p = block_probabilities(100, block_length=25, n_agents=100, random_state=0)
sim = QLearning().simulate(100, p, params={"alpha": 0.3, "beta": 5.0}, random_state=1)
fit = lambda: QLearning(n_starts=4, device="cpu", random_state=0).fit(
    sim["choice"], sim["reward"], sim["subject"])
fit()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    fit()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(env_extra: dict) -> int:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("NEUROML_MALLOC", "GLIBC_TUNABLES")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or
                    __import__("platform").libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_keep_freed_memory_reuses_pages():
    # three QLearning fits of 100 subjects: with glibc's defaults every round of the
    # solver pages its temporaries in afresh (~30,000 faults on the development VM);
    # kept freed memory is paged in once, by the first fit (~500 faults after it)
    kept = _page_faults({})
    system = _page_faults({"NEUROML_MALLOC": "system"})
    if system < 5_000:  # this kernel or glibc already avoids them (huge pages, say)
        assert kept <= 2 * system + 1_000
        pytest.skip(f"only {system} page faults with glibc's defaults here")
    assert kept < system / 10


def test_keep_freed_memory_respects_the_environment(monkeypatch):
    monkeypatch.setenv("NEUROML_MALLOC", "system")
    assert _parallel.keep_freed_memory() is False
    monkeypatch.delenv("NEUROML_MALLOC")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert _parallel.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1048576")
    assert _parallel.keep_freed_memory() is False
