"""intra_op_num_threads: how many threads a session's matrix products use during its runs.

During a run, numpy's BLAS is held at one thread and large products are split across
onnxlite's own workers (:mod:`onnxlite.providers.cpu.workers`), which sleep rather than spin while
idle: on a machine whose cores other processes also use, spinning BLAS threads make a 2-thread
GEMM several times slower than a 1-thread one. The BLAS setting is process-wide, so it is
restored after each run; sessions with different settings should not run concurrently.
"""

from __future__ import annotations

import functools
import os
from types import TracebackType
from typing import Any

from .providers.cpu import workers


@functools.lru_cache(maxsize=1)
def _blas_libs() -> tuple[Any, ...]:
    """threadpoolctl's controllers of the BLAS libraries numpy loaded (set_num_threads is cheap)."""
    try:
        from threadpoolctl import ThreadpoolController

        return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
    except Exception:  # an unknown BLAS: leave it alone
        return ()


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class RunThreads:
    """Context of one run: BLAS at one thread, products split over ``threads`` workers."""

    def __init__(self, threads: int) -> None:
        self.threads = threads if threads > 0 else usable_cores()
        self._saved: list[tuple[Any, int]] = []
        self._prev_workers = 1

    def __enter__(self) -> RunThreads:
        self._saved = []
        for lib in _blas_libs():
            n = lib.get_num_threads()
            if n != 1:
                lib.set_num_threads(1)
                self._saved.append((lib, n))
        self._prev_workers = workers.set_workers(self.threads)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        workers.set_workers(self._prev_workers)
        for lib, n in self._saved:
            lib.set_num_threads(n)
