"""Cast, CastLike and BitCast over every ONNX element type (ml_dtypes for the ones numpy lacks)."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
from onnx import TensorProto

from ....types import np_dtype, onnx_type
from ..registry import kernel

_OBJ = np.dtype(object)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_BOOL = np.dtype(np.bool_)

# Float 8 types whose conversion obeys `saturate` by clamping to the finite range first.
_F8_SAT = {
    np.dtype(t): float(ml_dtypes.finfo(t).max)
    for t in (
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float8_e5m2fnuz,
    )
}
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu) if hasattr(ml_dtypes, "float8_e8m0fnu") else None

# ONNX bit widths where they differ from numpy's storage (sub-byte types use one byte each).
_BITS: dict[np.dtype, int] = {}
for _name, _bits in (("int4", 4), ("uint4", 4), ("float4_e2m1fn", 4), ("int2", 2), ("uint2", 2)):
    if hasattr(ml_dtypes, _name):
        _BITS[np.dtype(getattr(ml_dtypes, _name))] = _bits


def _is_str(dt: np.dtype) -> bool:
    return dt == _OBJ or dt.kind in "US"


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """float -> float8e8m0 (a biased power-of-two exponent) with the spec's rounding modes."""
    bits = np.ascontiguousarray(x, dtype=_F32).view(np.uint32)
    exp = ((bits >> 23) & 0xFF).astype(np.uint16)
    frac = bits & 0x7FFFFF
    special = exp == 0xFF
    if round_mode == "up":
        up = frac != 0
    elif round_mode == "down":
        up = np.zeros(exp.shape, dtype=np.bool_)
    elif round_mode == "nearest":
        g = (bits & 0x400000) != 0
        rs = (bits & 0x3FFFFF) != 0
        up = g & (rs | (exp > 0))
    else:
        raise ValueError(f"Cast: unsupported round_mode {round_mode!r}")
    up &= ~special
    if saturate:
        up &= exp != 0xFE
    exp = exp + up
    # Inf saturates to the largest exponent; NaN (and Inf without saturation) stays NaN (0xFF).
    if saturate:
        exp = np.where(special & (frac == 0), 0xFE, exp)
    out = np.minimum(exp, 0xFF).astype(np.uint8)
    return out.view(_E8M0)


def _format(x: np.ndarray) -> np.ndarray:
    """Numbers -> strings as onnxruntime writes them: '%.8g', NaN, INF, -INF, bools as 1/0."""
    src = x.dtype
    if src == _BOOL:
        out = np.where(x, "1", "0")
    elif src.kind in "iu" or (src in _BITS and "int" in src.name):
        out = x.astype(np.int64 if src.kind != "u" else np.uint64).astype(np.str_)
    elif src.kind == "c":
        out = x.astype(np.str_)
    else:
        f = x.astype(_F64)
        out = np.char.mod("%.8g", f)
        out[np.isnan(f)] = "NaN"
        out[np.isposinf(f)] = "INF"
        out[np.isneginf(f)] = "-INF"
    return out.astype(_OBJ)


def _parse_strings(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Strings -> numbers: plain and scientific notation, INF/+INF/-INF/NaN in any case."""
    flat = np.asarray(x, dtype=_OBJ)
    if dt.kind in "iu":
        try:
            return flat.astype(dt)
        except (ValueError, OverflowError):
            pass  # "2.5" -> int goes through a float
    vals = flat.astype(_F64)
    if dt == _BOOL:
        return vals != 0
    return vals


def cast_array(x: Any, dt: np.dtype, saturate: bool = True, round_mode: str = "up") -> np.ndarray:
    """``x`` converted to numpy dtype ``dt`` with ONNX Cast semantics."""
    x = np.asarray(x)
    src = x.dtype
    if src == dt:
        return x
    if dt == _OBJ:
        return x.astype(_OBJ) if _is_str(src) else _format(x)
    if _is_str(src):
        x = _parse_strings(x, dt)
        if x.dtype == dt:
            return x
        src = x.dtype
    if _E8M0 is not None and dt == _E8M0:
        return _to_e8m0(x, saturate, round_mode)
    fmax = _F8_SAT.get(dt)
    if fmax is not None and saturate:
        if src not in (_F32, _F64):
            # Exact widening: float16/bfloat16/ints (int64 through double) keep their value.
            x = x.astype(_F64 if src.kind in "iu" and src.itemsize > 2 else _F32)
        x = np.clip(x, -fmax, fmax)
    try:
        return x.astype(dt)
    except TypeError:
        # ml_dtypes lacks some direct casts (int4 -> uint2, e8m0 -> int4): go through a wide type.
        wide = np.int64 if src.kind in "iub" or "int" in src.name else _F32
        return x.astype(wide).astype(dt)


def _dtype_of(to: Any) -> np.dtype:
    if isinstance(to, str):  # Cast-1 names the type: to="FLOAT"
        to = getattr(TensorProto, to.upper())
    return np_dtype(int(to))


@kernel("Cast", since=1, factory=True)
def cast_factory(node):
    dt = _dtype_of(node.attrs["to"])
    saturate = bool(node.attrs.get("saturate", 1))
    round_mode = node.attrs.get("round_mode", "up")

    def cast(input):
        return cast_array(input, dt, saturate, round_mode)

    return cast


@kernel("CastLike", since=15)
def cast_like(input, target_type, *, saturate=1, round_mode="up"):
    dt = target_type.dtype
    if dt.kind in "US":
        dt = _OBJ
    return cast_array(input, dt, bool(saturate), round_mode)


@kernel("BitCast", since=26, factory=True)
def bitcast_factory(node):
    dt = np_dtype(int(node.attrs["to"]))
    if dt == _OBJ:
        raise ValueError("BitCast to STRING is not supported")
    dbits = _BITS.get(dt, dt.itemsize * 8)

    def bitcast(input):
        src = input.dtype
        if _is_str(src):
            raise ValueError("BitCast from STRING is not supported")
        if _BITS.get(src, src.itemsize * 8) != dbits:
            raise ValueError(
                f"BitCast needs equal bit widths: {src} -> {dt} ({onnx_type(src)} -> {dbits} bits)"
            )
        return input.view(dt)

    return bitcast
