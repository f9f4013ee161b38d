"""Normalizations: BatchNormalization, InstanceNormalization, LayerNormalization,
GroupNormalization, RMSNormalization, LRN, LpNormalization, MeanVarianceNormalization.

16-bit floats are normalized in float32 (the ``stash_type`` of the newer ops) and cast back once.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ....types import np_dtype
from .. import broadcast
from ..registry import kernel
from .conv import compute_dtype


def _stash(x: np.ndarray, stash_type: int) -> np.dtype:
    """The dtype the statistics are computed in: the stash type, never below x's precision."""
    st = np_dtype(int(stash_type)) if stash_type else np.dtype(np.float32)
    if st.name in ("float16", "bfloat16"):
        return compute_dtype(x.dtype)
    return np.result_type(st, compute_dtype(x.dtype))


def _channel_shape(x: np.ndarray) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


# --------------------------------------------------------------------------- BatchNormalization


def _bn_inference(x, scale, b, mean, var, epsilon, spatial=1):
    ct = compute_dtype(x.dtype)
    # fold into one scale and shift (in float64, then rounded once to the compute dtype)
    a = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
    shift = b.astype(np.float64) - mean.astype(np.float64) * a
    if not spatial and a.size == math.prod(x.shape[1:]) and x.ndim > 2:
        shape = (1, *x.shape[1:])  # pre-v9 per-activation parameters
    else:
        shape = _channel_shape(x)
    xc = x.astype(ct, copy=False)
    y = broadcast.apply(np.multiply, xc, a.astype(ct).reshape(shape))
    broadcast.apply(np.add, y, shift.astype(ct).reshape(shape), y)
    return y.astype(x.dtype, copy=False)


def _bn_batch_stats(x):
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    axes = (0, *range(2, x.ndim))
    mean = xc.mean(axis=axes)
    dev = xc - mean.reshape(_channel_shape(x))
    var = (dev * dev).mean(axis=axes)
    return mean, var


_BN_ATTRS = frozenset(("epsilon", "momentum", "spatial", "is_test", "consumed_inputs", "training_mode"))


@kernel("BatchNormalization", since=1, factory=True)
def batch_normalization(node):
    """Inference form unless the node asks for training outputs (or training_mode=1)."""
    unknown = sorted(set(node.attrs) - _BN_ATTRS)
    if unknown:
        raise ValueError(f"{node.describe()}: unsupported attribute(s) {unknown}")
    at = node.attrs
    eps = float(at.get("epsilon", 1e-5))
    momentum = float(at.get("momentum", 0.9))
    spatial = int(at.get("spatial", 1))
    if node.version >= 14:
        training = bool(at.get("training_mode", 0))
    else:
        # v1-v9: five outputs mean training, unless v1/v6 say is_test
        training = node.n_outputs > 1 and not (node.version < 7 and at.get("is_test", 0))
    legacy = node.version < 14

    def run(x, scale, b, mean, var):
        if not training:
            y = _bn_inference(x, scale, b, mean, var, eps, spatial)
            # (a test-mode node that still names the statistics outputs gets them unchanged)
            return y if node.n_outputs == 1 else (y, mean, var, mean, var)[: node.n_outputs]
        bmean, bvar = _bn_batch_stats(x)
        y = _bn_inference(x, scale, b, bmean, bvar, eps)
        run_mean = (mean * momentum + bmean * (1 - momentum)).astype(mean.dtype)
        run_var = (var * momentum + bvar * (1 - momentum)).astype(var.dtype)
        if legacy:
            return (y, run_mean, run_var, bmean.astype(mean.dtype), bvar.astype(var.dtype))
        return y, run_mean, run_var

    return run


# --------------------------------------------------------------------------- per-instance norms


def _normalize_rows(x2: np.ndarray, epsilon: float):
    """(rows, cols) -> normalized rows, row means, row inverse std-devs."""
    cols = x2.shape[1]
    mean = x2.mean(axis=1, keepdims=True)
    dev = x2 - mean
    if cols <= 16384:
        # short rows: sum the squares without a squared temporary
        ss = np.einsum("ij,ij->i", dev, dev).reshape(-1, 1)
    else:
        # long rows: numpy's pairwise summation keeps float32 sums accurate
        ss = np.square(dev).sum(axis=1, keepdims=True)
    var = ss / x2.dtype.type(max(cols, 1))
    inv = 1.0 / np.sqrt(var + x2.dtype.type(epsilon))
    dev *= inv
    return dev, mean, inv


@kernel("InstanceNormalization", since=1)
def instance_normalization(x, scale, b, *, epsilon=1e-5, consumed_inputs=None):
    ct = compute_dtype(x.dtype)
    n, c = x.shape[:2]
    y2, _, _ = _normalize_rows(x.astype(ct, copy=False).reshape(n * c, -1), epsilon)
    y = y2.reshape(x.shape)
    shape = _channel_shape(x)
    y *= scale.astype(ct).reshape(shape)
    y += b.astype(ct).reshape(shape)
    return y.astype(x.dtype, copy=False)


@kernel("LayerNormalization", since=17, factory=True)
def layer_normalization(node):
    unknown = sorted(set(node.attrs) - {"axis", "epsilon", "stash_type"})
    if unknown:
        raise ValueError(f"{node.describe()}: unsupported attribute(s) {unknown}")
    return functools.partial(_layer_norm, n_out=node.n_outputs, **node.attrs)


def _layer_norm(x, scale, b=None, *, n_out=1, axis=-1, epsilon=1e-5, stash_type=1):
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"LayerNormalization axis {axis} is out of range for rank {x.ndim}")
    ax = axis + x.ndim if axis < 0 else axis
    ct = _stash(x, stash_type)
    rows = math.prod(x.shape[:ax])
    cols = math.prod(x.shape[ax:])
    x2 = x.astype(ct, copy=False).reshape(rows, cols)
    y2, mean, inv = _normalize_rows(x2, epsilon)
    y = y2.reshape(x.shape)
    y *= scale.astype(ct, copy=False)
    if b is not None:
        y += b.astype(ct, copy=False)
    y = y.astype(x.dtype, copy=False)
    if n_out == 1:
        return y
    stat_shape = x.shape[:ax] + (1,) * (x.ndim - ax)
    return y, mean.reshape(stat_shape), inv.reshape(stat_shape)


def _group_norm(x, scale, b, num_groups, epsilon, stash_type, per_group):
    n, c = x.shape[:2]
    g = int(num_groups)
    ct = _stash(x, stash_type)
    x2 = x.astype(ct, copy=False).reshape(n * g, -1)
    y2, _, _ = _normalize_rows(x2, epsilon)
    y = y2.reshape(x.shape)
    sc = scale.astype(ct, copy=False).reshape(-1)
    bb = b.astype(ct, copy=False).reshape(-1)
    if per_group and sc.size == g:
        sc, bb = np.repeat(sc, c // g), np.repeat(bb, c // g)
    shape = _channel_shape(x)
    y *= sc.reshape(shape)
    y += bb.reshape(shape)
    return y.astype(x.dtype, copy=False)


@kernel("GroupNormalization", since=18)
def group_normalization_18(x, scale, b, *, epsilon=1e-5, num_groups=None):
    """v18: scale and bias hold one value per group."""
    return _group_norm(x, scale, b, num_groups, epsilon, 1, per_group=True)


@kernel("GroupNormalization", since=21)
def group_normalization(x, scale, b, *, epsilon=1e-5, num_groups=None, stash_type=1):
    """v21: scale and bias hold one value per channel."""
    return _group_norm(x, scale, b, num_groups, epsilon, stash_type, per_group=False)


@kernel("RMSNormalization", since=23)
def rms_normalization(x, scale, *, axis=-1, epsilon=1e-5, stash_type=1):
    ax = axis + x.ndim if axis < 0 else axis
    ct = _stash(x, stash_type)
    rows = math.prod(x.shape[:ax])
    x2 = x.astype(ct, copy=False).reshape(rows, -1)
    ms = (x2 * x2).mean(axis=1, keepdims=True)
    y = (x2 * (1.0 / np.sqrt(ms + ct.type(epsilon)))).reshape(x.shape)
    y *= scale.astype(ct, copy=False)
    return y.astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- other norms


@kernel("LRN", since=1)
def lrn(x, *, alpha=1e-4, beta=0.75, bias=1.0, size=None):
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    c = x.shape[1]
    size = int(size)
    before = (size - 1) // 2
    after = size - 1 - before
    sq = np.multiply(xc, xc)
    # the window sum as shifted adds over the channel axis: no padded copy
    acc = sq.copy()
    for o in range(1, min(before, c - 1) + 1):
        acc[:, o:] += sq[:, : c - o]
    for o in range(1, min(after, c - 1) + 1):
        acc[:, : c - o] += sq[:, o:]
    del sq
    acc *= ct.type(alpha / size)
    acc += ct.type(bias)
    # den ** beta through square roots or exp(beta * log(den)): numpy's power with a float
    # exponent runs a scalar loop, several times slower
    b = float(beta)
    if b == 0.75:
        r = np.sqrt(acc, out=acc)
        r *= np.sqrt(r)
        y = np.divide(xc, r, out=r)
    elif b == 0.5:
        y = np.divide(xc, np.sqrt(acc, out=acc), out=acc)
    elif b == 1.0:
        y = np.divide(xc, acc, out=acc)
    else:
        r = np.log(acc, out=acc)
        r *= ct.type(-b)
        np.exp(r, out=r)
        y = np.multiply(xc, r, out=r)
    return y.astype(x.dtype, copy=False)


@kernel("LpNormalization", since=1)
def lp_normalization(x, *, axis=-1, p=2):
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    if int(p) == 1:
        norm = np.abs(xc).sum(axis=axis, keepdims=True)
    elif int(p) == 2:
        norm = np.sqrt((xc * xc).sum(axis=axis, keepdims=True))
    else:
        raise ValueError(f"LpNormalization: p must be 1 or 2, got {p}")
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(norm == 0, ct.type(0), xc / norm)
    return y.astype(x.dtype, copy=False)


@kernel("MeanVarianceNormalization", since=9)
def mean_variance_normalization(x, *, axes=(0, 2, 3)):
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    ax = tuple(int(a) for a in axes)
    dev = xc - xc.mean(axis=ax, keepdims=True)
    std = np.sqrt((dev * dev).mean(axis=ax, keepdims=True))
    dev /= std + ct.type(1e-9)
    return dev.astype(x.dtype, copy=False)
