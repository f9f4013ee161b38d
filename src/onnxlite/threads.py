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
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .providers.cpu import workers

_OPENBLAS_NAMES = (
    ("openblas_get_num_threads", "openblas_set_num_threads"),
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
)


@functools.lru_cache(maxsize=1)
def _blas_libs() -> tuple[tuple[Callable[[], int], Callable[[int], Any]], ...]:
    """(get, set) thread-count functions of the BLAS libraries numpy loaded.

    OpenBLAS's own entry points where found (a run calls them twice: they must be cheap),
    threadpoolctl's controllers otherwise.
    """
    try:
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # an unknown BLAS: leave it alone
        return ()
    out = []
    for lib in libs:
        dynlib = getattr(lib, "dynlib", None)
        pair = None
        if getattr(lib, "internal_api", "") == "openblas" and getattr(lib, "threading_layer", "") != "openmp":
            for get_name, set_name in _OPENBLAS_NAMES:
                g, s = getattr(dynlib, get_name, None), getattr(dynlib, set_name, None)
                if g is not None and s is not None:
                    pair = (g, s)
                    break
        out.append(pair or (lib.get_num_threads, lib.set_num_threads))
    return tuple(out)


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
        for get, set_ in _blas_libs():
            n = get()
            if n != 1:
                set_(1)
                self._saved.append((set_, n))
        self._prev_workers = workers.set_workers(self.threads)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        workers.set_workers(self._prev_workers)
        for set_, n in self._saved:
            set_(n)
