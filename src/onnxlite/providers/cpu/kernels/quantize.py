"""QuantizeLinear, DequantizeLinear (per-tensor, per-axis, blocked) and DynamicQuantizeLinear."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ....types import np_dtype
from ..registry import kernel

_FLOAT8 = frozenset(("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"))


def _int_range(dt: np.dtype) -> tuple[int, int] | None:
    """The range of an integer type, int4/uint4/int2/uint2 included; None for floats."""
    try:
        info = ml_dtypes.iinfo(dt)
    except (ValueError, TypeError):
        return None
    return int(info.min), int(info.max)


def _broadcast_param(v: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int):
    """Scale or zero point laid out to broadcast against x (per-tensor, per-axis or blocked)."""
    v = np.asarray(v)
    if v.ndim == 0:
        return v
    if v.size == 1 and not block_size:
        return v.reshape(())
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"quantization axis {axis} is out of range for an input of rank {len(shape)}")
    ax = axis + len(shape) if axis < 0 else axis
    if not block_size:
        if v.ndim != 1:
            raise ValueError(f"per-axis quantization expects a 1-D scale/zero point, got shape {v.shape}")
        if v.size != shape[ax]:
            raise ValueError(
                f"per-axis quantization along axis {axis}: the scale/zero point has {v.size} values "
                f"for a dimension of {shape[ax]}"
            )
        dims = [1] * len(shape)
        dims[ax] = v.size
        return v.reshape(dims)
    if v.ndim != len(shape):
        raise ValueError(f"blocked quantization expects a scale of rank {len(shape)}, got shape {v.shape}")
    r = np.repeat(v, int(block_size), axis=ax)
    if r.shape[ax] != shape[ax]:
        r = r[(slice(None),) * ax + (slice(0, shape[ax]),)]
    if r.shape != tuple(shape):
        raise ValueError(
            f"blocked scale of shape {v.shape} with block_size {block_size} does not "
            f"cover input shape {tuple(shape)}"
        )
    return r


def _quantize(x, y_scale, y_zero_point, axis, saturate, block_size, output_dtype, precision):
    if y_zero_point is not None:
        dtype = np.asarray(y_zero_point).dtype
    elif output_dtype:
        dtype = np_dtype(int(output_dtype))
    else:
        dtype = np.dtype(np.uint8)
    scale = _broadcast_param(y_scale, x.shape, axis, block_size)
    if precision:
        pt = np_dtype(int(precision))
        q = x.astype(pt) / scale.astype(pt)
    else:
        q = np.asarray(x / scale)
    rng = _int_range(dtype)
    if rng is not None:
        q = np.asarray(np.rint(q.astype(np.float64)))  # 0-d inputs give numpy scalars: keep an array
        if y_zero_point is not None:
            zp = _broadcast_param(y_zero_point, x.shape, axis, block_size)
            q += zp.astype(np.float64)
        np.clip(q, rng[0], rng[1], out=q)
        return q.astype(np.int64).astype(dtype)
    if dtype.name in _FLOAT8:
        # float8: the zero point is zero by definition; saturate clips to the finite range
        q = q.astype(np.float32)
        if saturate:
            fmax = float(ml_dtypes.finfo(dtype).max)
            q = np.where(np.isinf(q), np.sign(q) * fmax, np.clip(q, -fmax, fmax))
        return q.astype(dtype)
    if dtype.kind == "V" or dtype.name.startswith("float"):
        # float4/float6: no inf encoding, ml_dtypes' cast saturates
        if y_zero_point is not None:
            zp = _broadcast_param(y_zero_point, x.shape, axis, block_size)
            q = q.astype(np.float32) + zp.astype(np.float32)
        return np.asarray(q).astype(np.float32).astype(dtype)
    raise ValueError(f"QuantizeLinear: unsupported output type {dtype}")


@kernel("QuantizeLinear", since=10)
def quantize_linear(
    x,
    y_scale,
    y_zero_point=None,
    *,
    axis=1,
    block_size=0,
    output_dtype=0,
    precision=0,
    saturate=1,
):
    return _quantize(x, y_scale, y_zero_point, axis, saturate, block_size, output_dtype, precision)


@kernel("DequantizeLinear", since=10)
def dequantize_linear(x, x_scale, x_zero_point=None, *, axis=1, block_size=0, output_dtype=0):
    scale = _broadcast_param(x_scale, x.shape, axis, block_size)
    out = np_dtype(int(output_dtype)) if output_dtype else np.asarray(x_scale).dtype
    # 8/16-bit values (and their differences) are exact in float32; wider ones go via float64
    is_int = _int_range(x.dtype) is not None
    wide = is_int and x.dtype.itemsize > 2
    ft = np.float64 if wide else np.float32
    dx = x.astype(ft)
    if x_zero_point is not None and is_int:
        zp = _broadcast_param(x_zero_point, x.shape, axis, block_size)
        dx -= zp.astype(ft)
    st = np.float64 if wide else np.result_type(np.float32, compute_scale(scale))
    y = dx * scale.astype(st)
    return y.astype(out, copy=False)


def compute_scale(scale: np.ndarray) -> np.dtype:
    """float32 for the 16-bit and 8-bit float scale types, which numpy cannot mix."""
    dt = scale.dtype
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


@kernel("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(x):
    """uint8 asymmetric quantization over x's range widened to include 0, in float32."""
    xf = x.astype(np.float32, copy=False)
    hi = np.float32(max(0.0, float(xf.max()))) if xf.size else np.float32(0)
    lo = np.float32(min(0.0, float(xf.min()))) if xf.size else np.float32(0)
    scale = np.float32((hi - lo) if hi != lo else np.float32(1.0)) / np.float32(255)
    zp = np.float32(np.rint(np.clip(np.float32(0) - lo / scale, 0, 255)))
    y = np.asarray(np.rint(xf / scale))
    y += zp
    np.clip(y, 0, 255, out=y)
    return (
        y.astype(np.uint8),
        np.array(scale, dtype=x.dtype),
        np.array(zp, dtype=np.uint8),
    )
