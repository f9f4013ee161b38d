"""Stride-1 float32 convolutions as one BLAS product per kernel tap, accumulated in place.

The zero-padded input of one image is a (C, Hp * Wp) matrix; the output rows of tap (i, j) read
that matrix shifted by ``i * Wp + j`` elements, a window of the same buffer with the same
leading dimension. So ``Y = sum over taps of W[:, :, i, j] @ window(i, j)`` is KH * KW GEMMs
accumulating into one (M, Ho * Wp) output (BLAS's ``beta = 1``), and no patch matrix is copied.
Each output row carries Wp - Wo spare columns (windows spill across row ends); they are dropped
while the bias is added. With 64 to 160 input channels and maps of 28 x 28 or more this measured
1.05-1.4x faster than the patch-matrix GEMM or Winograd (numpy's OpenBLAS on 2 threads: VGG-19's
64-channel 224 x 224 layer 30.5 -> 21.4 ms, DenseNet's 128 -> 32 at 56 x 56 2.40 -> 1.86 ms).
With fewer channels each product is too thin; on smaller maps or with more channels the
patch-matrix GEMM and Winograd do better.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from .. import blas, cblas, workers
from ._derived import DerivedWeights

ENABLED = True
_MIN_CHANNELS, _MAX_CHANNELS = 64, 160
_MIN_OUTPUTS = 28 * 28
# One image's padded input and full-width output each stay below this (and so below glibc's
# largest mmap threshold: a larger buffer would be mapped and faulted in afresh on every call).
_MAX_BYTES = 16 << 20

# Per-tap weight matrices (KH * KW, M, C) of read-only weights.
_TAPS = DerivedWeights()


def applies(
    x: np.ndarray,
    w: np.ndarray,
    s: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    out: Sequence[int],
) -> bool:
    """Whether a dense 2-D convolution should run as :func:`conv_taps`."""
    if not ENABLED or x.dtype != np.float32 or w.dtype != np.float32 or x.ndim != 4:
        return False
    if tuple(s) != (1, 1) or min(*pb, *pe) < 0 or math.prod(w.shape[2:]) < 2:
        return False
    c = x.shape[1]
    if not _MIN_CHANNELS <= c <= _MAX_CHANNELS or math.prod(out) < _MIN_OUTPUTS:
        return False
    hp, wp = _padded_size(x, pb, pe)
    if max(c * hp * wp, w.shape[0] * out[0] * wp) * 4 > _MAX_BYTES:
        return False
    return cblas.available()


def _padded_size(x: np.ndarray, pb: Sequence[int], pe: Sequence[int]) -> tuple[int, int]:
    """Rows and columns of one padded input map, with one spare row: the last tap's window runs
    up to (KW - 1) * dilation past the padded map."""
    return x.shape[2] + pb[0] + pe[0] + 1, x.shape[3] + pb[1] + pe[1]


def conv_taps(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    d: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    out: Sequence[int],
) -> np.ndarray:
    """Convolution (plus bias) of float32 (N, C, H, W) by (M, C, KH, KW), stride 1, pads >= 0."""
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    ho, wo = out
    hp, wp = _padded_size(x, pb, pe)
    taps = _TAPS.get(w, lambda w: np.ascontiguousarray(w.transpose(2, 3, 0, 1)).reshape(kh * kw, m, c))
    offsets = [i * d[0] * wp + j * d[1] for i in range(kh) for j in range(kw)]
    bias = None if b is None else b.astype(np.float32, copy=False).reshape(m, 1, 1)
    y = np.empty((n, m, ho, wo), np.float32)
    xp = np.zeros((c, hp, wp), np.float32)
    full = np.empty((m, ho * wp), np.float32)
    nw = workers.workers() if n * m * c * kh * kw * ho * wo >= blas.MIN_SPLIT_MACS else 1
    bands = workers.split(ho, min(nw, ho))
    for i in range(n):
        xp[:, pb[0] : pb[0] + h, pb[1] : pb[1] + wd] = x[i]
        jobs = [functools.partial(_band, xp, taps, offsets, full, y[i], bias, r0, r1) for r0, r1 in bands]
        workers.run_all(jobs)
    return y


def _band(
    xp: np.ndarray,
    taps: np.ndarray,
    offsets: list[int],
    full: np.ndarray,
    y: np.ndarray,
    bias: np.ndarray | None,
    r0: int,
    r1: int,
) -> None:
    """Output rows [r0, r1) of one image: the tap products, then the kept columns plus bias."""
    c, hp, wp = xp.shape
    m = taps.shape[1]
    cols = (r1 - r0) * wp
    base = xp.ctypes.data + r0 * wp * 4
    dst, ldc = full.ctypes.data + r0 * wp * 4, full.shape[1]
    for t, off in enumerate(offsets):
        cblas.sgemm(m, cols, c, taps[t].ctypes.data, c, base + off * 4, hp * wp, 1.0 if t else 0.0, dst, ldc)
    kept = full[:, r0 * wp : r1 * wp].reshape(m, r1 - r0, wp)[:, :, : y.shape[2]]
    if bias is None:
        y[:, r0:r1] = kept
    else:
        np.add(kept, bias, out=y[:, r0:r1])
