"""Linear algebra: Gemm, MatMul, MatMulInteger, QLinearMatMul, Einsum.

Floating products go to BLAS in the input's precision (16-bit floats through float32); 8-bit
integer products run in float64, which is exact for sums of fewer than 2**37 products.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from ....types import type_shape
from .. import blas
from ..registry import kernel
from .conv import compute_dtype, requantize


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ct = np.result_type(compute_dtype(a.dtype), compute_dtype(b.dtype))
    out = np.result_type(a.dtype, b.dtype)
    return blas.matmul(a.astype(ct, copy=False), b.astype(ct, copy=False)).astype(out, copy=False)


@kernel("MatMul", since=1)
def matmul(a, b):
    return _matmul(a, b)


_F32 = np.dtype(np.float32)
_GEMM_ATTRS = frozenset({"alpha", "beta", "broadcast", "transA", "transB"})


def _add_into(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    """y + c, written into y (the caller's own fresh product) unless c broadcasts beyond it."""
    try:
        return np.add(y, c, out=y)
    except ValueError:
        return y + c


def gemm_fn(
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
    act: Callable[[np.ndarray], np.ndarray] | None = None,
    f32: bool = False,
) -> Callable[..., np.ndarray]:
    """Gemm with its attributes bound; float32 takes a short path (per-call cost matters for
    small layers), other types the general one. ``act`` may overwrite the product in place.
    ``f32``: the operands are statically known to be float32 (no dtype checks per call)."""
    alpha32, beta32 = np.float32(alpha), np.float32(beta)
    if f32 and alpha == 1.0 and beta == 1.0 and not transA:
        return _f32_gemm(bool(transB), act)

    def run(a, b, c=None):
        if f32 or (a.dtype == _F32 and b.dtype == _F32 and (c is None or c.dtype == _F32)):
            y = blas.matmul(a.T if transA else a, b.T if transB else b)
            if alpha != 1.0:
                y *= alpha32
            if c is not None and beta != 0:
                y = _add_into(y, c if beta == 1.0 else c * beta32)
        else:
            y = gemm(a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB)
        return y if act is None else act(y)

    return run


def _f32_gemm(trans_b: bool, act: Callable[[np.ndarray], np.ndarray] | None) -> Callable[..., np.ndarray]:
    """Gemm/FusedGemm on float32 operands with alpha = beta = 1 and A as given: the MLP-layer
    case, in as few Python steps as possible (a 64x64 layer costs about 3 us)."""
    relu = act is not None and getattr(act, "relu_in_place", False)
    mm, add, maximum = np.matmul, np.add, np.maximum
    limit = blas.MIN_SPLIT_MACS

    def run(a, b, c=None):
        bb = b.T if trans_b else b
        y = mm(a, bb) if a.size * bb.shape[-1] < limit else blas.matmul(a, bb)
        if c is not None:
            try:
                add(y, c, out=y)
            except ValueError:  # c broadcasts beyond the product (rejected by the checks before)
                y = y + c
        if relu:
            return maximum(y, 0, out=y)
        return y if act is None else act(y)

    return run


@kernel("Gemm", since=1, factory=True)
def gemm_kernel(node):
    unknown = sorted(set(node.attrs) - _GEMM_ATTRS)
    if unknown:
        raise ValueError(f"{node.describe()}: unsupported attribute(s) {unknown}")
    attrs = {k: v for k, v in node.attrs.items() if k != "broadcast"}
    return gemm_fn(**attrs, f32=f32_gemm(node))


def _elem(tp) -> int:
    return tp.tensor_type.elem_type if tp.HasField("tensor_type") else 0


def f32_gemm(node) -> bool:
    """Whether a Gemm node's inputs are all statically float32 (see gemm_fn)."""
    types = list(node.input_types[: len(node.inputs)])
    if len(types) < 2 or any(t is None or _elem(t) != onnx.TensorProto.FLOAT for t in types):
        return False
    a, b = type_shape(types[0]), type_shape(types[1])
    return a is not None and b is not None and len(a) == 2 and len(b) == 2


def gemm(a, b, c=None, *, alpha=1.0, beta=1.0, broadcast=0, transA=0, transB=0):
    """All versions: ``broadcast`` (v1/v6) only allowed what numpy broadcasting does anyway."""
    dt = a.dtype
    ct = compute_dtype(dt)
    aa = a.astype(ct, copy=False)
    bb = b.astype(ct, copy=False)
    y = blas.matmul(aa.T if transA else aa, bb.T if transB else bb)
    if ct.kind in "iu":
        # integer Gemm: scale in float64, truncate like onnxruntime's casts
        yf = y.astype(np.float64) * alpha
        if c is not None and beta != 0:
            yf = yf + c.astype(np.float64) * beta
        return yf.astype(dt)
    if alpha != 1.0:
        y *= ct.type(alpha)
    if c is not None and beta != 0:
        cc = c.astype(ct, copy=False)
        if beta != 1.0:
            cc = cc * ct.type(beta)
        if np.broadcast_shapes(cc.shape, y.shape) == y.shape:
            y += cc
        else:
            y = y + cc
    return y.astype(dt, copy=False)


# 8-bit operands shifted by their zero points lie in [-255, 255]: a dot product over 256 of them
# stays below 2**24 in magnitude, so float32 BLAS computes it exactly, whatever its order.
EXACT_F32_K = 256


def exact_int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for integer-valued float arrays with |values| <= 255, exactly, on float32 BLAS.

    numpy's integer matmul does not use BLAS (tens of times slower) and float64 BLAS runs at half
    float32's speed; the reduction axis is cut into chunks whose partial sums are exact in float32
    and the chunks are summed in float64.
    """
    a32 = a.astype(np.float32, copy=False)
    b32 = b.astype(np.float32, copy=False)
    k = a32.shape[-1]
    if k <= EXACT_F32_K:
        return np.matmul(a32, b32).astype(np.float64)  # callers add int32 biases exactly
    acc = np.matmul(a32[..., :EXACT_F32_K], b32[..., :EXACT_F32_K, :]).astype(np.float64)
    for k0 in range(EXACT_F32_K, k, EXACT_F32_K):
        acc += np.matmul(a32[..., k0 : k0 + EXACT_F32_K], b32[..., k0 : k0 + EXACT_F32_K, :])
    return acc


def _zero_shift(x: np.ndarray, zp, row_axis: bool) -> np.ndarray:
    """x - zero_point in float64; a 1-D per-row zero point of A is laid along the rows."""
    xf = x.astype(np.float64)
    if zp is None:
        return xf
    z = np.asarray(zp).astype(np.float64)
    if z.size == 1:
        xf -= float(z.reshape(()))
    elif row_axis and z.ndim == 1 and x.ndim >= 2:
        xf -= z[:, None]
    else:
        xf -= z
    return xf


@kernel("MatMulInteger", since=10)
def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    af = _zero_shift(a, a_zero_point, True)
    bf = _zero_shift(b, b_zero_point, False)
    return exact_int_matmul(af, bf).astype(np.int32)


def _scale(v, row_axis: bool, ndim: int):
    s = np.asarray(v)
    if row_axis and s.ndim == 1 and s.size > 1 and ndim >= 2:
        return s[:, None]
    return s


@kernel("QLinearMatMul", since=10)
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    af = _dequant_operand(a, a_zero_point, True)
    bf = _dequant_operand(b, b_zero_point, False)
    # float8 operands are not integers: only 8-bit integer ones take the float32 path
    acc = exact_int_matmul(af, bf) if a.dtype.kind in "iu" and b.dtype.kind in "iu" else np.matmul(af, bf)
    # the multiplier is formed in the scales' own precision, as onnxruntime does
    sa = _scale(a_scale, True, a.ndim)
    mult = (sa * np.asarray(b_scale) / np.asarray(y_scale)).astype(np.float64)
    zp = None if y_zero_point is None else np.asarray(y_zero_point)
    dtype = a.dtype if zp is None else zp.dtype
    zpf = None if zp is None else zp.astype(np.float64)
    return requantize(acc, mult, zpf, np.dtype(dtype))


def _dequant_operand(x, zp, row_axis):
    if x.dtype.kind in "iu":
        return _zero_shift(x, zp, row_axis)
    # float8 operands: their zero point is zero by definition
    return x.astype(np.float64)


@kernel("Einsum", since=12)
def einsum(*xs, equation=""):
    eq = equation.replace(" ", "")
    dt = np.result_type(*(x.dtype for x in xs))
    ct = compute_dtype(dt)
    ops = [x.astype(ct, copy=False) for x in xs]
    y = np.asarray(np.einsum(eq, *ops, optimize=len(ops) > 1))
    if any(np.may_share_memory(y, x) for x in xs):
        y = y.copy()  # transposes and diagonals come back as views of an input
    return y.astype(dt, copy=False)
