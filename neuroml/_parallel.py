"""CPU parallelism shared by the solvers: a thread pool and one-threaded BLAS.

Work made of many small operations (a batched solver's iterations, a covariance
accumulated over row chunks) gains little from torch's or BLAS's own threads — each
operation pays for waking them, and OpenBLAS's threads spinning beside torch's OpenMP
threads slowed a large cross-validation 2.5x on the development machine. Such work
is split into independent blocks instead, each block running on one pool thread with
one-threaded BLAS; torch and NumPy release the GIL inside their operations, so the
blocks run on all cores at once.

Importing this module also lets glibc's malloc keep freed memory for reuse
(:func:`keep_freed_memory`): by default it hands every freed block above 128 KB back to
the system, so the next solve's temporaries fault their pages in again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import torch

__all__ = ["available_threads", "is_single", "keep_freed_memory", "mark_single",
           "one_blas_thread", "run_blocks", "threads_for"]

# per thread: ``outer``, torch's thread count before a caller lowered it to one;
# ``single``, whether this thread's work runs with one-threaded BLAS
_STATE = threading.local()
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_BLAS = None


def _reset_after_fork() -> None:
    # a forked child has none of the parent's pool threads (and maybe a lock another
    # parent thread held): start afresh, or the child's first solve would wait forever
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)

# glibc's mallopt parameters and the values set by keep_freed_memory
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# glibc's own ceilings for its dynamic thresholds (64-bit), which it reaches only after
# freeing a block that large: set from the start
_MMAP_THRESHOLD = 32 << 20  # blocks below 32 MB come from the heap, not a fresh mmap each
_TRIM_THRESHOLD = 64 << 20  # the heap keeps up to 64 MB free at its top for reuse
_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse; True if it was set.

    torch allocates every intermediate tensor afresh. glibc's defaults serve blocks
    above 128 KB by ``mmap`` (its dynamic threshold rises only to the largest block
    freed) and return the heap's free top beyond twice that threshold to the system,
    so the tensors of one solve are paged in again by the next: each page a fault. In a
    batched solver that is most of the time of a large element-wise operation (3x on
    the development VM for QLearning's likelihood derivatives; 15-25 % of a whole fit of
    97 human subjects). This sets blocks below 32 MB to come from the heap and lets the
    heap keep up to 64 MB free for reuse (per malloc arena): the ceilings glibc's own
    dynamic thresholds rise to once a block of 32 MB has been freed, so a solver of
    small tensors behaves as one of large tensors already does.

    Process-wide, as malloc is. Nothing is changed on other C libraries, when the
    environment sets ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
    ``MALLOC_TOP_PAD_`` or a ``glibc.malloc`` tunable in ``GLIBC_TUNABLES`` (the user's
    choice stands), or when ``NEUROML_MALLOC=system``; where glibc refuses the mmap
    threshold (a 32-bit build caps it at 16 MB) neither is set. Called once when this
    module is imported.
    """
    if (os.environ.get("NEUROML_MALLOC", "").lower() == "system"
            or any(k in os.environ for k in _MALLOC_ENV)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
            or not sys.platform.startswith("linux")):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


keep_freed_memory()


def available_threads() -> int:
    """torch's intra-op thread count, as it was before a caller lowered it to one."""
    return getattr(_STATE, "outer", None) or torch.get_num_threads()


def is_single() -> bool:
    """Whether the calling thread runs with one-threaded BLAS (see :func:`mark_single`)."""
    return getattr(_STATE, "single", False)


def mark_single(single: bool, outer: int | None = None) -> None:
    """Record for the calling thread that its BLAS runs one-threaded (and the thread
    count it had before, for :func:`available_threads`)."""
    _STATE.single, _STATE.outer = single, outer


def one_blas_thread() -> AbstractContextManager:
    """Limit NumPy's BLAS to one thread, as a context (process-wide, as BLAS is)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def run_blocks(fn, blocks: list) -> list:
    """``[fn(block) for block in blocks]``, the blocks in parallel pool threads.

    Each block runs with one torch thread and one-threaded BLAS (``is_single()`` is
    True inside); torch's thread count is restored afterwards. One pool serves every
    caller; concurrent callers take turns. Called from inside a block, the blocks run
    one after the other in that thread (the pool is busy with the outer call).
    """
    global _POOL
    if getattr(_STATE, "in_block", False):
        return [fn(block) for block in blocks]

    def job(block):
        mark_single(True)
        _STATE.in_block = True
        try:
            return fn(block)
        finally:
            mark_single(False)
            _STATE.in_block = False

    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                       thread_name_prefix="neuroml")
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with one_blas_thread():
                return list(_POOL.map(job, blocks))
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)


@contextlib.contextmanager
def threads_for(work: float, device: torch.device, *, blas: bool = True):
    """Run CPU work with one torch thread and one-threaded BLAS unless its products are large.

    ``work`` is the multiply-adds of one matrix product of the work. Below about 1e8
    the threads' gain on the products is small, while every one of the many small
    element-wise and reduction operations pays for waking the other threads — on a
    machine whose cores are busy with other processes, milliseconds per operation
    (measured on a shared 2-core machine: an inner product of 60,000 numbers took 12 ms
    with 2 threads and 27 us with one). Inside, :func:`is_single` is True (the solvers
    then take NumPy's BLAS for their small products) and :func:`available_threads`
    still reports the caller's thread count (the solvers use it for blocks of groups,
    one per thread). Nested calls are no-ops. ``blas=False``: for work that calls no BLAS
    through NumPy, whose limit (threadpoolctl, about 0.1 ms a call) is then left alone;
    NumPy's BLAS keeps its threads inside (a nested call does not limit them either).
    """
    if device.type != "cpu" or work >= 1e8 or is_single():
        yield
        return
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    mark_single(True, before)
    try:
        with one_blas_thread() if blas else contextlib.nullcontext():
            yield
    finally:
        mark_single(False)
        if before != 1:
            torch.set_num_threads(before)
