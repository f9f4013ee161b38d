"""Reduction kernels: Reduce* (axes as attribute, then as input: ReduceSum from opset 13, the others
from 18), ArgMax/ArgMin and CumSum/CumProd.

Reductions keep the input's dtype (numpy would widen small ints to int64 and ints to float64 for
means); float16/bfloat16 accumulate in float32. Reducing an empty set gives the operation's
identity: 0 for sums, 1 for products, -inf/+inf (or the dtype's extremes) for max/min, -inf for
the log-sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from ..registry import kernel

_F32 = np.dtype(np.float32)
_I64 = np.dtype(np.int64)
_LOW_FLOATS = frozenset({np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)})


def _acc(dt: np.dtype) -> np.dtype:
    """The dtype to accumulate in."""
    return _F32 if dt in _LOW_FLOATS else dt


def _arr(y: Any, dt: np.dtype) -> np.ndarray:
    """A full reduction gives a numpy scalar; return a 0-d array of the output dtype."""
    if not isinstance(y, np.ndarray):
        return np.asarray(y, dtype=dt)
    return y if y.dtype == dt else y.astype(dt)


def _count(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> int:
    return math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)


def _extreme(dt: np.dtype, largest: bool) -> Any:
    """The identity of min (largest=True) or max reductions."""
    if dt == np.bool_:
        return largest
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return info.max if largest else info.min
    return np.inf if largest else -np.inf


# --- the reductions, each f(data, axes, keepdims) -> array of data's dtype ------------------------


def _sum(x, axes, keepdims):
    return _arr(np.add.reduce(x, axis=axes, dtype=_acc(x.dtype), keepdims=keepdims), x.dtype)


def _mean(x, axes, keepdims):
    n = _count(x.shape, axes)
    if x.dtype.kind in "iu":
        s = np.add.reduce(x, axis=axes, dtype=_I64 if x.dtype.kind == "i" else x.dtype,
                          keepdims=keepdims)  # fmt: skip
        # integer mean truncates toward zero, as C integer division does
        q = np.floor_divide(np.abs(s), n) if n else np.zeros_like(s)
        return _arr(np.where(s < 0, -q, q) if x.dtype.kind == "i" else q, x.dtype)
    s = np.add.reduce(x, axis=axes, dtype=_acc(x.dtype), keepdims=keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _arr(np.divide(s, n), x.dtype)


def _max(x, axes, keepdims):
    if x.size == 0:
        y = np.maximum.reduce(x, axis=axes, keepdims=keepdims, initial=_extreme(x.dtype, False))
    else:
        y = np.maximum.reduce(x, axis=axes, keepdims=keepdims)
    return _arr(y, x.dtype)


def _min(x, axes, keepdims):
    if x.size == 0:
        y = np.minimum.reduce(x, axis=axes, keepdims=keepdims, initial=_extreme(x.dtype, True))
    else:
        y = np.minimum.reduce(x, axis=axes, keepdims=keepdims)
    return _arr(y, x.dtype)


def _prod(x, axes, keepdims):
    return _arr(np.multiply.reduce(x, axis=axes, dtype=_acc(x.dtype), keepdims=keepdims), x.dtype)


def _l1(x, axes, keepdims):
    return _sum(np.abs(x), axes, keepdims)


def _sum_square(x, axes, keepdims):
    xa = x.astype(_acc(x.dtype)) if x.dtype in _LOW_FLOATS else x
    sq = np.multiply(xa, xa)
    return _arr(np.add.reduce(sq, axis=axes, keepdims=keepdims), x.dtype)


def _l2(x, axes, keepdims):
    xa = x.astype(_acc(x.dtype)) if x.dtype in _LOW_FLOATS else x
    s = np.add.reduce(np.multiply(xa, xa), axis=axes, keepdims=keepdims)
    return _arr(np.sqrt(s), x.dtype)


def _log_sum(x, axes, keepdims):
    s = np.add.reduce(x, axis=axes, dtype=_acc(x.dtype), keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _arr(np.log(s), x.dtype)


def _log_sum_exp(x, axes, keepdims):
    xa = x.astype(_acc(x.dtype)) if x.dtype in _LOW_FLOATS else x
    if x.size == 0:
        m = np.maximum.reduce(xa, axis=axes, keepdims=True, initial=-np.inf)
    else:
        m = np.maximum.reduce(xa, axis=axes, keepdims=True)
    # shift by the max for stability; an infinite max would give inf - inf, so shift by 0 there
    m = np.where(np.isfinite(m), m, 0)
    e = np.subtract(xa, m)
    np.exp(e, out=e)
    s = np.add.reduce(e, axis=axes, keepdims=keepdims)
    with np.errstate(divide="ignore"):
        y = np.log(s)
    y += m if keepdims else m.reshape(y.shape)
    return _arr(y, x.dtype)


# --- axes handling and registration --------------------------------------------------------------


def _norm_axes(axes: Any, rank: int) -> tuple[int, ...] | None:
    """Axes from an attribute list or an int64 tensor; empty means all axes."""
    if axes is None:
        return None
    vals = axes.reshape(-1).tolist() if isinstance(axes, np.ndarray) else list(axes)
    if not vals:
        return None
    out = []
    for a in vals:
        a = int(a)
        if not -rank <= a < max(rank, 1):
            raise ValueError(f"axis {a} is out of range for rank {rank}")
        out.append(a + rank if a < 0 else a)
    return tuple(sorted(set(out)))


def _register(op_type: str, fn: Callable[..., np.ndarray], input_since: int) -> None:
    name = op_type[len("Reduce") :].lower()

    def attr_form(data, *, axes=None, keepdims=1):
        return fn(data, _norm_axes(axes, data.ndim), bool(keepdims))

    def input_form(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
        if noop_with_empty_axes and (axes is None or axes.size == 0):
            # reduce over no axis: a copy, but the element-wise steps still apply (L1 gives |x|,
            # ReduceLogSum log(x), ReduceSumSquare x*x...)
            return fn(data, (), bool(keepdims))
        return fn(data, _norm_axes(axes, data.ndim), bool(keepdims))

    attr_form.__name__ = f"reduce_{name}_attr_axes"
    input_form.__name__ = f"reduce_{name}"
    kernel(op_type, since=1)(attr_form)
    kernel(op_type, since=input_since)(input_form)


_register("ReduceSum", _sum, 13)
_register("ReduceMean", _mean, 18)
_register("ReduceMax", _max, 18)
_register("ReduceMin", _min, 18)
_register("ReduceProd", _prod, 18)
_register("ReduceL1", _l1, 18)
_register("ReduceL2", _l2, 18)
_register("ReduceLogSum", _log_sum, 18)
_register("ReduceLogSumExp", _log_sum_exp, 18)
_register("ReduceSumSquare", _sum_square, 18)


# --- ArgMax / ArgMin -----------------------------------------------------------------------------


def _arg(fn: Callable[..., np.ndarray], x, axis, keepdims, select_last_index) -> np.ndarray:
    keep = bool(keepdims)
    if select_last_index:
        # the first hit in the reversed axis is the last one in the original order
        idx = fn(np.flip(x, axis), axis=axis, keepdims=keep)
        idx = (x.shape[axis] - 1) - idx
    else:
        idx = fn(x, axis=axis, keepdims=keep)
    return np.asarray(idx, dtype=_I64)


@kernel("ArgMax", since=1)
def argmax(data, *, axis=0, keepdims=1, select_last_index=0):
    return _arg(np.argmax, data, axis, keepdims, select_last_index)


@kernel("ArgMin", since=1)
def argmin(data, *, axis=0, keepdims=1, select_last_index=0):
    return _arg(np.argmin, data, axis, keepdims, select_last_index)


# --- CumSum / CumProd ----------------------------------------------------------------------------


def _cumulative(ufunc: Any, identity: int, x, axis, exclusive: int, reverse: int) -> np.ndarray:
    ax = int(np.asarray(axis).reshape(-1)[0])
    rank = x.ndim
    if not -rank <= ax < rank:
        raise ValueError(f"axis {ax} is out of range for rank {rank}")
    if ax < 0:
        ax += rank
    acc = _acc(x.dtype)
    src = np.flip(x, ax) if reverse else x
    if exclusive:
        res = np.empty(x.shape, acc)
        head = [slice(None)] * rank
        head[ax] = slice(0, 1)
        res[tuple(head)] = identity
        dst, part = list(head), list(head)
        dst[ax], part[ax] = slice(1, None), slice(0, -1)
        ufunc.accumulate(src[tuple(part)], axis=ax, dtype=acc, out=res[tuple(dst)])
    else:
        res = ufunc.accumulate(src, axis=ax, dtype=acc)
    if reverse:
        res = np.ascontiguousarray(np.flip(res, ax))
    return res if res.dtype == x.dtype else res.astype(x.dtype)


@kernel("CumSum", since=11)
def cumsum(x, axis, *, exclusive=0, reverse=0):
    return _cumulative(np.add, 0, x, axis, exclusive, reverse)


@kernel("CumProd", since=26)
def cumprod(x, axis, *, exclusive=0, reverse=0):
    return _cumulative(np.multiply, 1, x, axis, exclusive, reverse)
