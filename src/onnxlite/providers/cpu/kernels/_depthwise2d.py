"""Depthwise 2-D float32 convolutions on small maps, computed channels-last.

In NCHW order a kernel tap of a depthwise convolution is one product per channel over a short
map: numpy's loops then run over rows of a few elements (14 on a 14 x 14 map), and the
patch-matrix path runs one tiny product per channel. Channels-last, the padded input is an
(Hp, Wp, C) array, and the tap (i, j) of every output row is one contiguous run of Wo * C
elements (stride 1), multiplied by the tap's weights laid out once per output row: each tap is
two long element-wise passes over the whole output. The input and output change layout once
each, the bias added on the way back. ShuffleNet's 272-channel 14 x 14 layers: about 370 ->
270 us, its 544-channel 7 x 7 ones 290 -> 150 us (the model about 8% faster on the numpy
provider: 15.7 -> 14.5 ms, medians of four alternating pairs). On large maps the passes leave
the cache and the patch-matrix product is faster (a 112-channel 56 x 56 layer: 1.7 ms against
2.7), and with few channels the rows are short again, so only small maps of many channels come
here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from .. import workers
from ._derived import DerivedWeights

ENABLED = True
# Measured on 3x3 kernels: faster from 128 channels, on maps of up to 14 x 14 outputs (7 x 7 with
# a stride, whose taps are strided and run over C elements at a time); 1.2-1.9x there, 0.6-0.9x
# on larger maps or fewer channels.
_MIN_CHANNELS = 128
_MAX_OUTPUTS = 14 * 14
_MAX_STRIDED_OUTPUTS = 8 * 8

# Per-tap weights, (KH * KW, C), of read-only weights. Their repetition along an output row is
# made per call (some 10 us): kept, it would hold Wo times the weights for as long as the session.
_TAPS = DerivedWeights()


def float32_depthwise_2d(x: np.ndarray, w: np.ndarray, group: int) -> bool:
    """A float32 2-D convolution with one output channel per input channel."""
    if x.dtype != np.float32 or w.dtype != np.float32 or x.ndim != 4 or w.ndim != 4:
        return False
    c = x.shape[1]
    return group == c and w.shape[0] == c and w.shape[1] == 1


def applies(
    x: np.ndarray,
    w: np.ndarray,
    group: int,
    s: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    out: Sequence[int],
) -> bool:
    """Whether a convolution is a float32 2-D depthwise one (one output channel per input
    channel) that :func:`conv` computes faster."""
    if not ENABLED or not float32_depthwise_2d(x, w, group) or x.shape[1] < _MIN_CHANNELS:
        return False
    most = _MAX_OUTPUTS if s[1] == 1 else _MAX_STRIDED_OUTPUTS
    return min(*pb, *pe) >= 0 and 0 < out[0] * out[1] <= most


def conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    s: Sequence[int],
    d: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    out: Sequence[int],
) -> np.ndarray:
    """Depthwise convolution (plus bias) of float32 (N, C, H, W) by (C, 1, KH, KW)."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    ho, wo = out
    taps = _TAPS.get(w, lambda w: np.ascontiguousarray(w.reshape(c, kh * kw).T))
    # each tap's weights once per output column: the products run over whole rows
    wt = np.ascontiguousarray(np.broadcast_to(taps[:, None, :], (kh * kw, wo, c)))
    bias = None if b is None else b.astype(np.float32, copy=False).reshape(c, 1, 1)
    # rows and columns the windows reach (pads may leave some input unread)
    hp = max(pb[0] + h + pe[0], (ho - 1) * s[0] + (kh - 1) * d[0] + 1)
    wp = max(pb[1] + wd + pe[1], (wo - 1) * s[1] + (kw - 1) * d[1] + 1)
    xp = np.zeros((hp, wp, c), np.float32)
    acc = np.empty((ho, wo, c), np.float32)
    y = np.empty((n, c, ho, wo), np.float32)
    offsets = [(i * d[0], j * d[1]) for i in range(kh) for j in range(kw)]
    for img in range(n):
        xp[pb[0] : pb[0] + h, pb[1] : pb[1] + wd] = x[img].transpose(1, 2, 0)
        workers.for_rows(ho, wo * c, functools.partial(_rows, xp, wt, offsets, s, acc))
        back = acc.transpose(2, 0, 1)
        if bias is None:
            y[img] = back
        else:  # added on the way back to channels-first: no pass of its own
            np.add(back, bias, out=y[img])
    return y


def _rows(
    xp: np.ndarray,
    wt: np.ndarray,
    offsets: list[tuple[int, int]],
    s: Sequence[int],
    acc: np.ndarray,
    r0: int,
    r1: int,
) -> None:
    """Output rows [r0, r1) of one image into ``acc`` (Ho, Wo, C)."""
    _, wo, c = acc.shape
    dst = acc[r0:r1]
    tmp = np.empty_like(dst)
    flat = s[1] == 1  # each tap's rows are contiguous runs of Wo * C: one long pass
    for t, (oi, oj) in enumerate(offsets):
        v = xp[oi + r0 * s[0] : oi + (r1 - 1) * s[0] + 1 : s[0], oj : oj + (wo - 1) * s[1] + 1 : s[1]]
        wv = wt[t]
        o, tm = dst, tmp
        if flat:
            v, wv = v.reshape(r1 - r0, wo * c), wv.reshape(-1)
            o, tm = dst.reshape(r1 - r0, wo * c), tmp.reshape(r1 - r0, wo * c)
        if t == 0:
            np.multiply(v, wv, out=o)
        else:
            np.multiply(v, wv, out=tm)
            o += tm
