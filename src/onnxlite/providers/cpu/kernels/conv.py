"""Convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv, DeformConv, Col2Im.

Convolutions run as im2col (a strided sliding-window view copied once) followed by one BLAS GEMM
per call (grouped and depthwise convolutions batch their groups into one ``np.matmul``);
depthwise convolutions over volumes or long sequences accumulate one vectorised multiply-add per
kernel tap instead. Dense float32 stride-1 convolutions with 64 to 160 input channels on large
maps run as one BLAS product per kernel tap over the padded input, with no patch matrix
(:mod:`._direct`); other 3x3 stride-1 ones on large enough maps use Winograd's F(2x2, 3x3)
(:mod:`._winograd`). Transposed convolutions are a GEMM followed by col2im (one strided add per
kernel tap). Integer convolutions run in float64, which is exact for 8-bit products summed over
fewer than 2**37 terms.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import blas, broadcast, workers
from ..registry import kernel
from . import _depthwise2d, _depthwise_shift, _direct, _winograd

# Types numpy has no BLAS for: computed in float32 and cast back.
_LOW_DTYPES = frozenset((np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)))
_F32 = np.dtype(np.float32)


def compute_dtype(dt: np.dtype) -> np.dtype:
    """The dtype a floating kernel computes in: float32 for 16-bit floats, else ``dt``."""
    return _F32 if dt in _LOW_DTYPES else dt


def spatial_attrs(
    nd: int,
    kernel_shape: Sequence[int] | None,
    strides: Sequence[int] | None,
    dilations: Sequence[int] | None,
    default_kernel: Sequence[int] = (),
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    k = tuple(int(v) for v in (kernel_shape or default_kernel))
    s = tuple(int(v) for v in strides) if strides else (1,) * nd
    d = tuple(int(v) for v in dilations) if dilations else (1,) * nd
    return k, s, d


def conv_geometry(
    in_shape: Sequence[int],
    k: Sequence[int],
    s: Sequence[int],
    d: Sequence[int],
    pads: Sequence[int] | None,
    auto_pad: str,
    ceil_mode: int = 0,
) -> tuple[list[int], list[int], list[int]]:
    """Output spatial shape and begin/end pads of a convolution or pooling window."""
    nd = len(in_shape)
    ek = [(ki - 1) * di + 1 for ki, di in zip(k, d)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // si) for n, si in zip(in_shape, s)]
        total = [max(0, (o - 1) * si + e - n) for o, si, e, n in zip(out, s, ek, in_shape)]
        if auto_pad == "SAME_UPPER":
            pb = [t // 2 for t in total]
        else:
            pb = [t - t // 2 for t in total]
        pe = [t - b for t, b in zip(total, pb)]
        return out, pb, pe
    if auto_pad == "VALID":
        pb, pe = [0] * nd, [0] * nd
    else:
        p = [int(v) for v in pads] if pads else [0] * (2 * nd)
        pb, pe = p[:nd], p[nd:]
    out = []
    for n, b, e, ekk, si in zip(in_shape, pb, pe, ek, s):
        span = n + b + e - ekk
        if ceil_mode:
            o = -(-span // si) + 1
            # the last window must start inside the input or the begin padding
            if (o - 1) * si >= n + b:
                o -= 1
        else:
            o = span // si + 1
        out.append(max(o, 0))
    return out, pb, pe


def pad_spatial(x: np.ndarray, pb: Sequence[int], pe: Sequence[int], value=0) -> np.ndarray:
    """``x`` with its spatial axes (2..) padded by ``value``; ``x`` itself when no padding."""
    if not any(pb) and not any(pe):
        return x
    if x.ndim == 4 and min(*pb, *pe) >= 0:
        # images, spelled out: the general form's index building is most of a small pad's cost
        (b0, b1), (e0, e1), (h, w) = pb, pe, x.shape[2:]
        y = np.empty((*x.shape[:2], b0 + h + e0, b1 + w + e1), dtype=x.dtype)
        y[:, :, b0 : b0 + h, b1 : b1 + w] = x
        if b0:
            y[:, :, :b0] = value
        if e0:
            y[:, :, b0 + h :] = value
        if b1:
            y[:, :, b0 : b0 + h, :b1] = value
        if e1:
            y[:, :, b0 : b0 + h, b1 + w :] = value
        return y
    shape = x.shape[:2] + tuple(n + b + e for n, b, e in zip(x.shape[2:], pb, pe))
    y = np.empty(shape, dtype=x.dtype)
    y[tuple([slice(None), slice(None), *(slice(b, b + n) for b, n in zip(pb, x.shape[2:]))])] = x
    # fill only the border, a slab before and after the input along each axis: filling the
    # whole array first writes the interior twice
    for i, (b, n, m) in enumerate(zip(pb, x.shape[2:], shape[2:])):
        lead = (slice(None),) * (2 + i)
        if b:
            y[tuple([*lead, slice(0, b)])] = value
        if b + n < m:
            y[tuple([*lead, slice(b + n, m)])] = value
    return y


def _im2col(
    xp: np.ndarray, k: Sequence[int], s: Sequence[int], d: Sequence[int], out: Sequence[int]
) -> np.ndarray:
    """(N, C, *padded) -> (N, C * prod(k), prod(out)) patches, one copy of a strided view."""
    n, c = xp.shape[:2]
    kk = math.prod(k)
    ll = math.prod(out)
    if kk == 1:
        src = (slice(None), slice(None), *tuple(slice(0, (o - 1) * si + 1, si) for o, si in zip(out, s)))
        v = xp[src]
        return v.reshape(n, c, ll)
    # the (N, C, *k, *out) window view, built from strides directly: numpy's
    # sliding_window_view costs 10 us a call in argument checks, a fifth of a small convolution
    st = xp.strides
    shape = (n, c, *k, *out)
    strides = (st[0], st[1], *(di * t for di, t in zip(d, st[2:])), *(si * t for si, t in zip(s, st[2:])))
    if xp.flags.c_contiguous:
        v = np.ndarray(shape, xp.dtype, buffer=xp, strides=strides)
    else:
        v = as_strided(xp, shape, strides, writeable=False)
    cols = np.empty(shape, xp.dtype)
    np.copyto(cols, v)
    return cols.reshape(n, c * kk, ll)


def conv_core(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    group: int,
    s: Sequence[int],
    d: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    out: Sequence[int],
) -> np.ndarray:
    """Convolution of (N, C, ...) by (M, C/group, *k) in x's dtype (float32 or float64)."""
    n, c = x.shape[:2]
    m = w.shape[0]
    k = w.shape[2:]
    cg, mg = c // group, m // group
    kk, ll = math.prod(k), math.prod(out)
    if n == 0 or m == 0 or ll == 0:
        y = np.zeros((n, m, *out), dtype=x.dtype)
    elif cg == 1 and group > 1 and max(s) == 1 and ll >= 4096 and len(k) != 2:
        # large stride-1 depthwise volumes and sequences: one multiply-add per tap beats copying
        # patches (2-D maps take the batched patch-matrix product: 1.5-3x faster there)
        y = _depthwise(pad_spatial(x, pb, pe), w, group, s, d, out)
    elif group > 1 and _depthwise2d.applies(x, w, group, s, pb, pe, out):
        return _depthwise2d.conv(x, w, b, s, d, pb, pe, out)
    elif group > 1 and _depthwise_shift.applies(x, w, group, s, d, pb, pe, out):
        return _depthwise_shift.conv(x, w, b, s, pb, out)
    elif group == 1 and _direct.applies(x, w, s, pb, pe, out):
        _winograd.release(w)
        return _direct.conv_taps(x, w, b, d, pb, pe, out)
    elif group == 1 and _winograd.applies(x, w, s, d, pb, pe, out):
        y = _winograd.conv3x3(x, w, pb, pe, out)
    else:
        _winograd.release(w)
        xp = pad_spatial(x, pb, pe)
        wm = w.reshape(m, c * kk) if group == 1 else w.reshape(group, mg, cg * kk)
        # bound the patch matrix: large batches or images go in bands of output rows
        row_bytes = n * c * kk * (ll // out[0]) * x.dtype.itemsize
        rows = max(1, _IM2COL_BYTES // max(row_bytes, 1))
        nw = workers.workers()
        if nw > 1 and (kk > 1 or group > 1) and out[0] >= 2 and n * m * cg * kk * ll >= blas.MIN_SPLIT_MACS:
            # bands of output rows on the workers: the patch copies run in parallel too
            rows = min(rows, -(-out[0] // nw))
        if rows >= out[0]:
            y = _gemm_patches(xp, wm, group, k, s, d, out).reshape(n, m, *out)
        else:
            y = np.empty((n, m, *out), dtype=x.dtype)
            ek0 = (k[0] - 1) * d[0] + 1

            def band(r0: int, r1: int) -> None:
                xb = xp[:, :, r0 * s[0] : (r1 - 1) * s[0] + ek0]
                sub = [r1 - r0, *out[1:]]
                cols = _im2col(xb, k, s, d, sub)  # (N, C*K, L)
                for i in range(n):
                    yv = y[i, :, r0:r1].view()
                    yv.shape = (group, mg, -1)  # the GEMM writes straight into the output
                    np.matmul(wm.reshape(group, mg, -1), cols[i].reshape(group, cg * kk, -1), out=yv)

            bands = [functools.partial(band, r0, min(out[0], r0 + rows)) for r0 in range(0, out[0], rows)]
            for i in range(0, len(bands), nw):
                workers.run_all(bands[i : i + nw])
    if b is not None:
        broadcast.apply(np.add, y, b.astype(y.dtype, copy=False).reshape((1, m) + (1,) * len(out)), y)
    return y


# Patch matrices above this size are built in bands of output rows: small enough for the heap
# to reuse the memory on the next call (see _winograd._V_BYTES).
_IM2COL_BYTES = 8 << 20


def _gemm_patches(xp, wm, group, k, s, d, out) -> np.ndarray:
    """im2col of padded ``xp`` times the weight matrix: (N, M, prod(out))."""
    n, c = xp.shape[:2]
    cols = _im2col(xp, k, s, d, out)  # (N, C*K, L)
    if group == 1:
        return blas.matmul(wm, cols)
    y = np.matmul(wm, cols.reshape(n, group, c // group * math.prod(k), -1))
    return y.reshape(n, wm.shape[0] * wm.shape[1], -1)


def _depthwise(
    xp: np.ndarray,
    w: np.ndarray,
    group: int,
    s: Sequence[int],
    d: Sequence[int],
    out: Sequence[int],
) -> np.ndarray:
    """One input channel per group: accumulate one multiply-add per kernel tap."""
    n = xp.shape[0]
    m = w.shape[0]
    mg = m // group
    k = w.shape[2:]
    nd = len(k)
    wt = w.reshape(group, mg, *k)
    y = np.zeros((n, group, mg, *out), dtype=xp.dtype)
    tail = (1,) * nd
    for offs in itertools.product(*(range(ki) for ki in k)):
        src = (
            slice(None),
            slice(None),
            *tuple(slice(o * di, o * di + (q - 1) * si + 1, si) for o, di, q, si in zip(offs, d, out, s)),
        )
        tap = xp[src][:, :, None]
        tap_idx: tuple[Any, ...] = (slice(None), slice(None), *offs)
        coef = wt[tap_idx].reshape((1, group, mg, *tail))
        y += tap * coef
    return y.reshape(n, m, *out)


def _tuple(v: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if v is None else tuple(v)


@functools.lru_cache(maxsize=1024)
def _geometry(
    in_shape: tuple[int, ...],
    w_kernel: tuple[int, ...],
    kernel_shape: tuple[int, ...] | None,
    strides: tuple[int, ...] | None,
    dilations: tuple[int, ...] | None,
    pads: tuple[int, ...] | None,
    auto_pad: str,
):
    """(k, s, d, out, pb, pe) of a convolution, once per input shape and attributes: worked out
    per call, it was a fifth of a small convolution's fixed cost."""
    k, s, d = spatial_attrs(len(in_shape), kernel_shape, strides, dilations, w_kernel)
    return (k, s, d, *conv_geometry(in_shape, k, s, d, pads, auto_pad))


def _float_conv(x, w, b, auto_pad, dilations, group, kernel_shape, pads, strides):
    key = (_tuple(kernel_shape), _tuple(strides), _tuple(dilations), _tuple(pads), auto_pad)
    _, s, d, out, pb, pe = _geometry(x.shape[2:], w.shape[2:], *key)
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    wc = w.astype(ct, copy=False)
    y = conv_core(xc, wc, b, group, s, d, pb, pe, out)
    return y.astype(x.dtype, copy=False)


@kernel("Conv", since=1)
def conv(
    x,
    w,
    b=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    return _float_conv(x, w, b, auto_pad, dilations, group, kernel_shape, pads, strides)


def _per_channel(v: np.ndarray | None, nd: int) -> np.ndarray | float:
    """A scalar or per-output-channel parameter, shaped to broadcast over (M, ...)."""
    if v is None:
        return 0.0
    a = np.asarray(v, dtype=np.float64)
    if a.size == 1:
        return float(a.reshape(()))
    return a.reshape((-1,) + (1,) * nd)


def _int_conv(x, x_zero_point, w, w_zero_point, b, auto_pad, dilations, group, kernel_shape, pads, strides):
    """The exact integer accumulator of a quantized convolution, as float64."""
    nd = x.ndim - 2
    k, s, d = spatial_attrs(nd, kernel_shape, strides, dilations, w.shape[2:])
    out, pb, pe = conv_geometry(x.shape[2:], k, s, d, pads, auto_pad)
    xf = x.astype(np.float64)
    if x_zero_point is not None:
        xf -= float(np.asarray(x_zero_point).reshape(-1)[0])
    wf = w.astype(np.float64)
    if w_zero_point is not None:
        wf -= _per_channel(w_zero_point, w.ndim - 1)
    bf = None if b is None else b.astype(np.float64)
    return conv_core(xf, wf, bf, group, s, d, pb, pe, out)


@kernel("ConvInteger", since=10)
def conv_integer(
    x,
    w,
    x_zero_point=None,
    w_zero_point=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    acc = _int_conv(
        x, x_zero_point, w, w_zero_point, None, auto_pad, dilations, group, kernel_shape, pads, strides
    )
    return acc.astype(np.int32)


def requantize(acc: np.ndarray, multiplier, zero_point, dtype: np.dtype) -> np.ndarray:
    """round-half-even(acc * multiplier) + zero point, saturated to ``dtype``."""
    y = acc * multiplier
    if dtype.kind in "iu":
        np.rint(y, out=y)
        if zero_point is not None:
            y += zero_point
        info = np.iinfo(dtype)
        np.clip(y, info.min, info.max, out=y)
        return y.astype(dtype)
    # float8 outputs (zero point zero by definition): round to nearest, saturating
    fmax = float(ml_dtypes.finfo(dtype).max)
    return np.clip(y, -fmax, fmax).astype(dtype)


@kernel("QLinearConv", since=10)
def qlinear_conv(
    x,
    x_scale,
    x_zero_point,
    w,
    w_scale,
    w_zero_point,
    y_scale,
    y_zero_point,
    b=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    acc = _int_conv(
        x, x_zero_point, w, w_zero_point, b, auto_pad, dilations, group, kernel_shape, pads, strides
    )
    nd = x.ndim - 2
    ws = np.asarray(w_scale)
    if ws.size > 1:
        ws = ws.reshape((-1,) + (1,) * nd)
    # the multiplier is formed in the scales' own precision, as onnxruntime does
    mult = (np.asarray(x_scale) * ws / np.asarray(y_scale)).astype(np.float64)
    zp = None if y_zero_point is None else np.asarray(y_zero_point).astype(np.float64)
    dtype = x.dtype if y_zero_point is None else np.asarray(y_zero_point).dtype
    return requantize(acc, mult, zp, dtype)


# --------------------------------------------------------------------------- col2im family


def col2im_add(
    cols: np.ndarray,
    out_shape: Sequence[int],
    k: Sequence[int],
    s: Sequence[int],
    d: Sequence[int],
    pb: Sequence[int],
) -> np.ndarray:
    """Scatter-add (N, C, *k, *blocks) patches into (N, C, *out_shape).

    Block ``j`` with kernel tap ``o`` lands at ``j * s + o * d - pb``; positions outside the
    output are dropped (that is how pads crop and negative pads extend).
    """
    n, c = cols.shape[:2]
    nd = len(k)
    blocks = cols.shape[2 + nd :]
    y = np.zeros((n, c, *out_shape), dtype=cols.dtype)
    for offs in itertools.product(*(range(ki) for ki in k)):
        dst: list[Any] = [slice(None), slice(None)]
        src: list[Any] = [slice(None), slice(None), *offs]
        empty = False
        for o, di, si, bb, nb, no in zip(offs, d, s, pb, blocks, out_shape):
            base = o * di - bb  # output position of block 0
            j0 = max(0, -(base // si)) if base < 0 else 0
            j1 = min(nb, (no - 1 - base) // si + 1) if no - 1 - base >= 0 else 0
            if j1 <= j0:
                empty = True
                break
            start = base + j0 * si
            dst.append(slice(start, start + (j1 - j0 - 1) * si + 1, si))
            src.append(slice(j0, j1))
        if not empty:
            y[tuple(dst)] += cols[tuple(src)]
    return y


@kernel("ConvTranspose", since=1)
def conv_transpose(
    x,
    w,
    b=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    output_padding=None,
    output_shape=None,
    pads=None,
    strides=None,
):
    nd = x.ndim - 2
    k, s, d = spatial_attrs(nd, kernel_shape, strides, dilations, w.shape[2:])
    insz = x.shape[2:]
    op = [int(v) for v in output_padding] if output_padding else [0] * nd
    full = [si * (n - 1) + o + (ki - 1) * di + 1 for si, n, o, ki, di in zip(s, insz, op, k, d)]
    if output_shape:
        out = [int(v) for v in output_shape][-nd:]
        if pads and auto_pad in ("NOTSET", ""):
            pb = [int(v) for v in pads[:nd]]
        else:
            total = [f - o for f, o in zip(full, out)]
            if auto_pad == "SAME_UPPER":
                pb = [t // 2 for t in total]
            elif auto_pad == "SAME_LOWER":
                pb = [t - t // 2 for t in total]
            else:
                pb = [max(t, 0) // 2 for t in total]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [n * si for n, si in zip(insz, s)]
        total = [f - o for f, o in zip(full, out)]
        if auto_pad == "SAME_UPPER":
            pb = [t // 2 for t in total]
        else:
            pb = [t - t // 2 for t in total]
    else:
        p = [int(v) for v in pads] if pads and auto_pad != "VALID" else [0] * (2 * nd)
        pb = p[:nd]
        out = [f - p[i] - p[nd + i] for i, f in enumerate(full)]

    ct = compute_dtype(x.dtype)
    n, c = x.shape[:2]
    mg = w.shape[1]
    m = mg * group
    cg = c // group
    kk, ll = math.prod(k), math.prod(insz)
    xc = x.astype(ct, copy=False).reshape(n, group, cg, ll)
    wc = w.astype(ct, copy=False).reshape(group, cg, mg * kk)
    cols = np.matmul(wc.transpose(0, 2, 1), xc)  # (N, group, Mg*K, L)
    cols = cols.reshape(n, m, *k, *insz)
    y = col2im_add(cols, out, k, s, d, pb)
    if b is not None:
        y += b.astype(ct, copy=False).reshape((1, m) + (1,) * nd)
    return y.astype(x.dtype, copy=False)


@kernel("Col2Im", since=18)
def col2im(x, image_shape, block_shape, *, dilations=None, pads=None, strides=None):
    img = [int(v) for v in np.asarray(image_shape).reshape(-1)]
    k = [int(v) for v in np.asarray(block_shape).reshape(-1)]
    nd = len(img)
    _, s, d = spatial_attrs(nd, k, strides, dilations)
    p = [int(v) for v in pads] if pads else [0] * (2 * nd)
    blocks = [
        (n + p[i] + p[nd + i] - (ki - 1) * di - 1) // si + 1
        for i, (n, ki, di, si) in enumerate(zip(img, k, d, s))
    ]
    n, ck, ll = x.shape
    kk = math.prod(k)
    if ll != math.prod(blocks) or ck % kk:
        raise ValueError(
            f"Col2Im: input shape {x.shape} does not match image_shape {img}, "
            f"block_shape {k} ({blocks} blocks)"
        )
    cols = x.reshape(n, ck // kk, *k, *blocks)
    return col2im_add(cols, img, k, s, d, p[:nd])


# --------------------------------------------------------------------------- DeformConv


def _sample_multilinear(img: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Multilinear sampling of (C, *spatial) at float positions (each shaped P), zeros outside.

    Returns (C, P). Each corner outside the image contributes zero (GridSample with
    align_corners=1 and zero padding).
    """
    c = img.shape[0]
    spatial = img.shape[1:]
    flat = img.reshape(c, -1)
    lows = [np.floor(p) for p in coords]
    fracs = [p - lo for p, lo in zip(coords, lows)]
    lows_i = [lo.astype(np.int64) for lo in lows]
    strides = [math.prod(spatial[i + 1 :]) for i in range(len(spatial))]
    res = np.zeros((c, coords[0].size), dtype=img.dtype)
    for corner in itertools.product((0, 1), repeat=len(spatial)):
        weight = np.ones(coords[0].shape, dtype=np.float64)
        idx = np.zeros(coords[0].shape, dtype=np.int64)
        valid = np.ones(coords[0].shape, dtype=bool)
        for i, hi in enumerate(corner):
            pos = lows_i[i] + hi
            valid &= (pos >= 0) & (pos < spatial[i])
            weight *= fracs[i] if hi else 1.0 - fracs[i]
            idx += np.clip(pos, 0, spatial[i] - 1) * strides[i]
        weight = np.where(valid, weight, 0.0).astype(img.dtype)
        res += flat[:, idx.reshape(-1)] * weight.reshape(-1)
    return res


@kernel("DeformConv", since=19)
def deform_conv(
    x,
    w,
    offset,
    b=None,
    mask=None,
    *,
    dilations=None,
    group=1,
    kernel_shape=None,
    offset_group=1,
    pads=None,
    strides=None,
):
    nd = x.ndim - 2
    k, s, d = spatial_attrs(nd, kernel_shape, strides, dilations, w.shape[2:])
    p = [int(v) for v in pads] if pads else [0] * (2 * nd)
    out = list(offset.shape[2:])
    ct = compute_dtype(x.dtype)
    n, c = x.shape[:2]
    m = w.shape[0]
    kk, ll = math.prod(k), math.prod(out)
    cog = c // offset_group
    off = offset.astype(np.float64).reshape(n, offset_group, kk, nd, ll)
    if mask is not None:
        mk = mask.astype(ct).reshape(n, offset_group, 1, kk, ll)
    # regular-grid positions of every (tap, output) pair, per spatial axis: (K, L)
    taps = np.array(list(itertools.product(*(range(ki) for ki in k))), dtype=np.float64)
    outs = np.array(list(itertools.product(*(range(o) for o in out))), dtype=np.float64)
    base = [taps[:, i : i + 1] * d[i] + outs[None, :, i] * s[i] - p[i] for i in range(nd)]
    xc = x.astype(ct, copy=False)
    cols = np.empty((n, offset_group, cog, kk, ll), dtype=ct)
    for bi in range(n):
        for g in range(offset_group):
            coords = [base[i] + off[bi, g, :, i, :] for i in range(nd)]
            smp = _sample_multilinear(xc[bi, g * cog : (g + 1) * cog], coords)
            cols[bi, g] = smp.reshape(cog, kk, ll)
            if mask is not None:
                cols[bi, g] *= mk[bi, g]
    cg, mg = c // group, m // group
    wc = w.astype(ct, copy=False).reshape(group, mg, cg * kk)
    y = np.matmul(wc, cols.reshape(n, group, cg * kk, ll)).reshape(n, m, *out)
    if b is not None:
        y += b.astype(ct, copy=False).reshape((1, m) + (1,) * nd)
    return y.astype(x.dtype, copy=False)
