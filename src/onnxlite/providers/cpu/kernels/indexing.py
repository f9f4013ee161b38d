"""Gather/Scatter family, TopK and Unique. Negative indices count from the end of their axis."""

from __future__ import annotations

import math

import numpy as np

from ..registry import kernel

_INT64 = np.dtype(np.int64)


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _norm_index(idx: np.ndarray, dim) -> np.ndarray:
    """Indices as int64 with negatives wrapped; raises on out-of-range values."""
    idx = np.asarray(idx)
    if idx.dtype != _INT64:
        idx = idx.astype(np.int64)
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < 0:
            idx = np.where(idx < 0, idx + dim, idx)
            lo = idx.min()
        if lo < 0 or (np.ndim(dim) == 0 and hi >= dim) or (np.ndim(dim) and (idx >= dim).any()):
            raise IndexError(f"index out of range [{-np.max(dim)}, {np.max(dim) - 1}]")
    return idx


# --- Gather family -------------------------------------------------------------------------------


@kernel("Gather", since=1)
def gather(data, indices, *, axis=0):
    ax = _axis(axis, data.ndim)
    if indices.ndim == 0:
        i = int(indices)
        n = data.shape[ax]
        if not -n <= i < n:
            raise IndexError(f"Gather index {i} is out of range for dimension {n}")
        key = (*(slice(None),) * ax, i, Ellipsis)
        return data[key]  # a view; 0-d (not a numpy scalar) for 1-D data
    # np.take wraps negative indices itself and checks the range.
    return np.take(data, indices, axis=ax)


def _element_index(indices: np.ndarray, axis: int, idx: np.ndarray) -> tuple[np.ndarray, ...]:
    """The full fancy-index tuple addressing data at ``idx`` along ``axis``, identity elsewhere."""
    r = indices.ndim
    out = []
    for d in range(r):
        if d == axis:
            out.append(idx)
        else:
            shape = [1] * r
            shape[d] = indices.shape[d]
            out.append(np.arange(indices.shape[d], dtype=np.int64).reshape(shape))
    return tuple(out)


@kernel("GatherElements", since=11)
def gather_elements(data, indices, *, axis=0):
    ax = _axis(axis, data.ndim)
    idx = _norm_index(indices, data.shape[ax])
    return data[_element_index(idx, ax, idx)]


def _nd_prep(data: np.ndarray, indices: np.ndarray, batch_dims: int):
    """Flatten the batch dims; returns (data [B, ...], index tuple for [B, Q], out prefix)."""
    k = indices.shape[-1]
    bshape = data.shape[:batch_dims]
    nb = math.prod(bshape)
    d = data.reshape((nb, *data.shape[batch_dims:]))
    idx = indices.reshape(nb, -1, k)
    dims = np.array(data.shape[batch_dims : batch_dims + k], dtype=np.int64)
    idx = _norm_index(idx, dims)
    b = np.arange(nb, dtype=np.int64).reshape(nb, 1)
    return d, (b, *(idx[..., j] for j in range(k))), indices.shape[:-1]


@kernel("GatherND", since=11)
def gather_nd(data, indices, *, batch_dims=0):
    k = indices.shape[-1]
    d, index, prefix = _nd_prep(data, indices, batch_dims)
    out = d[index]
    return out.reshape(prefix + data.shape[batch_dims + k :])


# --- Scatter family ------------------------------------------------------------------------------

_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _scatter(out: np.ndarray, index: tuple, updates: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        out[index] = updates
    else:
        try:
            ufunc = _UFUNCS[reduction]
        except KeyError:
            raise ValueError(f"unsupported reduction {reduction!r}") from None
        if out.dtype == np.bool_ and reduction in ("add", "mul"):
            ufunc = np.logical_or if reduction == "add" else np.logical_and
        ufunc.at(out, index, updates)
    return out


@kernel("ScatterND", since=11)
def scatter_nd(data, indices, updates, *, reduction="none"):
    k = indices.shape[-1]
    out = data.copy()
    idx = _norm_index(indices.reshape(-1, k), np.array(data.shape[:k], dtype=np.int64))
    index = tuple(idx[:, j] for j in range(k))
    upd = updates.reshape((idx.shape[0], *data.shape[k:]))
    return _scatter(out, index, upd, reduction)


@kernel("ScatterElements", since=11)
def scatter_elements(data, indices, updates, *, axis=0, reduction="none"):
    ax = _axis(axis, data.ndim)
    idx = _norm_index(indices, data.shape[ax])
    out = data.copy()
    return _scatter(out, _element_index(idx, ax, idx), updates, reduction)


@kernel("Scatter", since=9)
def scatter(data, indices, updates, *, axis=0):
    return scatter_elements(data, indices, updates, axis=axis)


@kernel("TensorScatter", since=24)
def tensor_scatter(past_cache, update, write_indices=None, *, axis=-2, mode="linear"):
    r = past_cache.ndim
    ax = _axis(axis, r)
    if ax == 0:
        raise ValueError("TensorScatter axis cannot be the batch axis 0")
    nb, cap, seq = past_cache.shape[0], past_cache.shape[ax], update.shape[ax]
    out = past_cache.copy()
    if write_indices is None:
        starts = [0] * nb
    else:
        starts = [int(v) for v in write_indices.reshape(-1).tolist()]
    pre = (slice(None),) * (ax - 1)
    for b in range(nb):
        s, dst = starts[b], out[b]
        if mode == "circular":
            key = (*pre, (s + np.arange(seq)) % cap)
            dst[key] = update[b]
        elif s + seq > cap or s < 0:
            raise ValueError(f"TensorScatter: write index {s} + {seq} exceeds {cap}")
        else:
            key = (*pre, slice(s, s + seq))
            dst[key] = update[b]
    return out


# --- TopK / Unique -------------------------------------------------------------------------------


def _order_rows(v: np.ndarray, largest: int) -> np.ndarray:
    """Per-row stable order of a 2-D array: by value (descending if largest), ties by position."""
    if largest:
        # Stable ascending sort of the reversed row, read backwards: descending values with the
        # lower position first among equal values.
        rev = np.argsort(v[:, ::-1], axis=1, kind="stable")[:, ::-1]
        return (v.shape[1] - 1) - rev
    return np.argsort(v, axis=1, kind="stable")


def _topk(x: np.ndarray, k: int, axis: int, largest: int) -> tuple[np.ndarray, np.ndarray]:
    ax = _axis(axis, x.ndim)
    n = x.shape[ax]
    if not 0 <= k <= n:
        raise ValueError(f"TopK: k={k} is out of range for axis of size {n}")
    xm = np.moveaxis(x, ax, -1)
    lead = xm.shape[:-1]
    if k == 0 or x.size == 0:
        idx = np.zeros((*lead, k), dtype=np.int64)
        return np.moveaxis(xm[..., :k], -1, ax), np.moveaxis(idx, -1, ax)
    rows = xm.reshape(-1, n)
    if (
        k * 8 < n
        and n >= 256
        and rows.dtype.kind in "iuf"
        and not (rows.dtype.kind == "f" and np.isnan(rows).any())
    ):
        # Select the k winners in O(n): everything beyond the k-th value, then the first
        # (lowest-index) ties of it; only those k are sorted.
        kth = n - k if largest else k - 1
        thr = np.partition(rows, kth, axis=1)[:, kth : kth + 1]
        beyond = rows > thr if largest else rows < thr
        tie = rows == thr
        need = k - beyond.sum(axis=1, keepdims=True)
        sel = beyond | (tie & (np.cumsum(tie, axis=1) <= need))
        cand = np.nonzero(sel)[1].reshape(-1, k)  # ascending positions in each row
        order = _order_rows(np.take_along_axis(rows, cand, axis=1), largest)
        idx = np.take_along_axis(cand, order, axis=1)
    else:
        idx = _order_rows(rows, largest)[:, :k]
    idx = idx.astype(np.int64, copy=False)
    vals = np.take_along_axis(rows, idx, axis=1)
    shape = (*lead, k)
    return np.moveaxis(vals.reshape(shape), -1, ax), np.moveaxis(idx.reshape(shape), -1, ax)


@kernel("TopK", since=1)
def topk_1(X, *, k, axis=-1):
    return _topk(X, int(k), axis, 1)


@kernel("TopK", since=10)
def topk(X, K, *, axis=-1, largest=1, sorted=1):
    return _topk(X, int(np.asarray(K).reshape(-1)[0]), axis, largest)


@kernel("Unique", since=11)
def unique(X, *, axis=None, sorted=1):
    if axis is None:
        flat = X.reshape(-1)
        y, first, inv, counts = np.unique(flat, return_index=True, return_inverse=True, return_counts=True)
        inv = inv.reshape(-1)
        ax = None
    else:
        ax = _axis(axis, X.ndim)
        y, first, inv, counts = np.unique(
            X, return_index=True, return_inverse=True, return_counts=True, axis=ax
        )
        inv = inv.reshape(-1)
    if not sorted:
        # Order of first occurrence: permute the sorted result by where each value first appears.
        perm = np.argsort(first, kind="stable")
        rank = np.empty_like(perm)
        rank[perm] = np.arange(perm.size)
        y = y[perm] if ax is None else np.take(y, perm, axis=ax)
        first, counts, inv = first[perm], counts[perm], rank[inv]
    return (
        y,
        first.astype(np.int64, copy=False),
        inv.astype(np.int64, copy=False),
        counts.astype(np.int64, copy=False),
    )
