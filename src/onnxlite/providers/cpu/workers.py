"""onnxlite's worker threads: the CPU provider's kernels split large work across them.

numpy releases the GIL inside BLAS and inside ufunc loops over large arrays, so Python threads
computing disjoint blocks of one result run in parallel. Idle workers sleep rather than spin,
which keeps a run graceful when other processes compete for the cores (numpy's own BLAS
threads spin; see :mod:`onnxlite.threads`). The worker count is per calling thread and set for
the duration of a run; 1 means every kernel runs on the calling thread alone.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

# Element-wise work below this many elements per worker is not worth a hand-off (tens of us).
MIN_ELEMENTS_PER_WORKER = 1 << 16

_state = threading.local()
_pool_lock = threading.Lock()
# Tasks for the workers, each with the queue its caller waits on for the outcome. A bare queue
# per direction: concurrent.futures' executor and futures took 60-70 us a hand-off on a 2-core
# virtual machine (several locks, each a chance for the two threads to trade the interpreter
# lock), against some 5 us for two queue operations.
_tasks: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue[BaseException | None]]] = (
    queue.SimpleQueue()
)
_threads: list[threading.Thread] = []


def workers() -> int:
    """Threads the current thread's kernels may use (1: no splitting)."""
    return getattr(_state, "workers", 1)


def set_workers(n: int) -> int:
    """Set this thread's worker count; returns the previous one."""
    prev = workers()
    _state.workers = max(1, int(n))
    return prev


def _serve(tasks: queue.SimpleQueue[Any]) -> None:
    while True:
        task, done = tasks.get()
        try:
            task()
        except BaseException as e:  # handed to the caller, which raises it
            done.put(e)
        else:
            done.put(None)
        del task, done  # the task's arrays are not kept alive while idle


def _ensure(n: int) -> None:
    """At least ``n`` worker threads are serving ``_tasks``."""
    if len(_threads) >= n:
        return
    with _pool_lock:
        while len(_threads) < n:
            t = threading.Thread(
                target=_serve, args=(_tasks,), name=f"onnxlite-worker-{len(_threads)}", daemon=True
            )
            t.start()
            _threads.append(t)


def _after_fork() -> None:
    # a forked child has none of its parent's threads: start afresh
    global _tasks, _pool_lock
    _tasks = queue.SimpleQueue()
    _pool_lock = threading.Lock()
    _threads.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def run_all(tasks: Sequence[Callable[[], Any]]) -> None:
    """Run the tasks concurrently: the first on this thread, the others on workers; re-raises
    the first failure once every task has ended (they may share buffers)."""
    if len(tasks) == 1:
        tasks[0]()
        return
    _ensure(len(tasks) - 1)
    done: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
    for t in tasks[1:]:
        _tasks.put((t, done))
    error: BaseException | None = None
    try:
        tasks[0]()
    except BaseException as e:
        error = e
    for _ in tasks[1:]:
        failed = done.get()
        if error is None:
            error = failed
    if error is not None:
        raise error


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
