"""Depthwise 2-D float32 convolutions on large maps, as shifted passes over flattened maps.

With stride 1, a block of zero-padded input maps laid end to end is one flat array, and kernel
tap (i, j) of every output position is that array shifted by ``i * Wp + j`` elements (windows
that run past a row or a map end land on positions that are cropped away). So each tap is one
multiply by the channels' weights (a per-row broadcast over rows of Hp * Wp elements, run with
numpy's buffer shrunk: see :mod:`..broadcast`) and one add, over the whole block. With stride s
the padded maps are first split into s * s phases (every s-th row and column): each tap then
reads one phase, shifted by ``(i // s) * Wq + j // s``. Blocks of some 64K elements keep the
passes in cache. Against the patch-matrix path (its tap copies and one tiny product per channel),
3x3, BLAS on 2 threads: 136 channels of 28x28 531 -> 354 us, 144 of 56x56 1.89 -> 1.14 ms,
32 of 112x112 1.64 -> 1.00 ms, stride 2: 112 channels 56x56 -> 28x28 1.33 -> 1.14 ms. On maps
of 14x14 or less the channels-last path (:mod:`._depthwise2d`) does better.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import workers
from ..broadcast import BUFSIZE
from ._depthwise2d import float32_depthwise_2d

ENABLED = True
_MIN_OUTPUTS = {1: 24 * 24, 2: 14 * 14}  # per stride: output maps from this size on
_SPLIT_OUTPUTS = 56 * 56  # with workers, output maps from this size on take the patch path
_BLOCK = 1 << 16  # elements of one block of phase maps


def applies(
    x: np.ndarray,
    w: np.ndarray,
    group: int,
    s: Sequence[int],
    d: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    out: Sequence[int],
) -> bool:
    """Whether a convolution is a float32 2-D depthwise one (one output channel per input
    channel, no dilation) on maps large enough for :func:`conv`."""
    if not ENABLED or not float32_depthwise_2d(x, w, group) or tuple(d) != (1, 1):
        return False
    if s[0] != s[1] or s[0] not in _MIN_OUTPUTS or min(*pb, *pe) < 0:
        return False
    if workers.workers() > 1 and out[0] * out[1] >= _SPLIT_OUTPUTS:
        # the patch-matrix path splits its large maps' bands across the workers: as fast or
        # faster there (32 channels of 112x112: 1.14 ms against 1.23)
        return False
    return out[0] * out[1] >= _MIN_OUTPUTS[s[0]]


def conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    s: Sequence[int],
    pb: Sequence[int],
    out: Sequence[int],
) -> np.ndarray:
    """Depthwise convolution (plus bias) of float32 (N, C, H, W) by (C, 1, KH, KW), stride
    ``s[0]`` along both axes, begin pads ``pb`` >= 0; the end pads are implied by ``out``."""
    n, c = x.shape[:2]
    y = np.empty((n, c, *out), np.float32)
    bias = None if b is None else b.astype(np.float32, copy=False).reshape(c, 1, 1)
    wt = w.reshape(c, -1)
    # On the calling thread alone: split across the workers, the blocks' dozens of short passes
    # make the two threads wait on each other's interpreter lock (32 channels of 112x112:
    # 1.23 -> 1.53 ms).
    for img in range(n):
        _image(x[img], wt, bias, w.shape[2:], s[0], pb, y[img])
    return y


def _image(
    x: np.ndarray,
    wt: np.ndarray,
    bias: np.ndarray | None,
    k: Sequence[int],
    s: int,
    pb: Sequence[int],
    y: np.ndarray,
) -> None:
    """One image, x (C, H, W), into y (C, Ho, Wo), in blocks of channels."""
    c, h, wd = x.shape
    ho, wo = y.shape[1:]
    kh, kw = k
    hq, wq = ho + (kh - 1) // s, wo + (kw - 1) // s  # rows and columns of one phase map
    plane = hq * wq
    cb = max(1, min(c, _BLOCK // plane))
    spare = ((kh - 1) // s) * wq + (kw - 1) // s  # the last windows read this far past the end
    # phase p = (a, b): padded rows a, a + s, ... and columns b, b + s, ...; zero where padding
    # (only the input's positions are written: the padding stays zero from block to block)
    phases = np.zeros((s * s, cb * plane + spare), np.float32)
    places = [_place(a, pb[0], s, hq, h) + _place(b, pb[1], s, wq, wd) for a in range(s) for b in range(s)]
    acc = np.empty(cb * plane, np.float32)
    tmp = np.empty(cb * plane, np.float32)
    taps = [((i % s) * s + j % s, (i // s) * wq + j // s) for i in range(kh) for j in range(kw)]
    # the per-channel products repeat each weight along a row: numpy's buffer as in ..broadcast
    old = np.setbufsize(BUFSIZE)
    try:
        for b0 in range(0, c, cb):
            m = min(cb, c - b0)
            size = m * plane
            for p, (q0, q1, r0, p0, p1, col0) in enumerate(places):
                if q1 > q0 and p1 > p0:
                    dst = phases[p, :size].reshape(m, hq, wq)[:, q0:q1, p0:p1]
                    dst[...] = x[
                        b0 : b0 + m,
                        r0 : r0 + (q1 - q0 - 1) * s + 1 : s,
                        col0 : col0 + (p1 - p0 - 1) * s + 1 : s,
                    ]
            a2, t2 = acc[:size].reshape(m, plane), tmp[:size].reshape(m, plane)
            for t, (p, shift) in enumerate(taps):
                src = phases[p, shift : shift + size].reshape(m, plane)
                if t == 0:
                    np.multiply(src, wt[b0 : b0 + m, t : t + 1], out=a2)
                else:
                    np.multiply(src, wt[b0 : b0 + m, t : t + 1], out=t2)
                    a2 += t2
            crop = a2.reshape(m, hq, wq)[:, :ho, :wo]
            if bias is None:
                y[b0 : b0 + m] = crop
            else:  # added while cropping: no pass of its own
                np.add(crop, bias[b0 : b0 + m], out=y[b0 : b0 + m])
    finally:
        np.setbufsize(old)


def _place(phase: int, pad: int, s: int, size: int, n: int) -> tuple[int, int, int]:
    """Along one axis, the phase positions [q0, q1) that hold input, and the input index of q0:
    phase position q is padded index ``q * s + phase``, input index ``q * s + phase - pad``."""
    first = phase - pad
    q0 = max(0, -(first // s)) if first < 0 else 0
    q1 = min(size, (n - 1 - first) // s + 1) if n - 1 >= first else 0
    return q0, max(q0, q1), first + q0 * s
