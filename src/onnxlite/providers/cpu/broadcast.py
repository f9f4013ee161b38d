"""Binary ufuncs where one operand repeats along the rows of the other, at contiguous speed.

numpy's iterator buffers such a loop when the row it repeats along is shorter than half its
buffer (8192 elements by default): a per-channel bias over 56 x 56 maps then runs 2.5-3x slower
than the same add with a scalar (38 against 14 us for 200,704 float32), and a bias row of 3,072
over 128 rows 60 against 38 us. With a 256-element buffer the loop runs row by row unbuffered
(15 us there). Rows under some 192 elements are faster buffered, and the setting costs about
1.6 us a call, so it is made only for large operands with rows in between.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_MIN_SIZE = 1 << 14  # elements of the larger operand
_ROWS = (192, 4096)  # row lengths [lo, hi) that run faster unbuffered
BUFSIZE = 256  # numpy's buffer for loops over repeated rows


def repeat_run(full: tuple[int, ...], small: tuple[int, ...]) -> int:
    """Elements of the innermost run of ``full`` along which ``small`` (broadcast to it) keeps
    one pattern: repeated (size 1) along all of it, or varying along all of it."""
    pad = (1,) * (len(full) - len(small)) + tuple(small)
    run, repeated = 1, None
    for f, s in zip(reversed(full), reversed(pad)):
        if f == 1:
            continue
        rep = s == 1
        if repeated is None:
            repeated = rep
        elif rep != repeated:
            break
        run *= f
    return run


def unbuffered(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ufunc(a, b) runs faster with numpy's buffer shrunk (see the module's docstring)."""
    big, small = (a, b) if a.size >= b.size else (b, a)
    return (
        big.size >= _MIN_SIZE
        and a.shape != b.shape
        and a.dtype == b.dtype
        and big.ndim >= small.ndim
        and _ROWS[0] <= repeat_run(big.shape, small.shape) < _ROWS[1]
    )


def apply(ufunc: Any, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``ufunc(a, b, out=out)`` for arrays, with numpy's buffer sized for repeated rows."""
    if not unbuffered(a, b):
        return ufunc(a, b, out=out)
    old = np.setbufsize(BUFSIZE)
    try:
        return ufunc(a, b, out=out)
    finally:
        np.setbufsize(old)
