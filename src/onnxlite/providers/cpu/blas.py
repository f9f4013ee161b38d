"""Matrix products on single-threaded BLAS, split into blocks across onnxlite's workers.

numpy's BLAS threads spin while they wait for work; when other processes compete for the cores
that spinning turns a 2-thread GEMM many times slower than a 1-thread one. During a run the
session keeps BLAS at one thread and :func:`matmul` splits a large product into column (or
row, or batch) blocks that the workers (:mod:`.workers`) compute concurrently.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .workers import run_all, split, workers

# Below this many multiply-adds a product runs on the calling thread: a hand-off to a worker
# costs tens of microseconds.
MIN_SPLIT_MACS = 1 << 22
_ALIGN = 16  # split columns and rows at multiples of a SIMD-friendly block


def _serial(jobs: list[tuple[Any, Any, Any]]) -> None:
    for a, b, o in jobs:
        np.matmul(a, b, out=o)


def _run(buckets: list[list[tuple[Any, Any, Any]]]) -> None:
    """matmul(a, b, out=o) for each job, one bucket per thread."""
    run_all([functools.partial(_serial, jobs) for jobs in buckets])


def _bounds(total: int, parts: int) -> list[tuple[int, int]]:
    return split(total, parts, _ALIGN)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)`` for same-dtype float arrays, split across the workers when large."""
    if b.ndim < 2 or a.ndim < 2 or a.size * b.shape[-1] < MIN_SPLIT_MACS:
        return np.matmul(a, b)  # checked first: small products are where per-call cost shows
    n = workers()
    if n <= 1 or a.dtype != b.dtype or a.dtype.kind != "f":
        return np.matmul(a, b)
    m, k, cols = a.shape[-2], a.shape[-1], b.shape[-1]
    if b.ndim == 2:
        rows = a.size // k if k else 0
        if rows * k * cols < MIN_SPLIT_MACS:
            return np.matmul(a, b)
        out = np.empty((*a.shape[:-1], cols), dtype=a.dtype)
        o2 = out.reshape(rows, cols)
        a2 = a.reshape(rows, k)  # a copy only if a was not contiguous
        if cols >= n * 2 * _ALIGN:
            _run([[(a2, b[:, s:e], o2[:, s:e])] for s, e in _bounds(cols, n)])
        elif rows >= n * _ALIGN:
            _run([[(a2[s:e], b, o2[s:e])] for s, e in _bounds(rows, n)])
        else:
            return np.matmul(a, b)
        return out
    if a.ndim == 2 and b.ndim == 3:  # convolution: weights times each image's patch matrix
        if b.shape[0] * m * k * cols < MIN_SPLIT_MACS or cols < n * 2 * _ALIGN:
            return np.matmul(a, b)
        out = np.empty((b.shape[0], m, cols), dtype=a.dtype)
        _run([[(a, bi[:, s:e], oi[:, s:e]) for bi, oi in zip(b, out)] for s, e in _bounds(cols, n)])
        return out
    if a.ndim == b.ndim and a.shape[:-2] == b.shape[:-2] and a.shape[0] >= n:
        if a.size // k * k * cols < MIN_SPLIT_MACS:
            return np.matmul(a, b)
        out = np.empty((*a.shape[:-1], cols), dtype=a.dtype)
        step = -(-a.shape[0] // n)
        _run([[(a[s : s + step], b[s : s + step], out[s : s + step])] for s in range(0, a.shape[0], step)])
        return out
    return np.matmul(a, b)


# Row counts up to which a product with weights stored transposed is computed feature-major
# (beyond, the two orders run alike: see providers.cpu.layout).
FEATURE_MAJOR_MAX_ROWS = 512


def matmul_feature_major(a: np.ndarray, bt: np.ndarray) -> np.ndarray:
    """``a @ bt.T`` for float32 ``a`` [..., K] and a weight matrix stored transposed, ``bt``
    [N, K]: computed as ``bt @ a.T`` into an [N, rows] array, split by weight rows across the
    workers, whose transpose (a view) is returned; in row-major order when the rows are many."""
    k = a.shape[-1]
    rows = a.size // k if k else 0
    if not 0 < rows <= FEATURE_MAJOR_MAX_ROWS:
        return matmul(a, bt.T)
    n = bt.shape[0]
    a2 = a.reshape(rows, k)
    d = np.empty((n, rows), a.dtype)
    nw = workers()
    if nw > 1 and rows * k * n >= MIN_SPLIT_MACS and n >= nw * 2 * _ALIGN:
        _run([[(bt[s:e], a2.T, d[s:e])] for s, e in _bounds(n, nw)])
    else:
        np.matmul(bt, a2.T, out=d)
    return d.T.reshape(*a.shape[:-1], n)
