"""Winograd F(2x2, 3x3) for float32 3x3 stride-1 convolutions (Lavin & Gray, 2015).

Each 2x2 block of outputs comes from a 4x4 input tile d (tiles overlap by 2): V = B^T d B per tile
and channel, U = G g G^T per filter, 16 independent products M[k] = U[k] @ V[k] over the channels,
and Y = A^T M A per tile. That is 16 multiplies per 4 outputs instead of 36, so the products, which
dominate a convolution, shrink 2.25x; the transforms around them are additions only.

The zero-padded input is split into four parity planes (even or odd rows by even or odd columns)
holding one element per tile, laid out (C, N, th + 1, tw + 1). Every term of B^T d B is then a
plane shifted by nothing, one element or one plane row, so the transform runs as ufuncs over long
contiguous 1-D runs: numpy is several times slower per element on 2-D strided views. The price is
one spare row and column per plane that ride along through the products and are dropped at the end.

The transforms subtract inputs from each other, so an infinite input gives NaN in outputs where a
direct convolution could give an infinity (it gives NaN too wherever weights of both signs meet it).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from .. import blas, workers
from ._derived import DerivedWeights

_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
# G g G^T and A^T m A as products with flattened tiles: row 4i+j of kron(G, G) gives U[i, j]
_KG = np.kron(_G, _G).astype(np.float32)  # (16, 9)
_KA = np.kron(_AT, _AT).astype(np.float32)  # (4, 16)

# Plane elements one transform step works on: its buffers then stay in the core's cache.
_CHUNK = 1 << 16
# Bound on the transformed input held at once; larger inputs go in groups of images or rows.
# Kept well under glibc's largest mmap threshold (32 MiB): a larger buffer is mapped afresh on
# every call and faults in every page (VGG-19: 46 ms of system time per run at 64 MiB, 1 at 8).
_V_BYTES = 8 << 20
# Inputs whose 16 transformed matrices hold up to this many elements each are transformed once
# and shared by the workers (measured on 2 cores: the transforms are then too short to gain from
# running side by side).
_SHARED_V = 96 << 10

ENABLED = True

# Transformed filters of read-only weights, computed once per weights array.
_U = DerivedWeights()


def _transformed(w: np.ndarray) -> np.ndarray:
    """U = G g G^T of every filter, (16, M, C); computed once per read-only weights array."""
    m, c = w.shape[:2]
    return _U.get(w, lambda w: blas.matmul(_KG, w.reshape(m * c, 9).T).reshape(16, m, c))


def release(w: np.ndarray) -> None:
    """Drop the transformed filters of ``w``, if cached: a call took the im2col path for them
    (the thread mode changed to one where im2col measured faster), and a session that settles on
    that mode should not hold 16/9 of its 3x3 weights for a mode it no longer runs (Inception-v1:
    17 MiB). A later call in the other mode transforms them again."""
    _U.drop(w)


def applies(
    x: np.ndarray,
    w: np.ndarray,
    s: Sequence[int],
    d: Sequence[int],
    pb: Sequence[int],
    pe: Sequence[int],
    out: Sequence[int],
) -> bool:
    """Whether a dense convolution should run as :func:`conv3x3`: float32, 3x3, stride and
    dilation 1, and a shape where it measured faster than the patch-matrix GEMM."""
    if not ENABLED or x.dtype != np.float32 or w.dtype != np.float32 or w.shape[2:] != (3, 3):
        return False
    if tuple(s) != (1, 1) or tuple(d) != (1, 1) or min(*pb, *pe) < 0:
        return False
    m, c = w.shape[:2]
    th, tw = -(-out[0] // 2), -(-out[1] // 2)
    tiles = x.shape[0] * th * tw
    # Few channels: the transforms cost more than the products they save. Fewer than 7x7 tiles:
    # the spare plane row and column outweigh the savings. Weights that change between calls
    # are transformed on every call, which pays off on many tiles only, or with few output
    # channels, where the patch-matrix GEMM is slow too.
    if c < 32 or m < 16 or min(th, tw) < 7:
        return False
    if workers.workers() <= 1 and (m > c or (m >= 64 and c <= 64)):
        # Products on BLAS's own threads (or one thread), transforms on one: with more outputs
        # than inputs, or 64 channels or fewer, the im2col GEMM measured faster (im2col time /
        # Winograd time, BLAS on 2 threads: 32->128 at 27x27 0.67, 64->256 at 13x13 0.70,
        # 128->192 at 28x28 0.87, 64->64 at 224x224 0.85; against 128->32 at 28x28 1.49,
        # 256->256 at 28x28 1.25, 512->512 at 28x28 1.44).
        return False
    return not w.flags.writeable or tiles >= 196 or (m <= 32 and tiles >= 49)


def conv3x3(
    x: np.ndarray, w: np.ndarray, pb: Sequence[int], pe: Sequence[int], out: Sequence[int]
) -> np.ndarray:
    """3x3 stride-1 convolution of float32 (N, C, H, W) by (M, C, 3, 3), begin pads pb >= 0.

    The end pads ``pe`` (>= 0) are implied by the output size ``out``.
    """
    n, c = x.shape[:2]
    m = w.shape[0]
    ho, wo = out
    y = np.empty((n, m, ho, wo), np.float32)
    w9 = w.reshape(m * c, 9).T
    th, tw = -(-ho // 2), -(-wo // 2)
    span = n * (th + 1) * (tw + 1)  # one channel's planes
    nw = workers.workers() if n * m * c * ho * wo * 4 >= blas.MIN_SPLIT_MACS else 1
    # Two threads running the transforms (many short numpy calls) at once mostly wait for each
    # other's interpreter lock; one thread's transforms overlap well with another's products.
    if nw > 1 and m >= 16 * nw and c * span <= min(_SHARED_V, _V_BYTES // 64):
        # small inputs: one thread transforms the input while another transforms the filters,
        # then each multiplies and transforms back a share of the output channels
        v = np.empty((16, c, span), np.float32)
        if w.flags.writeable:
            u = np.empty((16, m, c), np.float32)
            workers.run_all(
                [
                    functools.partial(_input_transform, x, v, pb[0], pb[1], th, tw),
                    functools.partial(np.matmul, _KG, w9, out=u.reshape(16, m * c)),
                ]
            )
        else:
            u = _transformed(w)
            _input_transform(x, v, pb[0], pb[1], th, tw)
        shares = workers.split(m, nw, 8)
        workers.run_all([functools.partial(_products, u[:, m0:m1], v, y[:, m0:m1]) for m0, m1 in shares])
        return y
    # larger ones: each thread runs the whole pipeline on its own images or bands of output rows
    u = _transformed(w)
    row_bytes = 16 * 4 * c * (tw + 1)  # transformed input per image and row of tiles
    if (th + 1) * row_bytes <= _V_BYTES and (n % nw == 0 or n >= 4 * nw):
        per = min(-(-n // nw), max(1, _V_BYTES // ((th + 1) * row_bytes)))
        pieces = [(i, min(n, i + per), 0, ho) for i in range(0, n, per)]
    else:
        bands = max(1 if n % nw == 0 else nw, -(-th * row_bytes // _V_BYTES))
        rows = 2 * -(-th // bands)
        pieces = [(i, i + 1, r0, min(ho, r0 + rows)) for i in range(n) for r0 in range(0, ho, rows)]
    k = min(nw, len(pieces))
    workers.run_all([functools.partial(_pieces, x, u, pb, y, pieces[j::k]) for j in range(k)])
    return y


def _pieces(x: np.ndarray, u: np.ndarray, pb: Sequence[int], y: np.ndarray, pieces) -> None:
    prev = workers.set_workers(1)  # the products of a piece stay on its thread
    try:
        for i0, i1, r0, r1 in pieces:
            xb = x[i0:i1, :, max(0, r0 - pb[0]) : max(0, r1 + 2 - pb[0])]
            _tiles(xb, u, max(0, pb[0] - r0), pb[1], y[i0:i1, :, r0:r1])
    finally:
        workers.set_workers(prev)


def _tiles(x: np.ndarray, u: np.ndarray, top: int, left: int, y: np.ndarray) -> None:
    """y = the convolution of x (top rows and left columns of zeros added) with transformed u."""
    n, c = x.shape[:2]
    ho, wo = y.shape[2:]
    th, tw = -(-ho // 2), -(-wo // 2)
    span = n * (th + 1) * (tw + 1)  # one channel's planes
    v = np.empty((16, c, span), np.float32)
    _input_transform(x, v, top, left, th, tw)
    _products(u, v, y)


def _products(u: np.ndarray, v: np.ndarray, y: np.ndarray) -> None:
    """y (N, M, Ho, Wo) from the 16 products of u (16, M, C) and v (16, C, N * planes)."""
    th, tw = -(-y.shape[2] // 2), -(-y.shape[3] // 2)
    _output_transform(np.matmul(u, v), y, th, tw)


def _ranges(channels: int, span: int) -> tuple[list[tuple[int, int]], int]:
    """Channel ranges of about _CHUNK elements each, and their largest size."""
    size = -(-channels // -(-channels * span // _CHUNK))
    return [(c0, min(channels, c0 + size)) for c0 in range(0, channels, size)], size


# B^T z, one term per row, for z = (even[k], odd[k], even[k + 1], odd[k + 1]): the 4 input rows
# (or columns) of the tile at k, from the planes of even and odd rows (or columns)
_BT_TERMS = ((np.subtract, 0, 2), (np.add, 1, 2), (np.subtract, 2, 1), (np.subtract, 1, 3))


def _input_transform(x: np.ndarray, v: np.ndarray, top: int, left: int, th: int, tw: int) -> None:
    """V = B^T d B into v (16, C, N * planes)."""
    n, c, h, w = x.shape
    r = tw + 1
    span = n * (th + 1) * r
    ranges, cb = _ranges(c, span)
    # shifted operands read up to a plane row past a range's end: spare zeros (or the next
    # channel, which lands in spare rows only)
    q = np.zeros((2, 2, cb * span + r + 1), np.float32)
    db = np.zeros((2, cb * span + r), np.float32)
    fills = []  # (row parity, column parity, plane rows, plane columns, input rows, input columns)
    for rp in range(2):
        i0 = (top - rp + 1) // 2  # the first plane row that holds an input row
        s0 = 2 * i0 + rp - top
        nr = max(0, min(th + 1 - i0, (h - s0 + 1) // 2))
        for cp in range(2):
            j0 = (left - cp + 1) // 2
            t0 = 2 * j0 + cp - left
            nc = max(0, min(r - j0, (w - t0 + 1) // 2))
            if nr > 0 and nc > 0:
                fills.append(
                    (rp, cp, slice(i0, i0 + nr), slice(j0, j0 + nc), slice(s0, h, 2), slice(t0, w, 2))
                )
    for c0, c1 in ranges:
        ln = (c1 - c0) * span
        for rp, cp, pr, pc, xr, xc in fills:
            plane = q[rp, cp, :ln].reshape(c1 - c0, n, th + 1, r)
            src = x[:, c0:c1, xr, xc].transpose(1, 0, 2, 3)
            np.copyto(plane[:, :, pr, pc], src[:, :, : pr.stop - pr.start, : pc.stop - pc.start])
        for nu, (op, i, j) in enumerate(_BT_TERMS):
            for rp in range(2):  # column nu of d B, for even and odd input rows
                z = (q[rp, 0, :ln], q[rp, 1, :ln], q[rp, 0, 1 : ln + 1], q[rp, 1, 1 : ln + 1])
                op(z[i], z[j], out=db[rp, :ln])
            z = (db[0, :ln], db[1, :ln], db[0, r : r + ln], db[1, r : r + ln])
            for xi, (op2, i2, j2) in enumerate(_BT_TERMS):
                op2(z[i2], z[j2], out=v[4 * xi + nu, c0:c1].reshape(-1))


def _output_transform(prod: np.ndarray, y: np.ndarray, th: int, tw: int) -> None:
    """Y = A^T M A from prod (16, M, N * planes)."""
    n, m = y.shape[:2]
    span = prod.shape[2]
    ranges, mb = _ranges(m, span)
    flat = prod.reshape(16, -1)
    buf = np.empty(4 * mb * span, np.float32)
    for m0, m1 in ranges:
        ln = (m1 - m0) * span
        o = buf[: 4 * ln].reshape(4, ln)
        np.matmul(_KA, flat[:, m0 * span : m1 * span], out=o)
        tiles = o.reshape(2, 2, m1 - m0, n, th + 1, tw + 1).transpose(0, 1, 3, 2, 4, 5)
        for a in range(2):
            for b in range(2):  # output (2i + a, 2j + b) of tile (i, j), cut to the output size
                dst = y[:, m0:m1, a::2, b::2]
                np.copyto(dst, tiles[a, b, :, :, : dst.shape[2], : dst.shape[3]])
