"""Shape and data-movement kernels: Reshape, Transpose, Slice, Concat, Split, Pad, Expand...

Kernels that only re-index (Reshape, Flatten, Transpose, Squeeze/Unsqueeze, Slice, Split, Identity)
return numpy views: no copy on the hot path. Inputs are never written, so sharing memory is safe.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ....types import np_dtype
from ..registry import kernel

_INT64 = np.dtype(np.int64)


def _ints(v: Any) -> list[int]:
    """An int list from a 1-D tensor, a scalar tensor or an attribute list."""
    if isinstance(v, np.ndarray):
        return v.reshape(-1).astype(np.int64, copy=False).tolist()
    if isinstance(v, (list, tuple)):
        return [int(i) for i in v]
    return [int(v)]


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


# --- Reshape / Flatten / Transpose / Squeeze / Unsqueeze ---------------------------------------


def _reshape(data: np.ndarray, dims: list[int], allowzero: int) -> np.ndarray:
    if not allowzero and 0 in dims:
        beyond = [i for i, d in enumerate(dims) if d == 0 and i >= data.ndim]
        if beyond:
            raise ValueError(
                f"Reshape: shape {dims} has 0 (copy the input's dim) at index {beyond[0]}, beyond "
                f"the input's rank {data.ndim}"
            )
        dims = [data.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    if -1 in dims and 0 in dims:  # numpy cannot infer -1 next to a literal zero
        known = math.prod(d for d in dims if d != -1)
        if data.size != 0 or known != 0:
            raise ValueError(f"cannot reshape {data.shape} to {dims}")
        dims = [0 if d == -1 else d for d in dims]
    return data.reshape(dims)


@kernel("Reshape", since=5)
def reshape(data, shape, *, allowzero=0):
    return _reshape(data, shape.tolist(), allowzero)


@kernel("Flatten", since=1)
def flatten(x, *, axis=1):
    r = x.ndim
    if not -r <= axis <= r:
        raise ValueError(f"Flatten axis {axis} is out of range for rank {r}")
    if axis < 0:
        axis += r
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@kernel("Transpose", since=1)
def transpose(data, *, perm=None):
    return np.transpose(data, perm)


def _squeeze(data: np.ndarray, axes: list[int] | None) -> np.ndarray:
    if axes is None or len(axes) == 0:
        return data.reshape([d for d in data.shape if d != 1])
    return np.squeeze(data, axis=tuple(axes))


@kernel("Squeeze", since=1)
def squeeze_1(data, *, axes=None):
    return _squeeze(data, axes)


@kernel("Squeeze", since=13)
def squeeze(data, axes=None):
    return _squeeze(data, None if axes is None else _ints(axes))


def _unsqueeze(data: np.ndarray, axes: list[int]) -> np.ndarray:
    r = data.ndim + len(axes)
    norm = sorted(_axis(a, r) for a in axes)
    if len(set(norm)) != len(norm):
        raise ValueError(f"Unsqueeze axes {axes} contain duplicates")
    shape = list(data.shape)
    for a in norm:
        shape.insert(a, 1)
    return data.reshape(shape)


@kernel("Unsqueeze", since=1)
def unsqueeze_1(data, *, axes):
    return _unsqueeze(data, axes)


@kernel("Unsqueeze", since=13)
def unsqueeze(data, axes):
    return _unsqueeze(data, _ints(axes))


# --- Concat / Split / Slice ----------------------------------------------------------------------


@kernel("Concat", since=1)
def concat(*inputs, axis=1):
    if len(inputs) == 1:
        _axis(axis, inputs[0].ndim)  # one input is handed on, but its axis must still be valid
        return inputs[0]
    return np.concatenate(inputs, axis=axis)


def _split_sizes(dim: int, n: int, uneven: bool) -> list[int]:
    if n <= 0:
        raise ValueError("Split needs at least one output")
    if not uneven and dim % n:
        raise ValueError(f"Split: dimension {dim} does not divide into {n} equal parts")
    chunk = -(-dim // n)
    sizes = [chunk] * (n - 1)
    return [*sizes, dim - chunk * (n - 1)]


@kernel("Split", since=1, factory=True)
def split_factory(node):
    axis = node.attrs.get("axis", 0)
    split_attr = node.attrs.get("split")
    num_outputs = node.attrs.get("num_outputs")
    n = node.n_outputs if num_outputs is None else int(num_outputs)
    uneven = num_outputs is not None

    def split(x, split=None):
        ax = _axis(axis, x.ndim)
        dim = x.shape[ax]
        if split is not None and split.size:
            sizes = _ints(split)
        elif split_attr:
            sizes = list(split_attr)
        else:
            sizes = _split_sizes(dim, n, uneven)
        if sum(sizes) != dim or min(sizes, default=0) < 0:
            raise ValueError(f"Split sizes {sizes} do not add up to dimension {dim}")
        pre = (slice(None),) * ax
        outs = []
        start = 0
        for s in sizes:
            key = (*pre, slice(start, start + s))
            outs.append(x[key])
            start += s
        return tuple(outs)

    return split


def _slice(data, starts, ends, axes, steps) -> np.ndarray:
    starts, ends = _ints(starts), _ints(ends)
    n = len(starts)
    axes = range(n) if axes is None else _ints(axes)
    steps = (1,) * n if steps is None else _ints(steps)
    if not len(ends) == len(axes) == len(steps) == n:
        raise ValueError(
            f"Slice: starts, ends, axes and steps must have the same length, got "
            f"{n}, {len(ends)}, {len(axes)} and {len(steps)}"
        )
    r = data.ndim
    index: list[slice | None] = [None] * r
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise ValueError("Slice step cannot be 0")
        a = a if 0 <= a < r else _axis(a, r)
        if index[a] is not None:
            raise ValueError(f"Slice: axis {a} is given more than once in axes {list(axes)}")
        # Python's slice clamping is exactly the ONNX rule, including ends below -dim for a
        # negative step (which select down to index 0).
        index[a] = slice(s, e, st)
    return data[tuple(slice(None) if i is None else i for i in index)]


@kernel("Slice", since=1)
def slice_1(data, *, starts, ends, axes=None):
    return _slice(data, starts, ends, axes, None)


@kernel("Slice", since=10)
def slice_(data, starts, ends, axes=None, steps=None):
    return _slice(data, starts, ends, axes, steps)


# --- Expand / Tile / Pad ------------------------------------------------------------------------


@kernel("Expand", since=8)
def expand(x, shape):
    out_shape = np.broadcast_shapes(x.shape, tuple(_ints(shape)))
    if out_shape == x.shape:
        return x
    return np.broadcast_to(x, out_shape).copy()


@kernel("Tile", since=6)
def tile(x, repeats):
    reps = _ints(repeats)
    if len(reps) != x.ndim:
        raise ValueError(f"Tile: repeats has {len(reps)} values for an input of rank {x.ndim} (one per axis)")
    if any(v < 0 for v in reps):
        raise ValueError(f"Tile: repeats must not be negative, got {list(reps)}")
    return np.tile(x, reps)


def _pad(data, pads: list[int], mode: str, value: Any, axes: list[int] | None) -> np.ndarray:
    r = data.ndim
    axes = list(range(r)) if axes is None else [_axis(a, r) for a in axes]
    n = len(axes)
    if len(pads) != 2 * n:
        raise ValueError(f"Pad: {len(pads)} pads given for {n} axes")
    before, after = [0] * r, [0] * r
    for i, a in enumerate(axes):
        before[a], after[a] = pads[i], pads[n + i]
    if any(p < 0 for p in before + after):  # negative pads crop first
        data = data[tuple(slice(max(-b, 0), d - max(-e, 0)) for b, e, d in zip(before, after, data.shape))]
        before = [max(b, 0) for b in before]
        after = [max(e, 0) for e in after]
    if not any(before) and not any(after):
        return data
    if mode == "constant":
        shape = tuple(d + b + e for d, b, e in zip(data.shape, before, after))
        if value is None:
            value = "" if data.dtype == object else 0
        elif isinstance(value, np.ndarray):
            value = value.reshape(-1)[0] if value.size else 0
        out = np.full(shape, value, dtype=data.dtype)
        out[tuple(slice(b, b + d) for b, d in zip(before, data.shape))] = data
        return out
    if mode not in ("reflect", "edge", "wrap"):
        raise ValueError(f"Pad mode {mode!r} is not supported")
    np_mode: Any = mode  # numpy's stubs want a Literal
    return np.pad(data, list(zip(before, after)), mode=np_mode)


@kernel("Pad", since=2)
def pad_2(data, *, pads, mode="constant", value=0.0):
    return _pad(data, pads, mode, value, None)


@kernel("Pad", since=11)
def pad(data, pads, constant_value=None, axes=None, *, mode="constant"):
    axes_l = None if axes is None else _ints(axes)
    return _pad(data, _ints(pads), mode, constant_value, axes_l)


# --- Shape / Size / Range / ConstantOfShape / Constant / Identity -------------------------------


@kernel("Shape", since=1)
def shape(data, *, start=0, end=None):
    return np.array(data.shape[start:end], dtype=_INT64)


@kernel("Size", since=1)
def size(data):
    return np.array(data.size, dtype=_INT64)


@kernel("Range", since=11)
def range_(start, limit, delta, *, stash_type=1):
    dtype = start.dtype
    if start.size != 1 or limit.size != 1 or delta.size != 1:
        raise ValueError(
            "Range: start, limit and delta must be scalars, got shapes "
            f"{start.shape}, {limit.shape} and {delta.shape}"
        )
    s, l, d = start.item(), limit.item(), delta.item()
    if d == 0:
        raise ValueError("Range: delta must not be zero")
    if dtype.kind in "iu":
        n = max(-(-(l - s) // d), 0)
        return (s + np.arange(n, dtype=np.int64) * d).astype(dtype)
    n = max(math.ceil((float(l) - float(s)) / float(d)), 0)
    # float16/bfloat16 are computed in float32 (stash_type=1) or double, then rounded once.
    work = np.float64 if dtype.itemsize >= 4 or stash_type == 11 else np.float32
    return (np.arange(n, dtype=work) * work(d) + work(s)).astype(dtype)


@kernel("ConstantOfShape", since=9)
def constant_of_shape(input, *, value=None):
    shape = _ints(input)
    if value is None:
        return np.zeros(shape, dtype=np.float32)
    return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)


def _constant_value(attrs: dict[str, Any]) -> np.ndarray:
    if attrs.get("value") is not None:
        return attrs["value"]
    if attrs.get("sparse_value") is not None:
        return attrs["sparse_value"]
    if "value_float" in attrs:
        return np.array(attrs["value_float"], dtype=np.float32)
    if "value_floats" in attrs:
        return np.array(attrs["value_floats"], dtype=np.float32)
    if "value_int" in attrs:
        return np.array(attrs["value_int"], dtype=np.int64)
    if "value_ints" in attrs:
        return np.array(attrs["value_ints"], dtype=np.int64)
    if "value_string" in attrs:
        scalar = np.empty((), dtype=object)
        scalar[()] = attrs["value_string"]
        return scalar
    if "value_strings" in attrs:
        vec = np.empty(len(attrs["value_strings"]), dtype=object)
        vec[:] = attrs["value_strings"]
        return vec
    raise ValueError("Constant has no value attribute")


@kernel("Constant", since=1, factory=True)
def constant_factory(node):
    value = _constant_value(dict(node.attrs))
    return lambda: value


@kernel("Identity", since=1)
def identity(x):
    return x


# --- Dropout -------------------------------------------------------------------------------------


@kernel("Dropout", since=1, factory=True)
def dropout_factory(node):
    n_out = node.n_outputs
    seed = node.attrs.get("seed")
    ratio_attr = float(node.attrs.get("ratio", 0.5))
    mask_bool = node.version >= 10  # before 10 the mask has the data's type

    def dropout(data, ratio=None, training_mode=None):
        r = ratio_attr if ratio is None else float(ratio)
        train = training_mode is not None and bool(np.asarray(training_mode).item())
        if not train or r == 0.0:
            if n_out < 2:
                return data
            return data, np.ones(data.shape, dtype=np.bool_ if mask_bool else data.dtype)
        if seed is not None:
            u = np.random.RandomState(int(seed)).uniform(0.0, 1.0, data.shape)
        else:
            u = np.random.default_rng().random(data.shape)
        mask = u >= r
        scale = 1.0 / (1.0 - r) if r < 1.0 else 0.0
        y = np.where(mask, data * scale, 0).astype(data.dtype, copy=False)
        return (y, mask) if n_out >= 2 else y

    return dropout


# --- EyeLike / Trilu / OneHot / NonZero / Compress ----------------------------------------------


@kernel("EyeLike", since=9)
def eye_like(input, *, dtype=None, k=0):
    dt = input.dtype if dtype is None else np_dtype(dtype)
    if input.ndim != 2:
        raise ValueError(f"EyeLike needs a 2-D input, got shape {input.shape}")
    return np.eye(input.shape[0], input.shape[1], k=k, dtype=dt)


@kernel("Trilu", since=14)
def trilu(input, k=None, *, upper=1):
    if k is not None and np.size(k) != 1:
        raise ValueError(f"Trilu: k must hold one value, got shape {np.shape(k)}")
    kk = 0 if k is None else int(np.asarray(k).item())
    if input.ndim < 2:
        raise ValueError("Trilu needs a tensor of rank >= 2")
    return np.triu(input, kk) if upper else np.tril(input, kk)


@kernel("OneHot", since=9)
def one_hot(indices, depth, values, *, axis=-1):
    d = int(np.asarray(depth).reshape(-1)[0])
    r = indices.ndim + 1
    ax = _axis(axis, r)
    idx = indices.astype(np.int64) if indices.dtype != _INT64 else indices
    idx = np.where(idx < 0, idx + d, idx)
    shape = [1] * r
    shape[ax] = d
    hot = np.expand_dims(idx, ax) == np.arange(d, dtype=np.int64).reshape(shape)
    off, on = values.reshape(-1)[0], values.reshape(-1)[1]
    return np.where(hot, on, off).astype(values.dtype, copy=False)


@kernel("NonZero", since=9)
def non_zero(x):
    if x.ndim == 0:
        x = x.reshape(1)
    return np.array(np.nonzero(x), dtype=_INT64).reshape(x.ndim, -1)


@kernel("Compress", since=9)
def compress(input, condition, *, axis=None):
    cond = condition.reshape(-1).astype(np.bool_, copy=False)
    if axis is None:
        return np.compress(cond, input.reshape(-1))
    return np.compress(cond, input, axis=_axis(axis, input.ndim))


# --- DepthToSpace / SpaceToDepth / CenterCropPad / ReverseSequence / Det ------------------------


def _check_blocks(op: str, x: np.ndarray, bs: int) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op} needs a 4-D (N, C, H, W) input, got rank {x.ndim}")
    if bs < 1:
        raise ValueError(f"{op} blocksize must be >= 1, got {bs}")


@kernel("DepthToSpace", since=1)
def depth_to_space(input, *, blocksize, mode="DCR"):
    _check_blocks("DepthToSpace", input, blocksize)
    b, c, h, w = input.shape
    bs = blocksize
    if c % (bs * bs):
        raise ValueError(f"DepthToSpace: {c} channels do not divide by blocksize^2 = {bs * bs}")
    if mode == "DCR":
        t = input.reshape(b, bs, bs, c // (bs * bs), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = input.reshape(b, c // (bs * bs), bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(b, c // (bs * bs), h * bs, w * bs)


@kernel("SpaceToDepth", since=1)
def space_to_depth(input, *, blocksize, mode="DCR"):
    _check_blocks("SpaceToDepth", input, blocksize)
    b, c, h, w = input.shape
    bs = blocksize
    if h % bs or w % bs:
        raise ValueError(f"SpaceToDepth: height {h} and width {w} must divide by blocksize {bs}")
    t = input.reshape(b, c, h // bs, bs, w // bs, bs)
    perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    t = t.transpose(perm)
    return t.reshape(b, c * bs * bs, h // bs, w // bs)


@kernel("CenterCropPad", since=18)
def center_crop_pad(input_data, shape, *, axes=None):
    r = input_data.ndim
    axes_l = list(range(r)) if axes is None else [_axis(a, r) for a in axes]
    target = _ints(shape)
    out_shape = list(input_data.shape)
    src = [slice(None)] * r
    dst = [slice(None)] * r
    for a, t in zip(axes_l, target):
        d = input_data.shape[a]
        out_shape[a] = t
        if t < d:
            off = (d - t) // 2
            src[a] = slice(off, off + t)
        elif t > d:
            off = (t - d) // 2
            dst[a] = slice(off, off + d)
    if out_shape == list(input_data.shape):
        return input_data
    out = np.zeros(out_shape, dtype=input_data.dtype)
    out[tuple(dst)] = input_data[tuple(src)]
    return out


@kernel("ReverseSequence", since=10)
def reverse_sequence(input, sequence_lens, *, batch_axis=1, time_axis=0):
    r = input.ndim
    ba, ta = _axis(batch_axis, r), _axis(time_axis, r)
    nb, nt = input.shape[ba], input.shape[ta]
    lens = sequence_lens.astype(np.int64).reshape(nb, 1)
    t = np.arange(nt, dtype=np.int64).reshape(1, nt)
    src = np.where(t < lens, lens - 1 - t, t)  # [batch, time]
    if ba > ta:
        src = src.T
    shape = [1] * r
    shape[ba], shape[ta] = nb, nt
    return np.take_along_axis(input, src.reshape(shape), axis=ta)


@kernel("Det", since=11)
def det(x):
    if x.dtype in (np.float32, np.float64):
        return np.linalg.det(x)
    return np.linalg.det(x.astype(np.float32)).astype(x.dtype)
