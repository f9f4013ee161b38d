"""Scale / zero-point arithmetic (onnxruntime's formulas) and weight quantization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import QuantType, qrange

FLOAT8_E4M3_MAX = 448.0


@dataclass(frozen=True)
class QParams:
    """Quantization parameters of one tensor: scale and zero point (scalars or 1-D per axis)."""

    scale: np.ndarray
    zero_point: np.ndarray
    qtype: QuantType
    axis: int | None = None


def compute_scale_zp(
    rmin: np.ndarray | float,
    rmax: np.ndarray | float,
    qtype: QuantType,
    *,
    symmetric: bool = False,
    reduce_range: bool = False,
    min_real_range: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale (float32) and zero point (qtype) for the real range [rmin, rmax], widened to hold 0.

    Symmetric: zero point 0 for signed types, the middle (128) for unsigned ones.
    Asymmetric: zp = round(qmin - rmin / scale).
    """
    rmin = np.minimum(np.asarray(rmin, dtype=np.float64), 0.0)
    rmax = np.maximum(np.asarray(rmax, dtype=np.float64), 0.0)
    if min_real_range is not None:
        rmax = np.maximum(rmax, rmin + min_real_range)
    if qtype.is_float8:
        amax = np.maximum(np.abs(rmin), np.abs(rmax))
        scale = np.where(amax > 0, amax / FLOAT8_E4M3_MAX, 1.0).astype(np.float32)
        return scale, np.zeros(scale.shape, dtype=qtype.np_dtype)
    qmin, qmax = qrange(qtype, reduce_range=reduce_range, symmetric=symmetric)
    if symmetric:
        amax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -amax, amax
    span = rmax - rmin
    scale = np.where(span > 0, span / (qmax - qmin), 1.0)
    if symmetric:
        zp = np.full(scale.shape, np.round((qmin + qmax) / 2.0))
    else:
        zp = np.clip(np.round(qmin - rmin / scale), qmin, qmax)
    return scale.astype(np.float32), zp.astype(qtype.np_dtype)


def quantize_array(
    x: np.ndarray, scale: np.ndarray, zp: np.ndarray, qtype: QuantType, axis: int | None = None
) -> np.ndarray:
    """Round-half-to-even quantization as QuantizeLinear does (per tensor or along ``axis``)."""
    s = np.asarray(scale, dtype=np.float32)
    z = np.asarray(zp)
    if axis is not None and s.ndim == 1:
        shape = [1] * x.ndim
        shape[axis] = s.size
        s = s.reshape(shape)
        z = z.reshape(shape)
    if qtype.is_float8:
        return (x.astype(np.float32) / s).astype(qtype.np_dtype)
    qmin, qmax = qrange(qtype)
    q = np.rint(x.astype(np.float32) / s) + z.astype(np.float32)
    return np.clip(q, qmin, qmax).astype(qtype.np_dtype)


def quantize_weight(
    w: np.ndarray,
    qtype: QuantType,
    *,
    axis: int | None,
    symmetric: bool,
    reduce_range: bool = False,
) -> tuple[np.ndarray, QParams]:
    """Quantize a constant weight per tensor (axis None) or per channel along ``axis``."""
    w = np.asarray(w, dtype=np.float32)
    if axis is None:
        rmin, rmax = (w.min(), w.max()) if w.size else (0.0, 0.0)
    else:
        ax = axis % w.ndim
        red = tuple(i for i in range(w.ndim) if i != ax)
        rmin, rmax = w.min(axis=red), w.max(axis=red)
    scale, zp = compute_scale_zp(rmin, rmax, qtype, symmetric=symmetric, reduce_range=reduce_range)
    ax_ = None if axis is None else axis % w.ndim
    q = quantize_array(w, scale, zp, qtype, ax_)
    return q, QParams(scale, zp, qtype, ax_)


def quantize_bias(
    b: np.ndarray, input_scale: np.ndarray, weight_scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """int32 bias with scale input_scale * weight_scale (per tensor or per output channel)."""
    s = np.asarray(input_scale, dtype=np.float64) * np.asarray(weight_scale, dtype=np.float64)
    s = np.where(s > 0, s, 1.0)
    q = np.clip(np.rint(np.asarray(b, dtype=np.float64) / s), -(2**31), 2**31 - 1).astype(np.int32)
    return q, s.astype(np.float32)
