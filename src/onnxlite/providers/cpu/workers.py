"""onnxlite's worker threads: the CPU provider's kernels split large work across them.

numpy releases the GIL inside BLAS and inside ufunc loops over large arrays, so Python threads
computing disjoint blocks of one result run in parallel. Idle workers sleep rather than spin,
which keeps a run graceful when other processes compete for the cores (numpy's own BLAS
threads spin; see :mod:`onnxlite.threads`). The worker count is per calling thread and set for
the duration of a run; 1 means every kernel runs on the calling thread alone.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# Element-wise work below this many elements per worker is not worth a hand-off (tens of us).
MIN_ELEMENTS_PER_WORKER = 1 << 16

_state = threading.local()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def workers() -> int:
    """Threads the current thread's kernels may use (1: no splitting)."""
    return getattr(_state, "workers", 1)


def set_workers(n: int) -> int:
    """Set this thread's worker count; returns the previous one."""
    prev = workers()
    _state.workers = max(1, int(n))
    return prev


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="onnxlite-worker")
            _pool_size = n
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def run_all(tasks: Sequence[Callable[[], Any]]) -> None:
    """Run the tasks concurrently: the first on this thread, the others on workers."""
    if len(tasks) == 1:
        tasks[0]()
        return
    pool = _executor(len(tasks) - 1)
    futures: list[Future[Any]] = [pool.submit(t) for t in tasks[1:]]
    try:
        tasks[0]()
    finally:
        for f in futures:
            f.result()


def split(total: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """``parts`` (or fewer) contiguous ranges covering [0, total), bounds at multiples of align."""
    step = -(-total // max(parts, 1))
    step = max(align, -(-step // align) * align)
    return [(s, min(s + step, total)) for s in range(0, total, step)]


def for_rows(rows: int, row_size: int, fn: Callable[[int, int], Any]) -> None:
    """``fn(r0, r1)`` over row ranges covering [0, rows), split across the workers when large."""
    n = min(workers(), rows, max(1, rows * row_size // MIN_ELEMENTS_PER_WORKER))
    if n <= 1:
        fn(0, rows)
        return
    run_all([functools.partial(fn, s, e) for s, e in split(rows, n)])
