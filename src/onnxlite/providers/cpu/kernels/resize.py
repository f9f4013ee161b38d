"""Resampling kernels: Resize (10/11/13/18/19), Upsample (7/9), GridSample (16/20), AffineGrid.

Resize is separable: each resized axis gets a precomputed (out, taps) index array and weight
array, and the data is gathered and weighted one tap at a time along that axis.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import kernel

_A_DEFAULT = -0.75


def _work_dtype(dt: np.dtype) -> np.dtype:
    # Wide integers and doubles interpolate in float64; everything else in float32.
    if dt == np.float64 or (dt.kind in "iu" and dt.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _cast_out(y: np.ndarray, dt: np.dtype) -> np.ndarray:
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(np.rint(y), info.min, info.max).astype(dt)
    if dt.kind == "b":
        return y != 0
    return y.astype(dt, copy=False)


def _cubic_kernel(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    t2, t3 = t * t, t * t * t
    near = (a + 2) * t3 - (a + 3) * t2 + 1
    far = a * t3 - 5 * a * t2 + 8 * a * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _source_coords(ctm, out_len, in_len, scale, roi):
    """Source coordinate of each output index along one axis, and the extrapolation mask."""
    y = np.arange(out_len, dtype=np.float64)
    extrap = None
    if ctm == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel_symmetric":
        adjustment = out_len / (scale * in_len)
        offset = in_len / 2 * (1 - adjustment)
        x = offset + (y + 0.5) / scale - 0.5
    elif ctm == "pytorch_half_pixel":
        x = (y + 0.5) / scale - 0.5 if out_len > 1 else np.zeros(out_len)
    elif ctm == "align_corners":
        # The divisor is the fractional target length (scale * in), as the reference does.
        width = scale * in_len
        x = y * (in_len - 1) / (width - 1) if width != 1 else np.zeros(out_len)
    elif ctm == "asymmetric":
        x = y / scale
    elif ctm == "tf_half_pixel_for_nn":
        x = (y + 0.5) / scale
    elif ctm == "tf_crop_and_resize":
        # In float32, as onnxruntime and onnx.reference: the ROI comes as float32, and exact
        # coordinates (1.0) computed from its rounded values in float64 (1.000000015) would
        # take the next element under nearest_mode "ceil"
        f = np.float32
        start, end = f(roi[0]), f(roi[1])
        n = f(in_len - 1)
        if out_len > 1:
            x32 = y.astype(f) * (end - start) * n / f(out_len - 1)
        else:
            x32 = np.full(out_len, (end - start) * n / f(2), f)
        x = (x32 + start * n).astype(np.float64)
        extrap = (x < 0) | (x > in_len - 1)
    else:
        raise ValueError(f"unsupported coordinate_transformation_mode {ctm!r}")
    return x, extrap


def _nearest_index(x, nearest_mode, scale):
    if nearest_mode == "round_prefer_floor":
        return np.ceil(x - 0.5)
    if nearest_mode == "round_prefer_ceil":
        return np.floor(x + 0.5)
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    if nearest_mode == "simple":  # Resize-10 / Upsample: onnxruntime's legacy rule
        return np.ceil(x) if scale < 1 else np.floor(x)
    raise ValueError(f"unsupported nearest_mode {nearest_mode!r}")


def _axis_plan(mode, in_len, out_len, scale, ctm, roi, nearest_mode, cubic_a, exclude_outside, antialias):
    """(index[out, taps], weight[out, taps] or None for nearest, extrapolation mask or None)."""
    x, extrap = _source_coords(ctm, out_len, in_len, scale, roi)
    if mode == "nearest":
        idx = _nearest_index(x, nearest_mode, scale).astype(np.int64)
        return np.clip(idx, 0, in_len - 1)[:, None], None, extrap
    radius = 1.0 if mode == "linear" else 2.0
    s = min(scale, 1.0) if antialias else 1.0
    first = math.floor(-radius / s) + 1
    taps = 2 - 2 * first
    base = np.floor(x)
    base = np.where(base == x, x - 1, base)  # an exact hit uses the tap at offset 1 (ratio 1)
    ratio = x - base
    offs = np.arange(first, first + taps, dtype=np.float64)
    t = (offs[None, :] - ratio[:, None]) * s
    if mode == "linear":
        w = np.clip(1 - np.abs(t), 0, 1)
    elif mode == "cubic":
        w = _cubic_kernel(t, cubic_a)
    else:
        raise ValueError(f"unsupported mode {mode!r}")
    if antialias and s < 1:
        w = w / w.sum(axis=1, keepdims=True)
    idx = base.astype(np.int64)[:, None] + np.arange(first, first + taps)[None, :]
    if exclude_outside:
        w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
        tot = w.sum(axis=1, keepdims=True)
        w = w / np.where(tot == 0, 1.0, tot)
    return np.clip(idx, 0, in_len - 1), w, extrap


def _resample_axis(data, axis, idx, w, extrap, extrapolation_value):
    if w is None:
        out = np.take(data, idx[:, 0], axis=axis)
    else:
        shape = [1] * data.ndim
        shape[axis] = idx.shape[0]
        out = None
        for k in range(idx.shape[1]):
            term = np.take(data, idx[:, k], axis=axis) * w[:, k].astype(data.dtype).reshape(shape)
            out = term if out is None else out + term
    if extrap is not None and extrap.any():
        shape = [1] * data.ndim
        shape[axis] = idx.shape[0]
        out = np.where(extrap.reshape(shape), np.asarray(extrapolation_value, out.dtype), out)
    return out


def _resize(
    X,
    roi,
    scales,
    sizes,
    *,
    mode,
    ctm,
    nearest_mode,
    cubic_a=_A_DEFAULT,
    exclude_outside=0,
    extrapolation_value=0.0,
    antialias=0,
    axes=None,
    keep_aspect_ratio_policy="stretch",
):
    r = X.ndim
    axes = list(range(r)) if axes is None else [a + r if a < 0 else a for a in axes]
    if scales is not None and np.size(scales) == 0:
        scales = None
    if sizes is not None and np.size(sizes) == 0:
        sizes = None
    if roi is not None and np.size(roi) == 0:
        roi = None
    in_shape = X.shape
    scale = [1.0] * r
    out_shape = list(in_shape)
    if sizes is not None:
        sizes = [int(v) for v in np.asarray(sizes).reshape(-1)]
        if len(sizes) != len(axes):
            raise ValueError(f"sizes has {len(sizes)} values for {len(axes)} axes")
        ratios = [sz / in_shape[a] for sz, a in zip(sizes, axes)]
        if keep_aspect_ratio_policy in ("not_larger", "not_smaller"):
            common = min(ratios) if keep_aspect_ratio_policy == "not_larger" else max(ratios)
            for a in axes:
                scale[a] = common
                out_shape[a] = int(common * in_shape[a] + 0.5)
        elif keep_aspect_ratio_policy == "stretch":
            for a, sz, rt in zip(axes, sizes, ratios):
                scale[a], out_shape[a] = rt, sz
        else:
            raise ValueError(f"unsupported keep_aspect_ratio_policy {keep_aspect_ratio_policy!r}")
    elif scales is not None:
        sc = [float(v) for v in np.asarray(scales, dtype=np.float32).reshape(-1)]
        if len(sc) != len(axes):
            raise ValueError(f"scales has {len(sc)} values for {len(axes)} axes")
        for a, v in zip(axes, sc):
            if v <= 0:
                raise ValueError(f"scales must be positive, got {v}")
            scale[a] = v
            out_shape[a] = math.floor(v * in_shape[a])
    else:
        raise ValueError("Resize needs either scales or sizes")
    roi_pairs = {a: (0.0, 1.0) for a in range(r)}
    if roi is not None:
        rv = [float(v) for v in np.asarray(roi).reshape(-1)]
        n = len(rv) // 2
        for i, a in enumerate(axes if n == len(axes) else range(n)):
            roi_pairs[a] = (rv[i], rv[n + i])

    if X.size == 0 or any(s == 0 for s in out_shape):
        return np.zeros(out_shape, dtype=X.dtype)
    dt = X.dtype
    data = X if mode == "nearest" else X.astype(_work_dtype(dt), copy=False)
    for a in axes:
        if (
            out_shape[a] == in_shape[a]
            and scale[a] == 1.0
            and (ctm != "tf_crop_and_resize" or roi_pairs[a] == (0.0, 1.0))
        ):
            continue
        idx, w, extrap = _axis_plan(
            mode,
            in_shape[a],
            out_shape[a],
            scale[a],
            ctm,
            roi_pairs[a],
            nearest_mode,
            cubic_a,
            exclude_outside,
            antialias,
        )
        if ctm != "tf_crop_and_resize":
            extrap = None
        if extrap is not None and mode == "nearest" and extrap.any() and dt.kind not in "fc":
            data = data.astype(np.float64)
        data = _resample_axis(data, a, idx, w, extrap, extrapolation_value)
    if data.dtype != dt:
        data = _cast_out(data, dt)
    return data if data is not X else X.copy()


@kernel("Resize", since=10)
def resize_10(X, scales, *, mode="nearest"):
    return _resize(X, None, scales, None, mode=mode, ctm="asymmetric", nearest_mode="simple")


@kernel("Resize", since=11)
def resize(
    X,
    roi=None,
    scales=None,
    sizes=None,
    *,
    antialias=0,
    axes=None,
    coordinate_transformation_mode="half_pixel",
    cubic_coeff_a=_A_DEFAULT,
    exclude_outside=0,
    extrapolation_value=0.0,
    keep_aspect_ratio_policy="stretch",
    mode="nearest",
    nearest_mode="round_prefer_floor",
):
    return _resize(
        X,
        roi,
        scales,
        sizes,
        mode=mode,
        ctm=coordinate_transformation_mode,
        nearest_mode=nearest_mode,
        cubic_a=cubic_coeff_a,
        exclude_outside=exclude_outside,
        extrapolation_value=extrapolation_value,
        antialias=antialias,
        axes=axes,
        keep_aspect_ratio_policy=keep_aspect_ratio_policy,
    )


def _upsample(X, scales, mode):
    if mode == "bilinear":
        mode = "linear"
    if mode not in ("nearest", "linear"):
        raise ValueError(f"unsupported Upsample mode {mode!r}")
    return _resize(X, None, scales, None, mode=mode, ctm="asymmetric", nearest_mode="simple")


@kernel("Upsample", since=7)
def upsample_7(X, *, mode="nearest", scales=None):
    if scales is None:
        raise ValueError("Upsample-7 needs the scales attribute")
    return _upsample(X, np.asarray(scales, dtype=np.float32), mode)


@kernel("Upsample", since=9)
def upsample(X, scales, *, mode="nearest"):
    return _upsample(X, scales, mode)


# --- GridSample / AffineGrid -------------------------------------------------------------------


def _reflect(x, lo, hi):
    """Reflects coordinates into [lo, hi] by folding at the borders."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    d = np.where(x < lo, lo - x, x - hi)
    n = np.floor(d / span)
    rem = d - n * span
    even = (n % 2) == 0
    low = np.where(even, lo + rem, hi - rem)
    high = np.where(even, hi - rem, lo + rem)
    return np.where(x < lo, low, np.where(x > hi, high, x))


def _gs_taps(x, size, mode, padding_mode, align_corners, dtype):
    """Per-dimension tap indices (P, taps), weights (P, taps) and validity for one axis."""
    lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
    if mode == "nearest":
        x = np.rint(x)
    out = (x < lo) | (x > hi)
    if padding_mode == "border":
        x = np.where(out, np.clip(x, 0, size - 1), x)
    elif padding_mode == "reflection":
        x = np.where(out, _reflect(x, lo, hi), x)
    if mode == "nearest":
        idx = np.trunc(x).astype(np.int64)[:, None]
        w = np.ones(idx.shape, dtype=dtype)
    else:
        base = np.floor(x)
        t = (x - base).astype(dtype)[:, None]
        if mode == "linear":
            offs = np.arange(0, 2)
            w = np.concatenate((1 - t, t), axis=1)
        else:
            offs = np.arange(-1, 3)
            w = _cubic_kernel(offs[None, :].astype(dtype) - t, _A_DEFAULT).astype(dtype)
        idx = base.astype(np.int64)[:, None] + offs[None, :]
    valid = (idx >= 0) & (idx < size)
    if padding_mode == "zeros":
        w = np.where(valid, w, 0).astype(dtype)
    elif padding_mode == "border":
        pass
    else:  # reflection of tap indices that still fall outside
        idx = np.where(valid, idx, np.trunc(_reflect(idx.astype(np.float64), lo, hi)))
        idx = idx.astype(np.int64)
    return np.clip(idx, 0, size - 1), w


@kernel("GridSample", since=16)
def grid_sample(X, grid, *, align_corners=0, mode="linear", padding_mode="zeros"):
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    if mode not in ("linear", "nearest", "cubic"):
        raise ValueError(f"unsupported GridSample mode {mode!r}")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"unsupported padding_mode {padding_mode!r}")
    N, C = X.shape[:2]
    spatial = X.shape[2:]
    K = len(spatial)
    out_sp = grid.shape[1:-1]
    if grid.shape[-1] != K:
        raise ValueError(f"grid's last dim {grid.shape[-1]} must equal X's spatial rank {K}")
    dt = X.dtype
    cdt = np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)
    gdt = np.dtype(np.float64) if grid.dtype == np.float64 else np.dtype(np.float32)
    P = int(np.prod(out_sp, dtype=np.int64))
    if N * C * P == 0:
        return np.zeros((N, C, *out_sp), dtype=dt)
    g = grid.reshape(N * P, K).astype(gdt, copy=False)
    plans = []
    for k in range(K):
        size = spatial[k]
        n = g[:, K - 1 - k]  # grid's last axis lists coordinates innermost-dimension first
        x = (n + 1) / 2 * (size - 1) if align_corners else ((n + 1) * size - 1) / 2
        plans.append(_gs_taps(x.astype(gdt), size, mode, padding_mode, align_corners, cdt))
    strides = np.cumprod((1, *spatial[::-1]))[:-1][::-1]
    flat = X.reshape(N, C, -1).astype(cdt, copy=False)
    out = np.zeros((N, C, P), dtype=cdt)
    # Every combination of per-axis taps contributes one gathered, weighted term.
    for combo in np.ndindex(*(p[0].shape[1] for p in plans)):
        lin = np.zeros(N * P, dtype=np.int64)
        w = np.ones(N * P, dtype=cdt)
        for k, t in enumerate(combo):
            idx, wk = plans[k]
            lin += idx[:, t] * strides[k]
            w = w * wk[:, t]
        vals = np.take_along_axis(flat, lin.reshape(N, 1, P), axis=2)
        out += vals * w.reshape(N, 1, P)
    return out.reshape(N, C, *out_sp).astype(dt)


@kernel("AffineGrid", since=20)
def affine_grid(theta, size, *, align_corners=0):
    size = [int(v) for v in np.asarray(size).reshape(-1)]
    N, spatial = size[0], size[2:]
    K = len(spatial)
    if theta.shape != (N, K, K + 1):
        raise ValueError(f"theta shape {theta.shape} does not match size {size}")
    cdt = np.dtype(np.float64) if theta.dtype == np.float64 else np.dtype(np.float32)
    axes_1d = []
    for L in spatial:
        if align_corners:
            axes_1d.append(np.linspace(-1.0, 1.0, L) if L > 1 else np.full(L, -1.0))
        else:
            axes_1d.append((2 * np.arange(L) + 1) / L - 1)
    mesh = np.meshgrid(*axes_1d, indexing="ij")
    # Homogeneous points ordered (x, y[, z], 1): innermost spatial dimension first.
    pts = np.stack([m.reshape(-1) for m in mesh[::-1]] + [np.ones(mesh[0].size)], axis=0)
    grid = theta.astype(cdt) @ pts.astype(cdt)  # (N, K, P)
    return grid.transpose(0, 2, 1).reshape(N, *spatial, K).astype(theta.dtype)
