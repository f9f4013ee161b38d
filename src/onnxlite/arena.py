"""The CPU memory arena: large freed buffers stay mapped for the next run.

onnxruntime serves CPU tensors from an arena of its own. onnxlite's tensors are numpy arrays, and
numpy takes their memory from the C library's malloc. glibc maps each block over its mmap
threshold (128 KiB at first, adapting up to 32 MiB) afresh and unmaps it when freed, and returns
the heap's free top to the system, so a run faults in the pages of its large intermediates again
(SqueezeNet on the numpy provider: 750 page faults and 2.2 ms of system time per run).

With ``SessionOptions.enable_cpu_mem_arena`` (on by default, as in onnxruntime) the first session
asks glibc (``mallopt``) to serve blocks up to 64 MiB from its heap and to keep freed heap memory,
so the pages stay mapped from run to run, and to give every thread the one heap (glibc otherwise
gives threads heaps of their own, and each would keep its own freed blocks: the workers that
split large kernels filled theirs with patch matrices the main thread's heap already held room
for; Inception-v1 on the numpy provider 123 -> 117 MiB peak, DenseNet-121 121 -> 115, run times
alike). The setting is the process's: it holds for every later
session and stays after the sessions are gone (peak memory is unchanged; memory freed after the
peak is not handed back). With another C library, or where the environment sets glibc's
MALLOC_* tunables itself, nothing is changed.

Building a session (loading, folding and packing weights) frees much of what it allocated, in
holes the runs do not fill: a session over large weights hands those free pages back once, when
it is built (:func:`release_freed`; ResNet-50 on the numpy provider: 47 MiB less resident memory
from the first run on).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from typing import Any

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 1 << 30

_lock = threading.Lock()
_state: list[bool] = []  # [result] once tried


# glibc's own environment settings of the same knobs: a user's choice is left alone
_USER_VARS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_ARENA_MAX",
)


def _configure() -> bool:
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _USER_VARS):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl has no such mallopt options
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # one heap for all threads; threads that already have heaps of their own keep them
    mallopt(_M_ARENA_MAX, 1)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


# Models with less weight than this leave little to hand back, and the call costs 50-200 us.
RELEASE_MIN_BYTES = 4 << 20


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc's malloc_trim also releases pages inside the heap
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed(weight_bytes: int) -> bool:
    """Hand the C heap's free pages back to the system after building a session whose weights
    take ``weight_bytes``; whether glibc was asked to."""
    trim = _malloc_trim() if weight_bytes >= RELEASE_MIN_BYTES else None
    if trim is None:
        return False
    trim(0)
    return True


def keep_memory() -> bool:
    """Configure the C allocator to keep large blocks (once per process); whether it took."""
    if not _state:
        with _lock:
            if not _state:
                _state.append(_configure())
    return _state[0]
