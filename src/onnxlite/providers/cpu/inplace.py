"""In-place variants of element-wise kernels, for values nothing else can see.

A value qualifies when a CPU kernel that always returns a newly allocated array produced it
(FRESH_OPS), the node about to read it is its only reader, and it is not a graph output: then no
other value can alias its buffer, and the element-wise node may write its result there instead of
allocating (and filling) a new array. The compiler decides this once per plan (see
:func:`onnxlite.compile.compile_graph`); at run time the variants fall back to the allocating
kernel whenever the result would not fit the buffer (broadcasting to a larger shape, another dtype).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import broadcast

# CPU kernels whose outputs are always fresh arrays, never views of their inputs or of cached
# values; the in-place variants below keep that property (they return the buffer they own).
FRESH_OPS = frozenset(
    {
        ("", "Conv"),
        ("com.microsoft", "FusedConv"),
        ("", "BatchNormalization"),
        ("", "MatMul"),
        ("", "Gemm"),
        ("com.microsoft", "FusedGemm"),
        ("", "Relu"),
        ("", "Add"),
        ("", "Sub"),
        ("", "Mul"),
    }
)


# numpy's maximum against a scalar (or any repeated operand) runs about 2.5x slower than against
# a contiguous array of the same size (36 against 15 us for 193,600 float32 in cache), so large
# Relus read a block of zeros small enough to stay in L1, repeated over the rows of a 2-D view.
# (A zero-filled array as large as x, all of it the kernel's shared zero page, was slower than the
# scalar from some 400,000 elements on: 212 against 154 us at 788,544, one page walk per 4 KiB.)
_ZERO_ROW = 8192
_ZEROS: dict[np.dtype, np.ndarray] = {}
_ZEROS_MIN = 1 << 12  # below this size the scalar form is as fast


def _zero_row(dtype: np.dtype) -> np.ndarray:
    z = _ZEROS.get(dtype)
    if z is None:
        z = np.zeros(_ZERO_ROW, dtype)
        z.flags.writeable = False
        _ZEROS[dtype] = z
    return z


def relu_to(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """max(x, 0) of a float array into ``out`` (same shape; may be ``x`` itself)."""
    n = x.size
    if n < _ZEROS_MIN or not (x.flags.c_contiguous and out.flags.c_contiguous):
        return np.maximum(x, 0, out=out)
    z = _zero_row(x.dtype)
    xf, of = x.reshape(-1), out.reshape(-1)
    whole = n - n % _ZERO_ROW
    if whole:
        np.maximum(xf[:whole].reshape(-1, _ZERO_ROW), z, out=of[:whole].reshape(-1, _ZERO_ROW))
    if whole < n:
        np.maximum(xf[whole:], z[: n - whole], out=of[whole:])
    return out


def relu_into(x: np.ndarray) -> np.ndarray:
    """Relu of a float array, written into it."""
    return relu_to(x, x)


_UNARY: dict[str, Callable[[np.ndarray], Any]] = {"Relu": relu_into}
_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}


def _unary(ufunc_inplace: Callable[[np.ndarray], Any], fallback: Callable[..., Any]) -> Callable[..., Any]:
    def run(x):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.flags.writeable:
            return ufunc_inplace(x)
        return fallback(x)

    return run


def _binary(ufunc: Any, pos: int, fallback: Callable[..., Any]) -> Callable[..., Any]:
    def run(a, b):
        t = b if pos else a
        ok = isinstance(t, np.ndarray) and t.ndim and t.dtype.kind == "f" and t.flags.writeable
        if ok and a.dtype == b.dtype:
            try:
                return broadcast.apply(ufunc, a, b, t)
            except ValueError:  # the result broadcasts beyond the buffer
                pass
        return fallback(a, b)

    return run


def where_by_masked_copy(c: Any, x: Any, y: Any) -> bool:
    """Whether Where(c, x, y) may be a masked copy (np.copyto with where=): numeric arrays of one
    dtype and a bool condition."""
    return (
        isinstance(x, np.ndarray)
        and isinstance(y, np.ndarray)
        and isinstance(c, np.ndarray)
        and x.dtype == y.dtype
        and x.dtype.kind in "biufc"
        and c.dtype == np.bool_
    )


def _where_into_y(fallback: Callable[..., Any]) -> Callable[..., Any]:
    """Where(c, x, y) written into y where y has the result's shape and dtype."""

    def run(c, x, y):
        if (
            where_by_masked_copy(c, x, y)
            and y.flags.writeable
            and np.broadcast_shapes(c.shape, x.shape, y.shape) == y.shape
        ):
            np.copyto(y, x, where=c)
            return y
        return fallback(c, x, y)

    return run


def inplace_variant(
    op_type: str, domain: str, attrs: dict[str, Any], owned: tuple[bool, ...], fn: Callable[..., Any]
) -> Callable[..., Any] | None:
    """A kernel writing into an input it may overwrite (``owned[i]``), or None.

    ``fn`` is the node's ordinary kernel, used whenever the in-place write does not apply.
    """
    if domain not in ("", "ai.onnx") or attrs:
        return None
    if op_type in _UNARY and owned[:1] == (True,):
        return _unary(_UNARY[op_type], fn)
    if op_type == "Where" and len(owned) == 3 and owned[2]:
        return _where_into_y(fn)
    if op_type in _BINARY and len(owned) == 2:
        for pos in (0, 1):
            if owned[pos]:
                return _binary(_BINARY[op_type], pos, fn)
    return None
