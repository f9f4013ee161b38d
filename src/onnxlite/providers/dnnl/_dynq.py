"""Dynamic int8 matmuls: MatMulInteger -> Cast -> Mul(scale) [-> Add(bias) | BiasGelu] as one
u8s8 oneDNN matmul with a float32 output; QuantizeLinear / DequantizeLinear as oneDNN reorders.

This is the graph ``quantize_dynamic`` writes (onnxlite's and onnxruntime's alike). Run node by
node, the int32 accumulator is written, cast, scaled and biased in four passes over memory; here
the scale is oneDNN's weights scale (per tensor or per output column, given at run time: it holds
the activation's dynamic scale), the bias and GELU are applied before the result is stored, and
the weights are packed into oneDNN's layout once. DynamicQuantizeLinear stays with the CPU
provider: a oneDNN reorder multiplies by the reciprocal of the scale, which rounds ties (x / s
exactly k + 0.5) differently from ONNX's division.

The chain's first node returns a :class:`Deferred` (the quantized input and the weights); the
Cast passes it on, the Mul adds the scale, and the last node computes. ``match`` only accepts
chains whose intermediate values have that single consumer and never leave the provider.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from ...ir.graph import Graph, Node
from ...types import static_shape
from . import _lib as L
from ._prim import (
    MD,
    Attr,
    DnnlTensor,
    Primitive,
    PrimitiveCache,
    create,
    into,
    make_reorder,
    plain_md,
    result,
    to_plain,
)

MS = "com.microsoft"
FLOAT = onnx.TensorProto.FLOAT


@dataclass
class Chain:
    """Node indices of one matched chain; ``tail`` computes (the Mul when there is no bias)."""

    head: int
    cast: int
    mul: int
    tail: int
    mul_input: int  # which input of the Mul carries the chain's value
    tail_input: int  # which input of the tail carries it (the Mul's when that is the tail)
    bias_input: int  # input index of the tail's bias (-1: none)
    gelu: bool


def _init(graph: Graph, name: str) -> np.ndarray | None:
    v = graph.initializers.get(name) if name else None
    return v if isinstance(v, np.ndarray) else None


def _std(node: Node) -> bool:
    return node.domain in ("", "ai.onnx")


def match(
    graph: Graph,
    i: int,
    candidates: set[int],
    consumers: dict[str, list[Node]],
    escaping: set[str],
) -> Chain | None:
    """The chain starting at MatMulInteger ``i`` (already accepted by the int8 matmul check)."""
    head = graph.nodes[i]
    if head.op_type != "MatMulInteger" or not _std(head):
        return None
    w = _init(graph, head.inputs[1])
    if w is None or w.ndim != 2:
        return None
    n = w.shape[1]

    def only_user(name: str) -> Node | None:
        us = consumers.get(name, [])
        if name in escaping or len(us) != 1:
            return None
        j = graph.nodes.index(us[0])
        return us[0] if j in candidates else None

    cast = only_user(head.outputs[0])
    if cast is None or cast.op_type != "Cast" or not _std(cast) or int(cast.attrs.get("to", 0)) != FLOAT:
        return None
    mul = only_user(cast.outputs[0])
    if mul is None or mul.op_type != "Mul" or not _std(mul) or len(mul.inputs) != 2:
        return None
    k = mul.inputs.index(cast.outputs[0])
    s_shape = static_shape(graph.type_of(mul.inputs[1 - k]))
    if s_shape is None or math.prod(s_shape) not in (1, n) or (s_shape and s_shape[-1] not in (1, n)):
        return None
    if len(s_shape) > 1 and math.prod(s_shape[:-1]) != 1:
        return None
    ta = graph.type_of(mul.inputs[1 - k])
    if ta is None or ta.tensor_type.elem_type != FLOAT:
        return None
    idx = {id(x): j for j, x in enumerate(graph.nodes)}
    chain = Chain(i, idx[id(cast)], idx[id(mul)], idx[id(mul)], k, k, -1, False)
    nxt = only_user(mul.outputs[0])
    if nxt is None or len(nxt.inputs) != 2:
        return chain
    if (nxt.op_type == "Add" and _std(nxt)) or (nxt.op_type == "BiasGelu" and nxt.domain == MS):
        kk = nxt.inputs.index(mul.outputs[0])
        if nxt.op_type == "BiasGelu" and kk != 0:
            return chain
        b = _init(graph, nxt.inputs[1 - kk])
        if b is None or b.dtype != np.float32 or b.size != n or (b.ndim > 1 and b.shape[-1] != n):
            return chain
        out_rank = len(static_shape(graph.type_of(head.inputs[0])) or ())
        if b.ndim > max(out_rank, 1):
            return chain  # the bias would broadcast the output to a higher rank
        return Chain(i, chain.cast, chain.mul, idx[id(nxt)], k, kk, 1 - kk, nxt.op_type == "BiasGelu")
    return chain


class Deferred:
    """The chain's value before its last node: computed there, or by ``__array__`` if read."""

    __slots__ = ("a", "azp", "b", "kernel", "scale")

    def __init__(self, kernel: DynQuantMatMul, a: np.ndarray, azp: Any, b: np.ndarray) -> None:
        self.kernel, self.a, self.azp, self.b = kernel, a, azp, b
        self.scale: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.a.shape[:-1], self.b.shape[1])

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float32 if self.scale is not None else np.int32)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.scale is None:
            acc = self.kernel.run(self, np.ones(1, np.float32), None, False)
            out = np.rint(acc).astype(np.int32)
        else:
            out = self.kernel.run(self, self.scale, None, False)
        return out if dtype is None else out.astype(dtype, copy=False)


class DynQuantMatMul:
    """u8/s8 x s8 -> f32 matmul with a runtime src zero point and (per column) scales."""

    def __init__(self) -> None:
        self._cache: dict[Any, Any] = PrimitiveCache()
        self._packed: dict[Any, tuple[Any, np.ndarray]] = {}
        self._lock = threading.Lock()

    def head(self, a: Any, b: Any, azp: Any = None, bzp: Any = None) -> Deferred:
        return Deferred(self, np.ascontiguousarray(a), azp, b)

    def _build(self, m: int, k: int, n: int, adt: int, per_n: bool, bias: bool, gelu: bool) -> Any:
        amd = plain_md((m, k), adt)
        attr = Attr().zero_points(L.ARG_SRC, 0).scales(L.ARG_WEIGHTS, 2 if per_n else 0)
        if gelu:
            attr.eltwise(L.ELT_GELU_ERF, 0.0, 0.0)
        b_md = plain_md((1, n)) if bias else None
        dmd = plain_md((m, n))
        prim = create("matmul_primitive_desc_create", amd, MD.any((k, n), L.S8), b_md, dmd, attr)
        return prim, amd, prim.md(L.Q_WEIGHTS_MD), plain_md((k, n), L.S8), b_md, dmd

    def _weights(self, plain: MD, md: MD, w: Any) -> np.ndarray:
        hit = self._packed.get(md.key)
        if hit is not None and hit[0] is w:
            return hit[1]
        packed = into(plain, md, np.ascontiguousarray(w, np.int8))
        self._packed[md.key] = (w, packed)
        return packed

    def run(self, d: Deferred, scale: Any, bias: Any, gelu: bool) -> np.ndarray:
        a = d.a
        k, n = d.b.shape
        if a.ndim < 2 or a.shape[-1] != k:
            raise ValueError(f"MatMulInteger shapes {list(a.shape)} and {[k, n]} do not match")
        m = math.prod(a.shape[:-1])
        sc = np.ascontiguousarray(np.asarray(scale, np.float32).reshape(-1))
        per_n = sc.size > 1
        if m == 0:
            y = np.zeros((m, n), np.float32) + (
                0 if bias is None else np.asarray(bias, np.float32).reshape(-1)
            )
            return y.reshape(*a.shape[:-1], n)
        key = (m, k, n, a.dtype, per_n, bias is not None, gelu)
        e = self._cache.get(key)
        if e is None:
            with self._lock:
                e = self._cache.get(key)
                if e is None:
                    e = self._cache[key] = self._build(
                        m, k, n, L.DT_OF[a.dtype], per_n, bias is not None, gelu
                    )
        prim, amd, wmd, wplain, b_md, dmd = e
        zp = np.asarray(0 if d.azp is None else d.azp).astype(np.int32).reshape(-1)
        dst = np.empty((m, n), np.float32)
        args = [
            (L.ARG_SRC, amd, a),
            (L.ARG_WEIGHTS, wmd, self._weights(wplain, wmd, d.b)),
            (L.ARG_DST, dmd, dst),
            (L.ARG_ATTR_ZERO_POINTS | L.ARG_SRC, plain_md((1,), L.S32), zp),
            (L.ARG_ATTR_SCALES | L.ARG_WEIGHTS, plain_md((sc.size,), L.F32), sc),
        ]
        if b_md is not None:
            args.append((L.ARG_BIAS, b_md, np.ascontiguousarray(np.asarray(bias, np.float32).reshape(1, n))))
        prim.run(args)
        return dst.reshape(*a.shape[:-1], n)


def chain_kernels(chain: Chain, graph: Graph) -> dict[int, Any]:
    """The kernel of each node of ``chain`` (node index -> callable)."""
    k = DynQuantMatMul()
    ci, ti, bi, gelu = chain.mul_input, chain.tail_input, chain.bias_input, chain.gelu

    def cast(d: Deferred, *unused: Any) -> Deferred:
        return d

    def mul(*xs: Any) -> Any:
        d, s = xs[ci], xs[1 - ci]
        if chain.tail == chain.mul:
            return k.run(d, s, None, False)
        d.scale = s
        return d

    def tail(*xs: Any) -> np.ndarray:
        d = xs[ti]
        return k.run(d, d.scale, xs[bi], gelu)

    out: dict[int, Any] = {chain.head: k.head, chain.cast: cast, chain.mul: mul}
    if chain.tail != chain.mul:
        out[chain.tail] = tail
    return out


class _Convert:
    """Float32 <-> 8-bit conversion with a runtime scale and zero point, in the input's layout
    (a strided oneDNN layout such as NHWC stays; a plain array is converted as 1-D)."""

    def __init__(self, to_int: bool, keep_blocked: bool) -> None:
        self.to_int = to_int
        self.keep_blocked = keep_blocked
        self._cache: dict[Any, tuple[Primitive, MD, MD]] = PrimitiveCache()
        self._lock = threading.Lock()

    def _build(self, src: MD, dst: MD) -> tuple[Primitive, MD, MD]:
        arg = L.ARG_DST if self.to_int else L.ARG_SRC
        return make_reorder(src, dst, Attr().scales(arg, 0).zero_points(arg, 0)), src, dst

    def run(self, x: Any, scale: Any, zp: Any, out_dtype: Any) -> Any:
        """``x`` converted to ``out_dtype``: a new array, or a DnnlTensor in x's layout."""
        if isinstance(x, DnnlTensor) and x.md.key[4]:  # inner blocks: go through plain
            x = to_plain(x)
        odt = L.DT_OF[np.dtype(out_dtype)]
        if isinstance(x, DnnlTensor):
            shape, strides = x.md.shape, x.md.key[3]
            key: Any = (x.md.key, odt)
            src_md, buf = x.md, x.buf
        else:
            x = np.asarray(x)
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            shape, strides = (x.size,), (1,)
            key = (x.size, x.dtype, odt)
            src_md, buf = plain_md(shape, L.DT_OF[x.dtype]), x
        if 0 in shape:
            return np.empty(np.shape(x), out_dtype)
        e = self._cache.get(key)
        if e is None:
            with self._lock:
                e = self._cache.get(key)
                if e is None:
                    dst_md = (
                        MD.plain(shape, odt, strides=strides) if strides != (1,) else plain_md(shape, odt)
                    )
                    e = self._cache[key] = self._build(src_md, dst_md)
        prim, smd, dmd = e
        y = (
            np.empty(max(dmd.nbytes, 1), np.uint8)
            if isinstance(x, DnnlTensor)
            else np.empty(shape, out_dtype)
        )
        arg = L.ARG_DST if self.to_int else L.ARG_SRC
        s = np.asarray(scale, np.float32).reshape(1)
        z = np.asarray(0 if zp is None else zp).astype(np.int32).reshape(1)
        prim.run(
            [
                (L.ARG_SRC, smd, buf),
                (L.ARG_DST, dmd, y),
                (L.ARG_ATTR_SCALES | arg, plain_md((1,), L.F32), np.ascontiguousarray(s)),
                (L.ARG_ATTR_ZERO_POINTS | arg, plain_md((1,), L.S32), z),
            ]
        )
        if isinstance(x, DnnlTensor):
            return result(dmd, y, self.keep_blocked)
        return y.reshape(np.shape(x))


class QuantizeKernel:
    """QuantizeLinear with one scale and zero point (per tensor) to uint8 / int8.

    Computed by numpy as onnxlite's CPU kernel does (``x / scale``, rounded half to even): a
    oneDNN reorder multiplies by the reciprocal, which rounds some ties the other way. A value in
    a dense strided oneDNN layout (NHWC) is quantized in place of layout, element by element.
    """

    def __init__(self, out_dtype: Any, keep_blocked: bool = False) -> None:
        self.out_dtype = np.dtype(out_dtype)
        self.keep_blocked = keep_blocked
        self._mds: dict[Any, MD] = {}

    @staticmethod
    def _quantize(x: np.ndarray, scale: Any, zp: Any, dt: np.dtype[Any]) -> np.ndarray:
        q = np.divide(x, np.asarray(scale, np.float32).reshape(()), dtype=np.float32)
        np.rint(q, out=q)
        if zp is not None:
            q += np.float32(np.asarray(zp).reshape(()))
        info = np.iinfo(dt)
        np.clip(q, info.min, info.max, out=q)
        return q.astype(dt)

    def __call__(self, x: Any, scale: Any, zp: Any = None) -> Any:
        dt = self.out_dtype if zp is None else np.asarray(zp).dtype
        if isinstance(x, DnnlTensor):
            md = x.md
            dense = not md.key[4] and md.nbytes == 4 * math.prod(md.shape)
            if not dense:
                x = to_plain(x)
            else:
                key = (md.key, dt)
                out_md = self._mds.get(key)
                if out_md is None:
                    out_md = self._mds[key] = MD.plain(md.shape, L.DT_OF[dt], strides=md.key[3])
                q = self._quantize(x.buf.view(np.float32), scale, zp, dt)
                return result(out_md, q.view(np.uint8), self.keep_blocked)
        return self._quantize(np.asarray(x, np.float32), scale, zp, dt)


class DequantizeKernel:
    """DequantizeLinear with one scale and zero point; of a constant input, computed once."""

    def __init__(self, constant_input: bool, keep_blocked: bool = False) -> None:
        self.constant_input = constant_input
        self._r = _Convert(False, keep_blocked)
        self._last: tuple[Any, Any, Any, Any] | None = None

    def __call__(self, x: Any, scale: Any, zp: Any = None) -> Any:
        last = self._last
        if last is not None and last[0] is x and last[1] is scale and last[2] is zp:
            return last[3]
        y = self._r.run(x, scale, zp, np.float32)
        if self.constant_input and isinstance(y, np.ndarray):  # an initializer: same every run
            y.setflags(write=False)
            self._last = (x, scale, zp, y)
        return y
