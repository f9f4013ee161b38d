"""intra_op_num_threads: the number of threads numpy's BLAS uses during a session's runs."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_limiter(threads: int) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A context-manager factory limiting BLAS to ``threads`` threads (0: leave BLAS alone).

    BLAS thread counts are process-wide: the limit holds for the duration of each run and is
    restored after it, so sessions with different settings should not run concurrently.
    """
    if threads <= 0:
        return contextlib.nullcontext
    return functools.partial(_controller().limit, limits=threads, user_api="blas")
