"""Activation kernels: Relu family, Sigmoid family, Elu family, Gelu, Softplus..., and
Softmax / LogSoftmax / Hardmax.

float16 and bfloat16 inputs are computed in float32 and rounded back once (ml_dtypes' bfloat16
also promotes to float32 against Python floats). Temporaries are written in place (``out=``):
these kernels run on whole activation tensors.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from ..inplace import relu_to
from ..registry import kernel
from ..workers import for_rows
from .elementwise import erf

_F32 = np.dtype(np.float32)
_BF16 = np.dtype(ml_dtypes.bfloat16)
_LOW_FLOATS = frozenset({np.dtype(np.float16), _BF16})


def _up(x: np.ndarray) -> np.ndarray:
    """The array to compute with: float32 for the 16-bit floats, else ``x`` itself."""
    return x.astype(_F32) if x.dtype in _LOW_FLOATS else x


def _down(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return y if y.dtype == dtype else y.astype(dtype)


def _new(x: np.ndarray) -> np.ndarray:
    return np.empty(x.shape, x.dtype)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-x)) is accurate in floating point at both ends: exp(-x) overflows to inf only
    # where the true result is below the smallest normal, and 1 / inf gives the right limit 0.
    y = np.negative(x, out=_new(x))
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


# --- Relu family ---------------------------------------------------------------------------------


@kernel("Relu", since=1)
def relu(x, *, consumed_inputs=None):
    if x.dtype.kind == "f":
        return relu_to(x, np.empty_like(x, order="C"))
    return np.maximum(x, 0)


@kernel("LeakyRelu", since=1)
def leaky_relu(x, *, alpha=0.01, consumed_inputs=None):
    xf = _up(x)
    y = np.multiply(xf, alpha, out=_new(xf))
    if 0.0 <= alpha <= 1.0:
        np.maximum(xf, y, out=y)  # max(x, alpha*x) picks x for x >= 0, alpha*x below
    else:
        y = np.where(xf < 0, y, xf)
    return _down(y, x.dtype)


@kernel("PRelu", since=1)
def prelu_legacy(x, slope, *, consumed_inputs=None):
    # Before opset 7 a 1-D slope holds one value per channel (axis 1), not per last axis.
    if slope.ndim == 1 and x.ndim > 2 and slope.shape[0] == x.shape[1] != x.shape[-1]:
        slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))
    return np.where(x < 0, x * slope, x)


@kernel("PRelu", since=7)
def prelu(x, slope):
    return np.where(x < 0, x * slope, x)


@kernel("ThresholdedRelu", since=10)
def thresholded_relu(x, *, alpha=1.0):
    return np.where(x > alpha, x, x.dtype.type(0))


@kernel("Shrink", since=9)
def shrink(x, *, bias=0.0, lambd=0.5):
    xf = _up(x) if x.dtype.kind == "f" or x.dtype in _LOW_FLOATS else x.astype(np.float64)
    y = np.zeros(xf.shape, xf.dtype)
    np.add(xf, bias, out=y, where=xf < -lambd)
    np.subtract(xf, bias, out=y, where=xf > lambd)
    return _down(y, x.dtype)


# --- Sigmoid family ------------------------------------------------------------------------------


@kernel("Sigmoid", since=1)
def sigmoid(x, *, consumed_inputs=None):
    return _down(_sigmoid(_up(x)), x.dtype)


@kernel("HardSigmoid", since=1)
def hard_sigmoid(x, *, alpha=0.2, beta=0.5, consumed_inputs=None):
    xf = _up(x)
    y = np.multiply(xf, alpha, out=_new(xf))
    y += beta
    np.clip(y, 0, 1, out=y)
    return _down(y, x.dtype)


@kernel("HardSwish", since=14)
def hard_swish(x):
    xf = _up(x)
    y = np.multiply(xf, 1.0 / 6.0, out=_new(xf))
    y += 0.5
    np.clip(y, 0, 1, out=y)
    y *= xf
    return _down(y, x.dtype)


@kernel("Swish", since=24)
def swish(x, *, alpha=1.0):
    xf = _up(x)
    y = _sigmoid(xf * alpha if alpha != 1.0 else xf)
    y *= xf
    return _down(y, x.dtype)


@kernel("Tanh", since=1)
def tanh(x, *, consumed_inputs=None):
    return np.tanh(x)


@kernel("Softsign", since=1)
def softsign(x):
    xf = _up(x)
    y = np.abs(xf, out=_new(xf))
    y += 1
    np.divide(xf, y, out=y)
    return _down(y, x.dtype)


def _softplus(x: np.ndarray) -> np.ndarray:
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow, and several times faster than
    # np.logaddexp(x, 0)
    y = np.abs(x, out=_new(x))
    np.negative(y, out=y)
    np.exp(y, out=y)
    np.log1p(y, out=y)
    y += np.maximum(x, 0)
    return y


@kernel("Softplus", since=1)
def softplus(x):
    return _down(_softplus(_up(x)), x.dtype)


@kernel("Mish", since=18)
def mish(x):
    xf = _up(x)
    y = _softplus(xf)
    np.tanh(y, out=y)
    y *= xf
    return _down(y, x.dtype)


# --- Elu family ----------------------------------------------------------------------------------


def _neg_expm1(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """expm1(min(x, 0) * scale): the negative branch, with no overflow on the positive side."""
    y = np.minimum(x, 0, out=_new(x))
    if scale != 1.0:
        y *= scale
    return np.expm1(y, out=y)


@kernel("Elu", since=1)
def elu(x, *, alpha=1.0, consumed_inputs=None):
    xf = _up(x)
    y = _neg_expm1(xf)
    y *= alpha
    y += np.maximum(xf, 0)
    return _down(y, x.dtype)


@kernel("Selu", since=1)
def selu(x, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875, consumed_inputs=None):
    xf = _up(x)
    y = _neg_expm1(xf)
    y *= alpha
    y += np.maximum(xf, 0)
    y *= gamma
    return _down(y, x.dtype)


@kernel("Celu", since=12)
def celu(x, *, alpha=1.0):
    xf = _up(x)
    y = _neg_expm1(xf, 1.0 / alpha)
    y *= alpha
    y += np.maximum(xf, 0)
    return _down(y, x.dtype)


# --- Gelu ----------------------------------------------------------------------------------------

_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


# 0.5 * erfc(z) = t * exp(-z*z + P(t) + ln 0.5), t = 1 / (1 + z/2), z >= 0: a Chebyshev fit with
# relative error below 1.2e-7 everywhere (Numerical Recipes' erfcc), the 0.5 folded into the
# constant term. Relative accuracy in the tail is what Gelu needs: x * (1 + erf(x/sqrt2)) / 2
# computed via erf cancels for x < -3.
_ERFCC = tuple(
    np.float32(c)
    for c in (-1.26551223 + math.log(0.5), 1.00002368, 0.37409196, 0.09678418, -0.18628806,
              0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)
)  # fmt: skip
_ONE32, _SQRT_HALF32 = np.float32(1.0), np.float32(math.sqrt(0.5))
_HALF_SQRT_HALF32 = np.float32(0.5 * math.sqrt(0.5))
# Elements per float32 scratch block: large, so that two workers seldom wait for the GIL.
_GELU_BLOCK = 131072


def _gelu_erf_block(v: np.ndarray, o: np.ndarray, t: np.ndarray, z: np.ndarray, p: np.ndarray) -> None:
    """o <- v * Phi(v) for a float32 block; t, z, p are scratch blocks of the same shape.

    v * Phi(v) = max(v, 0) - |v| * Phi(-|v|): one formula for both signs, no select.
    """
    np.abs(v, out=o)
    np.multiply(o, _HALF_SQRT_HALF32, out=t)
    t += _ONE32
    np.reciprocal(t, out=t)  # t = 1 / (1 + z/2), z = |v| / sqrt2
    np.multiply(t, _ERFCC[-1], out=p)
    p += _ERFCC[-2]
    for c in _ERFCC[-3::-1]:
        p *= t
        p += c
    np.multiply(o, _SQRT_HALF32, out=z)
    z *= z
    p -= z
    np.exp(p, out=p)
    p *= t  # Phi(-|v|) = erfc(|v|/sqrt2) / 2
    infinite = not o.max() < np.inf  # (NaN too: it stays NaN)
    p *= o
    np.maximum(v, 0, out=o)
    o -= p
    if infinite:  # |v| * Phi(-|v|) was inf * 0: Gelu(inf) = inf, Gelu(-inf) = 0
        big = np.isinf(v)
        o[big] = np.maximum(v[big], 0)


def gelu_f32(x: np.ndarray, bias: np.ndarray | None = None, approximate: str = "none") -> np.ndarray:
    """Gelu of a float32 array (plus a bias along its last axis), in cache-sized blocks, in the
    input's memory order (row-major, or feature-major: a transposed view)."""
    cols = x.shape[-1] if x.ndim else 1
    x2 = x.reshape(-1, cols)
    b = None if bias is None else bias.astype(_F32, copy=False).reshape(-1)
    if x2.shape[0] > 1 and not x2.flags.c_contiguous and x2.T.flags.c_contiguous:
        # a feature-major product's output: its rows are features, the bias runs down them
        return _gelu_rows(x2.T, b, True, approximate).T.reshape(x.shape)
    return _gelu_rows(x2, b, False, approximate).reshape(x.shape)


def _gelu_rows(x2: np.ndarray, b: np.ndarray | None, bias_per_row: bool, approximate: str) -> np.ndarray:
    cols = x2.shape[1]
    out = np.empty(x2.shape, _F32)
    step = max(1, _GELU_BLOCK // max(cols, 1))

    def rows(r0: int, r1: int) -> None:
        v, t, z, p = (np.empty((step, cols), _F32) for _ in range(4))
        for s in range(r0, r1, step):
            e = min(s + step, r1)
            m = e - s
            vv, o = v[:m], out[s:e]
            if b is None:
                vv[...] = x2[s:e]
            else:
                np.add(x2[s:e], b[s:e, None] if bias_per_row else b, out=vv)
            if approximate == "tanh":
                np.multiply(vv, vv, out=o)
                o *= 0.044715
                o += 1
                o *= vv
                o *= _SQRT_2_OVER_PI
                np.tanh(o, out=o)
                o += 1
                o *= vv
                o *= 0.5
            else:
                _gelu_erf_block(vv, o, t[:m], z[:m], p[:m])

    for_rows(x2.shape[0], cols, rows)
    return out


@kernel("Gelu", since=20)
def gelu(x, *, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"Gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    if x.dtype == _F32 and x.size:
        return gelu_f32(x, None, approximate)
    xf = _up(x)
    if approximate == "tanh":
        y = np.multiply(xf, xf, out=_new(xf))
        y *= 0.044715
        y += 1
        y *= xf
        y *= _SQRT_2_OVER_PI
        np.tanh(y, out=y)
    elif approximate == "none":
        y = erf(np.multiply(xf, _SQRT_HALF, out=_new(xf)))
    else:
        raise ValueError(f"Gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    y += 1
    y *= xf
    y *= 0.5
    return _down(y, x.dtype)


# --- Softmax / LogSoftmax / Hardmax --------------------------------------------------------------


# exp overflows float32 above 88.7; a row of n terms sums below the float32 maximum when every
# term is below exp(_EXP_ROOM - ln n).
_EXP_ROOM = 87.0


def _softmax_unshifted(x: np.ndarray) -> np.ndarray | None:
    """Softmax over the last axis of a float32 array without subtracting each row's maximum
    (a reduction along a short last axis costs as much as the exp): exp(x) / sum(exp(x)) is the
    same quotient. Taken only when no exp can overflow (the global maximum, cheap, is small
    enough) and every row sums to at least 1 (its largest term is within ln n of 1, so the terms
    that matter are normal numbers, as after the shift); None otherwise, and for NaN."""
    n = x.shape[-1]
    if not x.max() <= _EXP_ROOM - math.log(n):
        return None
    y = np.exp(x)
    s = np.add.reduce(y, axis=-1, keepdims=True)
    if not s.min() >= 1.0:
        return None
    y /= s
    return y


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    if x.dtype == _F32 and x.size >= 4096 and axis in (-1, x.ndim - 1) and x.shape[-1] > 1:
        y = _softmax_unshifted(x)
        if y is not None:
            return y
    y = np.subtract(x, np.max(x, axis=axis, keepdims=True), out=_new(x))
    np.exp(y, out=y)
    y /= np.add.reduce(y, axis=axis, keepdims=True)
    return y


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    y = np.subtract(x, np.max(x, axis=axis, keepdims=True), out=_new(x))
    y -= np.log(np.add.reduce(np.exp(y), axis=axis, keepdims=True))
    return y


def _hardmax(x: np.ndarray, axis: int) -> np.ndarray:
    y = np.zeros_like(x)
    np.put_along_axis(y, np.argmax(x, axis=axis, keepdims=True), 1, axis=axis)
    return y


def _up_bf16(x: np.ndarray) -> np.ndarray:
    # float16 softmax stays in float16, step by step as numpy (and the ONNX reference, hence the
    # expected outputs of the backend tests) computes it; bfloat16 is too coarse for that.
    return x.astype(_F32) if x.dtype == _BF16 else x


def _along_axis(fn, x: np.ndarray, axis: int) -> np.ndarray:
    """Opset 13+: ``fn`` along one axis."""
    if x.size == 0:
        return x.copy()
    return _down(fn(_up_bf16(x), axis), x.dtype)


def _coerced_2d(fn, x: np.ndarray, axis: int) -> np.ndarray:
    """Opset < 13: the input is seen as 2-D, [prod(dims before axis), prod(dims from axis on)]."""
    if x.size == 0:
        return x.copy()
    rank = x.ndim
    if axis < 0:
        axis += rank
    if axis >= rank - 1:
        return _down(fn(_up_bf16(x), -1), x.dtype)
    x2 = x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return _down(fn(_up_bf16(x2), 1), x.dtype).reshape(x.shape)


@kernel("Softmax", since=1)
def softmax_1(x, *, axis=1):
    return _coerced_2d(_softmax, x, axis)


@kernel("Softmax", since=13)
def softmax(x, *, axis=-1):
    return _along_axis(_softmax, x, axis)


@kernel("LogSoftmax", since=1)
def log_softmax_1(x, *, axis=1):
    return _coerced_2d(_log_softmax, x, axis)


@kernel("LogSoftmax", since=13)
def log_softmax(x, *, axis=-1):
    return _along_axis(_log_softmax, x, axis)


@kernel("Hardmax", since=1)
def hardmax_1(x, *, axis=1):
    return _coerced_2d(_hardmax, x, axis)


@kernel("Hardmax", since=13)
def hardmax(x, *, axis=-1):
    return _along_axis(_hardmax, x, axis)
