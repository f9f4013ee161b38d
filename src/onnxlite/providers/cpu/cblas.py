"""``cblas_sgemm`` of the BLAS numpy already loaded, called through ctypes.

numpy's ``matmul`` covers a product of two matrices; a convolution computed as one product per
kernel tap (:mod:`.kernels._direct`) needs what BLAS itself offers beyond that: accumulating
into the output (``beta = 1``) and operands that are windows of a larger buffer (a leading
dimension other than the row length), so that no patch matrix is copied. No compiler and no
new library: the entry point is looked up in numpy's own OpenBLAS (found by threadpoolctl).
Where it is not found (another BLAS, or an OpenBLAS whose symbols are named otherwise), or a
first product disagrees with numpy's, :func:`available` says so and callers keep their numpy
path.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

import numpy as np

_ROW_MAJOR, _NO_TRANS = 101, 111

# (symbol, integer width) candidates: numpy's wheels ship OpenBLAS built for 64-bit integers
# with a "scipy_" prefix and a "64_" suffix; older wheels and distributions use fewer decorations.
_SYMBOLS = (
    ("scipy_cblas_sgemm64_", ctypes.c_int64),
    ("cblas_sgemm64_", ctypes.c_int64),
    ("scipy_cblas_sgemm", ctypes.c_int),
    ("cblas_sgemm", ctypes.c_int),
)


def _find() -> Any | None:
    try:
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # threadpoolctl missing or confused: keep numpy's products
        return None
    # numpy's own first: another package's OpenBLAS (scipy's) may be loaded beside it
    for lib in sorted(libs, key=lambda lib: "numpy" not in str(getattr(lib, "filepath", ""))):
        if getattr(lib, "internal_api", "") != "openblas":
            continue
        dynlib = getattr(lib, "dynlib", None)
        for name, integer in _SYMBOLS:
            fn = getattr(dynlib, name, None)
            if fn is None:
                continue
            enum, f32, ptr, i = ctypes.c_int, ctypes.c_float, ctypes.c_void_p, integer
            # order, transposes; m, n, k; alpha, A, lda; B, ldb; beta, C, ldc
            fn.argtypes = [enum, enum, enum, i, i, i, f32, ptr, i, ptr, i, f32, ptr, i]
            fn.restype = None
            return fn
    return None


@functools.lru_cache(maxsize=1)
def _sgemm() -> Any | None:
    fn = _find()
    if fn is None:
        return None
    # one small product checked against numpy's: a symbol with an unexpected signature is not used
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    c = np.ones((3, 4), np.float32)
    args = (3, 4, 5, 1.0, a.ctypes.data, 5, b.ctypes.data, 4, 1.0, c.ctypes.data, 4)
    fn(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, *args)
    if not np.allclose(c, a @ b + 1, rtol=1e-5, atol=1e-5):
        return None
    return fn


def available() -> bool:
    """Whether :func:`sgemm` can be called."""
    return _sgemm() is not None


def sgemm(m: int, n: int, k: int, a: int, lda: int, b: int, ldb: int, beta: float, c: int, ldc: int) -> None:
    """C = A @ B + beta * C on float32 row-major matrices given by address and leading dimension:
    A is m x k, B is k x n, C is m x n. The caller keeps the buffers alive and in bounds."""
    fn = _sgemm()
    assert fn is not None, "cblas.sgemm called where cblas.available() is false"
    fn(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc)
