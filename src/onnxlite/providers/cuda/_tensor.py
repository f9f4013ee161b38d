"""Shape and data-movement ops. They run where their data lives: views and copies on the device
for activations, numpy on the host for the small integer tensors of shape computations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper

from ...types import np_dtype
from ..cpu.kernels import tensor as cpu_tensor
from ..registry import NodeInfo
from ._backend import Backend, builds


def _host(be: Backend, v: Any) -> Any:
    return None if v is None else np.asarray(be.to_host(v))


@builds("Identity")
def build_identity(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    return lambda x: x


@builds("Reshape")
def build_reshape(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    allowzero = int(info.attrs.get("allowzero", 0))
    return lambda data, shape: cpu_tensor.reshape(data, _host(be, shape), allowzero=allowzero)


@builds("Flatten")
def build_flatten(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    axis = int(info.attrs.get("axis", 1))
    return lambda x: cpu_tensor.flatten(x, axis=axis)


@builds("Transpose")
def build_transpose(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    perm = info.attrs.get("perm")
    perm = None if perm is None else tuple(int(p) for p in perm)

    def transpose(x: Any) -> Any:
        # a contiguous result: the GEMM or kernel that reads it next wants dense memory
        return be.ns(x).ascontiguousarray(x.transpose(perm))

    return transpose


def _squeeze(x: Any, axes: list[int] | None) -> Any:
    if not axes:
        return x.reshape([d for d in x.shape if d != 1])
    norm = {a + x.ndim if a < 0 else a for a in axes}
    if any(not 0 <= a < x.ndim or x.shape[a] != 1 for a in norm):
        raise ValueError(f"Squeeze axes {axes} do not name dimensions of size 1 in {list(x.shape)}")
    return x.reshape([d for i, d in enumerate(x.shape) if i not in norm])


@builds("Squeeze")
def build_squeeze(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    if info.version < 13:
        axes = info.attrs.get("axes")
        return lambda x: _squeeze(x, None if axes is None else [int(a) for a in axes])
    return lambda x, axes=None: _squeeze(x, None if axes is None else be.host_ints(axes))


@builds("Unsqueeze")
def build_unsqueeze(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    if info.version < 13:
        axes = [int(a) for a in info.attrs["axes"]]
        return lambda x: cpu_tensor.unsqueeze_1(x, axes=axes)
    return lambda x, axes: cpu_tensor.unsqueeze(x, _host(be, axes))


@builds("Concat")
def build_concat(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    axis = int(info.attrs["axis"])

    def concat(*xs: Any) -> Any:
        m = be.ns(*xs)
        return m.concatenate([m.asarray(x) for x in xs], axis=axis)

    return concat


@builds("Split")
def build_split(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    # the CPU kernel slices views; it reads ``split`` sizes with numpy
    split = cpu_tensor.split_factory(info)
    return lambda x, sizes=None: split(x, _host(be, sizes))


@builds("Slice")
def build_slice(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    if info.version < 10:
        a = info.attrs
        return lambda x: cpu_tensor.slice_1(x, starts=a["starts"], ends=a["ends"], axes=a.get("axes"))

    def slice_(x: Any, starts: Any, ends: Any, axes: Any = None, steps: Any = None) -> Any:
        h = [_host(be, v) for v in (starts, ends, axes, steps)]
        return cpu_tensor.slice_(x, *h)

    return slice_


@builds("Gather")
def build_gather(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    axis = int(info.attrs.get("axis", 0))

    def gather(data: Any, indices: Any) -> Any:
        m = be.ns(data, indices)
        data, idx = m.asarray(data), m.asarray(indices)
        ax = axis + data.ndim if axis < 0 else axis
        # negative indices count from the end (CuPy's take would wrap any index silently)
        idx = m.where(idx < 0, idx + data.shape[ax], idx)
        return m.take(data, idx, axis=ax)

    return gather


@builds("Shape")
def build_shape(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    start = int(info.attrs.get("start", 0))
    end = info.attrs.get("end")

    def shape(x: Any) -> Any:
        dims = list(x.shape)
        return np.array(dims[start : None if end is None else int(end)], dtype=np.int64)

    return shape


@builds("Size")
def build_size(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    return lambda x: np.array(x.size, dtype=np.int64)


@builds("Cast")
def build_cast(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    to = np_dtype(int(info.attrs["to"]))
    return lambda x: x.astype(to)


@builds("Expand")
def build_expand(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    def expand(x: Any, shape: Any) -> Any:
        m = be.ns(x)
        out = np.broadcast_shapes(tuple(x.shape), tuple(be.host_ints(shape)))
        return x.copy() if out == tuple(x.shape) else m.broadcast_to(x, out).copy()

    return expand


@builds("ConstantOfShape")
def build_constant_of_shape(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    value = info.attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)

    def constant_of_shape(shape: Any) -> Any:
        dims = tuple(be.host_ints(shape))
        n = int(np.prod(dims)) if dims else 1
        if fill.dtype.kind in "biu" and n <= 16:
            return np.full(dims, fill[0], dtype=fill.dtype)
        return be.xp.full(dims, fill[0], dtype=fill.dtype)

    return constant_of_shape


@builds("Range")
def build_range(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    def range_(start: Any, limit: Any, delta: Any) -> Any:
        s, l, d = (np.asarray(be.to_host(v)) for v in (start, limit, delta))
        n = max(int(np.ceil((l.item() - s.item()) / d.item())), 0)
        host = (s + np.arange(n, dtype=s.dtype) * d).astype(s.dtype)
        return be.place(host)

    return range_


@builds("Constant")
def build_constant(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    (name, value), *_ = info.attrs.items()
    if name != "value":
        host = np.asarray(value, dtype=np.int64 if "int" in name else np.float32)
    elif isinstance(value, onnx.TensorProto):
        host = onnx.numpy_helper.to_array(value)
    else:
        host = np.asarray(value)
    held: list[Any] = []

    def constant() -> Any:
        if not held:  # made on first use, on the device of the thread running it
            v = be.place(np.array(host))
            if isinstance(v, np.ndarray):
                v.flags.writeable = False  # shared by every run: callers get copies
            held.append(v)
        return held[0]

    return constant
