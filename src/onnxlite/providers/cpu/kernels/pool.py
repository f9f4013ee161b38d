"""Pooling: MaxPool, AveragePool, LpPool, their Global forms, MaxUnpool, MaxRoiPool, RoiAlign.

2-D windowed pools work on the unpadded maps in cache-sized blocks: long contiguous passes along
each axis, with the few windows at the edges combined from their valid taps; other ranks reduce
one axis at a time over strided views. Divisors of average pools are separable per spatial axis,
formed as an outer product once per geometry.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ..registry import kernel
from .conv import compute_dtype, conv_geometry, pad_spatial, spatial_attrs


def _geometry(x, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides):
    nd = x.ndim - 2
    k, s, d = spatial_attrs(nd, kernel_shape, strides, dilations)
    if len(k) != nd:
        raise ValueError(f"kernel_shape {list(k)} does not match input rank {x.ndim}")
    out, pb, pe = conv_geometry(x.shape[2:], k, s, d, pads, auto_pad, ceil_mode)
    return k, s, d, out, pb, pe


def _end_pads(x, k, s, d, out, pb):
    """Padding after each spatial axis so that every window tap of every output is in range."""
    need = [(o - 1) * si + (ki - 1) * di + 1 for o, si, ki, di in zip(out, s, k, d)]
    return [max(nn - b - n, 0) for nn, b, n in zip(need, pb, x.shape[2:])]


def _padded(x, k, s, d, out, pb, value):
    """x padded with ``value`` so that every window tap of every output is in range."""
    return pad_spatial(x, pb, _end_pads(x, k, s, d, out, pb), value)


def _taps(k, s, d, out):
    """(tap offsets, source slices) of every kernel position."""
    for offs in itertools.product(*(range(ki) for ki in k)):
        yield (
            offs,
            (
                slice(None),
                slice(None),
                *tuple(slice(o * di, o * di + (q - 1) * si + 1, si) for o, di, q, si in zip(offs, d, out, s)),
            ),
        )


def _low_value(dt: np.dtype):
    if dt.kind == "f" or dt.name in ("bfloat16",):
        return -np.inf
    return np.iinfo(dt).min


def _tap_span(o, k_d, s, pb, n, q):
    """Outputs [j0, j1) whose tap ``o`` lands inside the input, and that first input position."""
    base = o * k_d - pb  # input position of output 0's tap
    j0 = 0 if base >= 0 else -(base // s)
    j1 = min(q, (n - 1 - base) // s + 1) if n - 1 - base >= 0 else 0
    return j0, j1, base + j0 * s


def _reduce_axis(x, axis, k, s, d, q, pb, combine, fill):
    """Combine the k taps of a 1-D window along ``axis``; taps in the padding are skipped."""
    n = x.shape[axis]
    lead = (slice(None),) * axis
    spans = [_tap_span(o, d, s, pb, n, q) for o in range(k)]
    spans = [sp for sp in spans if sp[1] > sp[0]]
    full = [sp for sp in spans if sp[0] == 0 and sp[1] == q]
    if full:
        # a tap valid for every output initialises the result without a fill pass
        first = full[0]
        acc = x[tuple([*lead, slice(first[2], first[2] + (q - 1) * s + 1, s)])].copy()
        spans.remove(first)
    else:
        shape = list(x.shape)
        shape[axis] = q
        acc = np.full(shape, fill, dtype=x.dtype)
    for j0, j1, p0 in spans:
        dst = acc[tuple([*lead, slice(j0, j1)])]
        combine(dst, x[tuple([*lead, slice(p0, p0 + (j1 - j0 - 1) * s + 1, s)])], out=dst)
    return acc


# Input elements per block of maps: the block's rows, its scratch buffers and its output stay in
# the core's L2 cache through the passes (measured best among 16K-256K). The blocks run on the
# calling thread: split over two workers, a 2x2 stride-2 pool over 64x224x224 ran no faster
# (1.89 ms alone, 1.97 split; short numpy passes on two threads wait for each other's GIL).
_POOL_BLOCK = 1 << 17


def _keeps_size(x, k, s, d, out, pb) -> bool:
    """An odd window centred on each position, stride 1: the output has the input's size."""
    return (
        set(s) == {1}
        and set(d) == {1}
        and all(ki % 2 for ki in k)
        and tuple(out) == x.shape[2:]
        and tuple(pb) == tuple(ki // 2 for ki in k)
    )


def _same_pool2d(x, k, combine, scale=None):
    """A centred odd window, stride 1, over the unpadded maps, in cache-sized blocks of maps.

    Each axis is one run of passes over the flattened block (a tap is the block shifted by one
    element, or by one row): windows that cross a row or map edge pick up their neighbours'
    values, so the few edge columns and rows are then recomputed from their valid taps alone.
    That skips the copy into a padded buffer and the strided pick of the outputs: 4 passes for
    3x3 instead of 7 (a 3x3 stride-1 max pool over 256x28x28: 363 -> 257 us).
    """
    n, c, h, w = x.shape
    nc, per_map = n * c, h * w
    xs = np.ascontiguousarray(x).reshape(nc, per_map)
    y = np.empty((nc, per_map), dtype=x.dtype)
    cb = min(max(1, _POOL_BLOCK // per_map), nc)
    scratch = np.empty(cb * per_map, dtype=x.dtype)
    for b0 in range(0, nc, cb):
        m = min(cb, nc - b0)
        src, dst = xs[b0 : b0 + m], y[b0 : b0 + m]
        rows = scratch[: m * per_map].reshape(m, h, w)
        _window_pass(src.reshape(m, h, w), rows, k[1] // 2, 2, combine)
        _window_pass(rows, dst.reshape(m, h, w), k[0] // 2, 1, combine)
        if scale is not None:
            # a per-position divisor broadcast along whole flattened maps, not row by row
            dst *= scale.reshape(-1) if np.ndim(scale) else scale
    return y.reshape(n, c, h, w)


def _strided_pool2d(x, k, s, d, out, pb, combine, fill, scale=None):
    """A 2-D window reduction (any stride and dilation) over the unpadded maps, in cache-sized
    blocks of maps.

    Rows first, on the output rows only: each tap is a strided view of whole input rows. Then
    columns over the flattened result as long contiguous runs (windows spill across row ends),
    and the output columns are picked out. Output rows and columns whose window reaches into
    the padding (a handful at the edges) are combined from their valid taps alone. No padded
    copy, and the first pass already drops the rows no output needs: a 3x3 stride-2 max pool
    over 64x112x112 measured 0.96 -> 0.72 ms, a 2x2 one over 64x224x224 2.60 -> 1.75 ms.
    """
    # a negative begin pad crops the input
    x = x[:, :, max(0, -pb[0]) :, max(0, -pb[1]) :]
    pb = [max(0, b) for b in pb]
    n, c, h, w = x.shape
    ho, wo = out
    nc = n * c
    xs = np.ascontiguousarray(x).reshape(nc, h, w)
    y = np.empty((nc, ho, wo), dtype=x.dtype)
    rows_full = _full_range(h, k[0], s[0], d[0], pb[0], ho)
    cols_full = _full_range(w, k[1], s[1], d[1], pb[1], wo)
    cb = min(max(1, _POOL_BLOCK // (h * w)), nc)
    v_buf = np.empty(cb * ho * w, dtype=x.dtype)
    a_buf = np.empty(cb * ho * w, dtype=x.dtype)
    for b0 in range(0, nc, cb):
        m = min(cb, nc - b0)
        src, dst = xs[b0 : b0 + m], y[b0 : b0 + m]
        v = v_buf[: m * ho * w].reshape(m, ho, w)
        _strided_axis(src, v, k[0], s[0], d[0], pb[0], rows_full, combine, fill)
        _strided_columns(v, dst, a_buf, k[1], s[1], d[1], pb[1], cols_full, combine, fill)
        if scale is not None:
            flat = dst.reshape(m, ho * wo)
            flat *= scale.reshape(-1) if np.ndim(scale) else scale
    return y.reshape(n, c, ho, wo)


def _full_range(size, k, s, d, b, q):
    """Outputs [lo, hi) of one axis whose every window tap lies inside the input."""
    span = (k - 1) * d + 1
    lo = min(-(-b // s), q)  # a begin pad wider than every window: no output is full
    hi = min(q, (size - span + b) // s + 1) if size >= span else lo
    return lo, max(lo, hi)


def _edge_outputs(src, dst, axis, outputs, k, s, d, b, combine, fill=0) -> None:
    """The given outputs along ``axis`` (1 or 2) of (M, rows, cols) maps, each combined from the
    taps of its window that lie inside ``src`` (the window starts at ``o * s - b``)."""
    size = src.shape[axis]
    for o in outputs:
        valid = [o * s - b + t * d for t in range(k) if 0 <= o * s - b + t * d < size]
        # plain indexing: np.moveaxis or np.take cost some 20 us a call
        if axis == 1:
            _combine_into(dst[:, o], [src[:, t] for t in valid], combine, fill)
        else:
            _combine_into(dst[:, :, o], [src[:, :, t] for t in valid], combine, fill)


def _combine_into(out, parts, combine, fill=0) -> None:
    if not parts:  # a window wholly in the padding
        out[...] = fill
        return
    if len(parts) == 1:
        out[...] = parts[0]
        return
    combine(parts[0], parts[1], out=out)
    for p in parts[2:]:
        combine(out, p, out=out)


def _strided_axis(src, dst, k, s, d, b, full, combine, fill) -> None:
    """dst (M, Ho, W): each output row the combination of its window's input rows of src
    (M, H, W); the full rows one strided view of whole rows per tap."""
    lo, hi = full
    if hi > lo:
        start = lo * s - b
        stop = (hi - lo - 1) * s + 1
        taps = [src[:, start + t * d : start + t * d + stop : s] for t in range(k)]
        _combine_into(dst[:, lo:hi], taps, combine)
    _edge_outputs(src, dst, 1, [*range(lo), *range(hi, dst.shape[1])], k, s, d, b, combine, fill)


def _strided_columns(v, dst, a_buf, k, s, d, b, full, combine, fill) -> None:
    """dst (M, Ho, Wo) from the rows v (M, Ho, W): windows along each row, computed as
    contiguous runs over the flattened rows and then picked at the output columns."""
    lo, hi = full
    m, ho, w = v.shape
    if hi > lo:
        flat = v.reshape(-1)
        span = flat.size - (k - 1) * d
        a = a_buf[: flat.size]
        # the last positions are never picked: they would be windows past the end
        _combine_into(a[:span], [flat[t * d : t * d + span] for t in range(k)], combine)
        start = lo * s - b
        dst[:, :, lo:hi] = a.reshape(m, ho, w)[:, :, start : start + (hi - lo - 1) * s + 1 : s]
    _edge_outputs(v, dst, 2, [*range(lo), *range(hi, dst.shape[2])], k, s, d, b, combine, fill)


def _window_pass(src, dst, r, axis, combine) -> None:
    """dst = the combination of src's 2r + 1 neighbours along ``axis`` (1 or 2) of (M, H, W)
    maps, taps outside the map skipped."""
    size = src.shape[axis]
    step = src.strides[axis] // src.itemsize
    flat_s, flat_d = src.reshape(-1), dst.reshape(-1)
    total = flat_s.size
    inner = total - 2 * r * step  # positions whose every tap lies inside the flattened block
    if r and inner > 0:
        out = flat_d[r * step : r * step + inner]
        combine(flat_s[:inner], flat_s[step : step + inner], out=out)
        for t in range(2, 2 * r + 1):
            combine(out, flat_s[t * step : t * step + inner], out=out)
    elif not r:
        np.copyto(flat_d, flat_s)
        return
    edges = sorted(set(range(min(r, size))) | set(range(max(size - r, 0), size)))
    _edge_outputs(src, dst, axis, edges, 2 * r + 1, 1, 1, r, combine)


def _separable_pool(x, k, s, d, out, pb, combine, fill, scale=None):
    """A window reduction done one spatial axis at a time (max and sum are separable), then
    multiplied by ``scale`` when given."""
    if min(out, default=1) <= 0 or x.size == 0:
        return np.full(x.shape[:2] + tuple(out), fill, dtype=x.dtype)
    if tuple(k) == x.shape[2:] and set(out) == {1} and not any(pb) and set(d) == {1}:
        # one window covering each whole map (a classifier's final pool): a reduction along the
        # flattened maps, several times faster than combining taps (ResNet-50's 7x7 average pool
        # over 2048 maps: 254 -> 55 us)
        y = combine.reduce(x.reshape(*x.shape[:2], -1), axis=-1).reshape(x.shape[:2] + (1,) * len(k))
        if scale is not None:
            y *= scale
        return y
    if len(k) == 2:
        if _keeps_size(x, k, s, d, out, pb):
            return _same_pool2d(x, k, combine, scale)
        return _strided_pool2d(x, k, s, d, out, pb, combine, fill, scale)
    y = x
    # Innermost axis first, where its stride is 1: its taps are contiguous runs. With a stride,
    # its taps are strided gathers (no SIMD), so the outer axes go first and shrink them: a 3x3
    # stride-2 max pool over 64x111x111 took 490 us instead of 730.
    order = range(len(k)) if s[-1] > 1 else reversed(range(len(k)))
    for i in order:
        y = _reduce_axis(y, 2 + i, k[i], s[i], d[i], out[i], pb[i], combine, fill)
    if scale is not None:
        y *= scale
    return y


def _max_pool_values(x, k, s, d, out, pb):
    return _separable_pool(x, k, s, d, out, pb, np.maximum, _low_value(x.dtype))


def _max_pool_indices(x, k, s, d, out, pb, storage_order):
    xp = _padded(x, k, s, d, out, pb, _low_value(x.dtype))
    spatial = x.shape[2:]
    nd = len(spatial)
    # flat offsets of each spatial axis: row-major, or column-major with storage_order=1
    if storage_order:
        mult = [math.prod(spatial[:i]) for i in range(nd)]
    else:
        mult = [math.prod(spatial[i + 1 :]) for i in range(nd)]
    acc = idx = None
    for offs, src in _taps(k, s, d, out):
        v = xp[src]
        pos = np.zeros(tuple(out), dtype=np.int64)
        for i, (o, di, q, si, b) in enumerate(zip(offs, d, out, s, pb)):
            coord = np.arange(q, dtype=np.int64) * si + o * di - b
            shape = [1] * nd
            shape[i] = q
            pos = pos + (coord * mult[i]).reshape(shape)
        if acc is None:
            acc = v.copy()
            idx = np.broadcast_to(pos, v.shape).copy()
        else:
            better = v > acc
            np.copyto(acc, v, where=better)
            np.copyto(idx, np.broadcast_to(pos, v.shape), where=better)
    nc = x.shape[0] * x.shape[1]
    base = (np.arange(nc, dtype=np.int64) * math.prod(spatial)).reshape(x.shape[:2] + (1,) * nd)
    return acc, idx + base


def _max_pool(nout):
    def run(
        x,
        *,
        auto_pad="NOTSET",
        ceil_mode=0,
        dilations=None,
        kernel_shape=None,
        pads=None,
        storage_order=0,
        strides=None,
    ):
        k, s, d, out, pb, _ = _geometry(x, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides)
        if nout == 1:
            return _max_pool_values(x, k, s, d, out, pb)
        return _max_pool_indices(x, k, s, d, out, pb, storage_order)

    return run


_MAXPOOL_ATTRS = frozenset(
    ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides")
)


@kernel("MaxPool", since=1, factory=True)
def max_pool(node):
    unknown = sorted(set(node.attrs) - _MAXPOOL_ATTRS)
    if unknown:
        raise ValueError(f"{node.describe()}: unsupported attribute(s) {unknown}")
    return functools.partial(_max_pool(node.n_outputs), **node.attrs)


def _window_counts(n, k, s, d, q, b, e, include_pad):
    """Per-axis count of window taps that fall inside the input (or the explicit pads)."""
    lo, hi = (-b, n + e) if include_pad else (0, n)
    pos = np.arange(q)[:, None] * s + np.arange(k)[None, :] * d - b
    return ((pos >= lo) & (pos < hi)).sum(axis=1)


def _sum_pool(x, k, s, d, out, pb, power=None, scale=None):
    """Windowed sum of x (or |x|**power) in the compute dtype, times ``scale`` when given;
    padding adds nothing."""
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    if power is not None:
        xc = xc * xc if power == 2 else np.abs(xc) ** ct.type(power)
    return _separable_pool(xc, k, s, d, out, pb, np.add, 0, scale)


@functools.lru_cache(maxsize=256)
def _average_scale(spatial, k, s, d, out, pb, pe, incl, ct):
    """1 / the count of each output's window taps (a scalar when all are equal), computed once
    per geometry: forming it costs as much as a small pool."""
    div = np.ones((), dtype=np.float64)
    for i, n in enumerate(spatial):
        div = np.multiply.outer(div, _window_counts(n, k[i], s[i], d[i], out[i], pb[i], pe[i], incl))
    # times the reciprocal (within an ulp of the quotient): a division pass costs twice a
    # product's; one divisor is a flat scalar loop, not a broadcast
    inv = 1.0 / np.maximum(div, 1)
    if inv.min() == inv.max():
        return ct.type(inv.flat[0])
    scale = inv.astype(ct)
    scale.flags.writeable = False
    return scale


@kernel("AveragePool", since=1)
def average_pool(
    x,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    count_include_pad=0,
    dilations=None,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    k, s, d, out, pb, pe = _geometry(x, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides)
    if min(out, default=1) <= 0 or x.size == 0:
        return np.zeros(x.shape[:2] + tuple(out), dtype=x.dtype)
    geometry = (x.shape[2:], tuple(k), tuple(s), tuple(d), tuple(out), tuple(pb), tuple(pe))
    scale = _average_scale(*geometry, bool(count_include_pad), compute_dtype(x.dtype))
    acc = _sum_pool(x, k, s, d, out, pb, scale=scale)
    return acc.astype(x.dtype, copy=False)


@kernel("LpPool", since=1)
def lp_pool(
    x,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    dilations=None,
    kernel_shape=None,
    p=2,
    pads=None,
    strides=None,
):
    k, s, d, out, pb, _ = _geometry(x, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides)
    pw = float(p)
    acc = _sum_pool(x, k, s, d, out, pb, power=pw)
    acc = np.sqrt(acc) if pw == 2 else acc ** (1.0 / pw)
    return acc.astype(x.dtype, copy=False)


@kernel("GlobalAveragePool", since=1)
def global_average_pool(x):
    axes = tuple(range(2, x.ndim))
    ct = compute_dtype(x.dtype)
    return x.astype(ct, copy=False).mean(axis=axes, keepdims=True).astype(x.dtype, copy=False)


@kernel("GlobalMaxPool", since=1)
def global_max_pool(x):
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


@kernel("GlobalLpPool", since=1)
def global_lp_pool(x, *, p=2):
    axes = tuple(range(2, x.ndim))
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    pw = float(p)
    if pw == 2:
        y = np.sqrt((xc * xc).sum(axis=axes, keepdims=True))
    else:
        y = (np.abs(xc) ** pw).sum(axis=axes, keepdims=True) ** (1.0 / pw)
    return y.astype(x.dtype, copy=False)


@kernel("MaxUnpool", since=9)
def max_unpool(x, indices, output_shape=None, *, kernel_shape=None, pads=None, strides=None):
    nd = x.ndim - 2
    k, s, _ = spatial_attrs(nd, kernel_shape, strides, None)
    p = [int(v) for v in pads] if pads else [0] * (2 * nd)
    inferred = x.shape[:2] + tuple(
        (n - 1) * si + ki - p[i] - p[nd + i] for i, (n, si, ki) in enumerate(zip(x.shape[2:], s, k))
    )
    flat_idx = indices.reshape(-1)
    if output_shape is None:
        shape = inferred
    else:
        shape = tuple(int(v) for v in np.asarray(output_shape).reshape(-1))
        if flat_idx.size and int(flat_idx.max()) >= math.prod(inferred):
            # indices address the requested (original) shape, as onnxruntime reads them
            inferred = shape
    y = np.zeros(math.prod(inferred), dtype=x.dtype)
    y[flat_idx] = x.reshape(-1)
    y = y.reshape(inferred)
    if inferred == shape:
        return y
    # the spec (and its reference) scatter in the inferred shape and place it top-left
    res = np.zeros(shape, dtype=x.dtype)
    res[tuple(slice(0, min(a, b)) for a, b in zip(inferred, shape))] = y[
        tuple(slice(0, min(a, b)) for a, b in zip(inferred, shape))
    ]
    return res


@kernel("MaxRoiPool", since=1)
def max_roi_pool(x, rois, *, pooled_shape=None, spatial_scale=1.0):
    ph_n, pw_n = (int(v) for v in pooled_shape)
    _, c, h, w = x.shape
    y = np.zeros((rois.shape[0], c, ph_n, pw_n), dtype=x.dtype)
    scale = np.float32(spatial_scale)
    for r, roi in enumerate(np.asarray(rois, dtype=np.float32)):
        # Caffe/onnxruntime geometry: round half away from zero, inclusive end
        bx = int(roi[0])
        x1, y1, x2, y2 = (int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in roi[1:5] * scale)
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = np.float32(rh) / np.float32(ph_n), np.float32(rw) / np.float32(pw_n)
        hs = [min(max(int(np.floor(i * bh)) + y1, 0), h) for i in range(ph_n)]
        he = [min(max(int(np.ceil((i + 1) * bh)) + y1, 0), h) for i in range(ph_n)]
        ws = [min(max(int(np.floor(j * bw)) + x1, 0), w) for j in range(pw_n)]
        we = [min(max(int(np.ceil((j + 1) * bw)) + x1, 0), w) for j in range(pw_n)]
        img = x[bx]
        for i in range(ph_n):
            if he[i] <= hs[i]:
                continue
            rows = img[:, hs[i] : he[i]].max(axis=1)  # (C, W)
            for j in range(pw_n):
                if we[j] > ws[j]:
                    y[r, :, i, j] = rows[:, ws[j] : we[j]].max(axis=1)
    return y


# --------------------------------------------------------------------------- RoiAlign


def _axis_samples(start, bin_size, pooled, grid, size):
    """Bilinear taps along one axis: (low index, high index, low weight, high weight).

    Each shaped (pooled, grid); taps of samples outside [-1, size] get zero weights. The
    arithmetic stays in the rois' precision (as onnxruntime's does), which decides the grid.
    """
    ft = type(start)
    i = np.arange(pooled, dtype=ft)[:, None]
    g = np.arange(grid, dtype=ft)[None, :]
    pos = start + i * bin_size + (g + ft(0.5)) * bin_size / ft(grid)
    outside = (pos < -1.0) | (pos > size)
    pos = np.maximum(pos, ft(0))
    low = np.floor(pos).astype(np.int64)
    at_end = low >= size - 1
    low = np.where(at_end, size - 1, low)
    high = np.where(at_end, size - 1, low + 1)
    frac = np.where(at_end, ft(0), pos - low.astype(ft))
    wl, wh = ft(1) - frac, frac
    wl[outside] = 0
    wh[outside] = 0
    low[outside] = 0
    high[outside] = 0
    return low, high, wl, wh


def _roi_align(x, rois, batch_indices, mode, oh, ow, sampling_ratio, spatial_scale, half_pixel):
    n_rois = rois.shape[0]
    _, c, h, w = x.shape
    ct = compute_dtype(x.dtype)
    y = np.zeros((n_rois, c, oh, ow), dtype=ct)
    ft = np.float64 if rois.dtype == np.float64 else np.float32
    off = ft(0.5 if half_pixel else 0.0)
    scale = ft(spatial_scale)
    rr = rois.astype(ft, copy=False)
    for r in range(n_rois):
        x0, y0, x1, y1 = (rr[r, i] * scale - off for i in range(4))
        rw, rh = x1 - x0, y1 - y0
        if not half_pixel:
            rw, rh = max(rw, ft(1)), max(rh, ft(1))
        bh, bw = rh / ft(oh), rw / ft(ow)
        gh = int(sampling_ratio) if sampling_ratio > 0 else int(np.ceil(rh / ft(oh)))
        gw = int(sampling_ratio) if sampling_ratio > 0 else int(np.ceil(rw / ft(ow)))
        if gh <= 0 or gw <= 0:
            continue
        img = x[int(batch_indices[r])].astype(ct, copy=False)
        ylo, yhi, wyl, wyh = _axis_samples(y0, bh, oh, gh, h)
        xlo, xhi, wxl, wxh = _axis_samples(x0, bw, ow, gw, w)
        if mode == "avg":
            # separable: a (oh, H) and a (ow, W) interpolation matrix, averaged over the grid
            my = np.zeros((oh, h), dtype=ct)
            np.add.at(my, (np.arange(oh)[:, None], ylo), wyl)
            np.add.at(my, (np.arange(oh)[:, None], yhi), wyh)
            mx = np.zeros((ow, w), dtype=ct)
            np.add.at(mx, (np.arange(ow)[:, None], xlo), wxl)
            np.add.at(mx, (np.arange(ow)[:, None], xhi), wxh)
            my /= ct.type(gh * gw)
            y[r] = np.matmul(np.matmul(my, img), mx.T)
        else:
            # max over samples of the largest weighted corner (onnxruntime's definition)
            yi = np.stack([ylo, yhi], axis=-1)  # (oh, gh, 2)
            xi = np.stack([xlo, xhi], axis=-1)  # (ow, gw, 2)
            wy = np.stack([wyl, wyh], axis=-1).astype(ct)
            wx = np.stack([wxl, wxh], axis=-1).astype(ct)
            vals = img[:, yi.reshape(-1)][:, :, xi.reshape(-1)]
            vals = vals.reshape(c, oh, gh, 2, ow, gw, 2)
            wts = wy[:, :, :, None, None, None] * wx[None, None, None, :, :, :]
            y[r] = (vals * wts).max(axis=(3, 6)).max(axis=(2, 4))
    return y.astype(x.dtype, copy=False)


@kernel("RoiAlign", since=10)
def roi_align_10(
    x,
    rois,
    batch_indices,
    *,
    mode="avg",
    output_height=1,
    output_width=1,
    sampling_ratio=0,
    spatial_scale=1.0,
):
    return _roi_align(
        x, rois, batch_indices, mode, output_height, output_width, sampling_ratio, spatial_scale, False
    )


@kernel("RoiAlign", since=16)
def roi_align(
    x,
    rois,
    batch_indices,
    *,
    coordinate_transformation_mode="half_pixel",
    mode="avg",
    output_height=1,
    output_width=1,
    sampling_ratio=0,
    spatial_scale=1.0,
):
    return _roi_align(
        x,
        rois,
        batch_indices,
        mode,
        output_height,
        output_width,
        sampling_ratio,
        spatial_scale,
        coordinate_transformation_mode == "half_pixel",
    )
