"""BatchNormalization -> Mul(per channel) [-> Add(per channel)] as one oneDNN batch normalization.

Caffe2-converted networks (DenseNet) follow each pre-activation batch normalization with a scale
layer, ``Mul`` and ``Add`` by per-channel vectors. These fold into the normalization's own scale
and shift, ``scale * c`` and ``shift * c + d`` (C values, computed per run since the vectors may
be computed at run time), so that three passes over the activation become one; a ReLU after the
chain is fused as well (the provider's activation fusion on the chain's last node).

The BatchNormalization node returns a :class:`Pending` value, the Mul adds ``c`` and the Add
``d`` and computes; ``match`` only accepts chains whose intermediate values have one consumer and
do not leave the provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...ir.graph import Graph, Node
from ...types import static_shape
from ._ops import BatchNormKernel
from ._replay import replay_safe


@dataclass
class BNChain:
    bn: int
    mul: int
    add: int | None
    mul_input: int  # input index of the Mul / Add that carries the chain's value
    add_input: int
    epsilon: float = 1e-5
    kernel: list[BatchNormKernel] = field(default_factory=list)  # made by the tail's builder

    @property
    def tail(self) -> int:
        return self.mul if self.add is None else self.add


def _per_channel(shape: tuple[int, ...] | None, rank: int, c: int) -> bool:
    """Whether a tensor of ``shape`` broadcasts over an (N, C, ...) input of ``rank`` per channel."""
    if shape is None or len(shape) > rank:
        return False
    full = (1,) * (rank - len(shape)) + shape
    return all(d == 1 for i, d in enumerate(full) if i != 1) and full[1] in (1, c)


def match(
    graph: Graph, i: int, candidates: set[int], consumers: dict[str, list[Node]], escaping: set[str]
) -> BNChain | None:
    bn = graph.nodes[i]
    if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
        return None
    xs, cs = static_shape(graph.type_of(bn.inputs[0])), static_shape(graph.type_of(bn.inputs[1]))
    rank = len(xs) if xs is not None else None
    tp = graph.type_of(bn.inputs[0])
    if tp is not None and tp.HasField("tensor_type") and tp.tensor_type.HasField("shape"):
        rank = len(tp.tensor_type.shape.dim)
    if rank is None or rank < 2 or cs is None or len(cs) != 1:
        return None
    c = cs[0]
    eps = float(bn.attrs.get("epsilon", 1e-5))
    idx = {id(n): j for j, n in enumerate(graph.nodes)}

    def next_op(name: str, op: str) -> tuple[Node, int] | None:
        us = consumers.get(name, [])
        if name in escaping or len(us) != 1 or idx[id(us[0])] not in candidates:
            return None
        n = us[0]
        if n.op_type != op or n.domain not in ("", "ai.onnx") or len(n.inputs) != 2:
            return None
        k = n.inputs.index(name)
        other = n.inputs[1 - k]
        if other == name or not _per_channel(static_shape(graph.type_of(other)), rank, c):
            return None
        return n, k

    m = next_op(bn.outputs[0], "Mul")
    if m is None:
        return None
    a = next_op(m[0].outputs[0], "Add")
    if a is None:
        return BNChain(i, idx[id(m[0])], None, m[1], 0, eps)
    return BNChain(i, idx[id(m[0])], idx[id(a[0])], m[1], a[1], eps)


class Pending:
    """The normalization's inputs until the chain's last node; ``__array__`` if read early."""

    __slots__ = ("c", "eps", "params", "x")

    def __init__(self, x: Any, params: tuple[Any, ...], eps: float) -> None:
        self.x, self.params, self.eps = x, params, eps
        self.c: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.x))

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float32)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        y = np.asarray(BatchNormKernel(self.eps, False)(self.x, *self.params))
        if self.c is not None:
            y = y * _channels(np.asarray(self.c, np.float32), y.ndim)
        return y if dtype is None else y.astype(dtype, copy=False)


def _channels(v: np.ndarray, rank: int) -> np.ndarray:
    return v.reshape(-1).reshape((1, -1) + (1,) * (rank - 2))


def kernels(chain: BNChain) -> tuple[Any, Any, Any]:
    """(BatchNormalization, Mul, Add) kernels; the tail's BatchNormKernel is ``chain.kernel[0]``."""

    def head(x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> Pending:
        return Pending(x, (scale, bias, mean, var), chain.epsilon)

    # (scale, bias, c, d) objects and the folded scale and shift of the last run: constants are
    # the same objects every run, so the fold is computed once (and its arrays are the same
    # objects every run, as a recorded replay of the chain needs)
    last: list[Any] = [None, None]

    def compute(p: Pending, d: Any) -> Any:
        objs = (*p.params[:2], p.c, d)
        hit = last[0]
        if hit is not None and all(a is b for a, b in zip(hit, objs)):
            s, b = last[1]
        else:
            scale, bias = (np.asarray(v, np.float32).reshape(-1) for v in p.params[:2])
            c = np.asarray(p.c, np.float32).reshape(-1)
            n = scale.size  # a size-1 c or d broadcasts to every channel
            s = np.ascontiguousarray(np.broadcast_to(scale * c, n))
            b = bias * c if d is None else bias * c + np.asarray(d, np.float32).reshape(-1)
            b = np.ascontiguousarray(np.broadcast_to(b, n))
            last[:] = [objs, (s, b)]
        mean, var = p.params[2:]
        return chain.kernel[0](p.x, s, b, mean, var)

    @replay_safe
    def mul(*xs: Any) -> Any:
        p = xs[chain.mul_input]
        p.c = xs[1 - chain.mul_input]
        return compute(p, None) if chain.add is None else p

    @replay_safe
    def add(*xs: Any) -> Any:
        return compute(xs[chain.add_input], xs[1 - chain.add_input])

    return replay_safe(head), mul, add
