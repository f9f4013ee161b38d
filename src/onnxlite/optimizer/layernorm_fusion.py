"""LayerNorm fusion: the decomposed layer normalization over the last axis becomes the opset-17
``LayerNormalization`` op.

Matched: ``d = x - ReduceMean(x)``, ``v = ReduceMean(d^2)`` (``Pow(d, 2)`` or ``d * d``),
``n = d / Sqrt(v + eps)`` (or ``d * Reciprocal(...)``), then optionally ``n * gamma`` and
``+ beta`` with constant gamma/beta varying only along the last axis. Both reductions must be
over the last axis only, with keepdims; float32 only (the op normalizes in float32, which would
change a float64 or float16 decomposition's rounding). Models below opset 17 are left alone:
the op does not exist there and onnx.checker would refuse it.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default, other_input, split_const
from .base import PatternPass
from .gelu_fusion import close, single


class LayerNormFusion(PatternPass):
    name = "layernorm_fusion"
    anchors = frozenset({"ReduceMean"})

    def rewrite(self, mean: Node, idx: GraphIndex) -> bool:
        if not is_default(mean) or idx.ctx.opset() < 17:
            return False
        x = mean.inputs[0]
        r = idx.rank(x)
        if r is None or r < 1 or idx.elem_type(x) != TensorProto.FLOAT or not _last_axis(mean, idx, r):
            return False
        sub = single(idx, mean.outputs[0], "Sub")
        if sub is None or sub.inputs != [x, mean.outputs[0]]:
            return False
        d = sub.outputs[0]
        users = idx.users(d)
        if idx.pinned(d) or len(users) not in (2, 3):
            return False
        sq = next((u for u in users if _is_square(u, d, idx)), None)
        div = next(
            (u for u in users if u.op_type in ("Div", "Mul") and u is not sq and u.inputs[0] == d), None
        )
        if sq is None or div is None or not idx.only_used_by(d, [sq, div]):
            return False
        var = single(idx, sq.outputs[0], "ReduceMean")
        if var is None or not _last_axis(var, idx, r):
            return False
        add = single(idx, var.outputs[0], "Add")
        eps = idx.scalar(other_input(add, var.outputs[0]) or "") if add is not None else None
        if add is None or eps is None or eps < 0:
            return False
        sqrt = single(idx, add.outputs[0], "Sqrt")
        if sqrt is None:
            return False
        nodes = [mean, sub, sq, var, add, sqrt]
        if div.op_type == "Div":
            if div.inputs[1] != sqrt.outputs[0] or idx.sole_consumer(sqrt.outputs[0]) is not div:
                return False
        else:
            recip = single(idx, sqrt.outputs[0], "Reciprocal")
            if recip is None or other_input(div, d) != recip.outputs[0]:
                return False
            nodes.append(recip)
        nodes.append(div)
        gamma, beta, last = self._affine(div, idx, r, nodes)
        if gamma is None:
            return False
        out = last.outputs[0]
        ins = [x, idx.add_initializer(f"{mean.name}_scale", gamma)]
        if beta is not None:
            ins.append(idx.add_initializer(f"{mean.name}_bias", beta))
        idx.remove(*nodes)
        ln = Node(
            "LayerNormalization", ins, [out], {"axis": -1, "epsilon": float(eps)}, idx.ctx.fresh("LayerNorm")
        )
        idx.insert(ln, last)
        return True

    def _affine(
        self, div: Node, idx: GraphIndex, r: int, nodes: list[Node]
    ) -> tuple[np.ndarray | None, np.ndarray | None, Node]:
        """gamma, beta (either may be implied) and the pattern's last node; appends to nodes."""
        dims = idx.dims(div.inputs[0]) or []
        d = dims[-1] if dims and isinstance(dims[-1], int) else None
        last, gamma, beta = div, None, None
        mul = single(idx, div.outputs[0], "Mul")
        sc = split_const(mul, idx) if mul is not None else None
        if mul is not None and sc is not None and sc[0] == div.outputs[0]:
            gamma = _last_axis_vector(sc[1], r, d)
            if gamma is None:
                return None, None, div
            nodes.append(mul)
            last = mul
        add = single(idx, last.outputs[0], "Add")
        sc = split_const(add, idx) if add is not None else None
        if add is not None and sc is not None and sc[0] == last.outputs[0]:
            beta = _last_axis_vector(sc[1], r, d)
            if beta is not None:
                nodes.append(add)
                last = add
        if gamma is None:
            size = d if beta is None else beta.size
            if size is None:
                return None, None, div
            gamma = np.ones(size, dtype=np.float32)
        if beta is not None and beta.size != gamma.size:
            if gamma.size == 1 and d is not None:
                gamma = np.broadcast_to(gamma, (d,)).copy()
            if beta.size != gamma.size:
                return None, None, div
        return gamma, beta, last


def _last_axis(node: Node, idx: GraphIndex, r: int) -> bool:
    if attr(node, "keepdims", 1) != 1:
        return False
    if len(node.inputs) > 1 and node.inputs[1]:
        axes = idx.const(node.inputs[1])
        if axes is None:
            return False
        axes_l = [int(a) for a in axes.reshape(-1)]
    else:
        axes_l = [int(a) for a in attr(node, "axes", [])]
    return len(axes_l) == 1 and axes_l[0] in (-1, r - 1)


def _is_square(node: Node, d: str, idx: GraphIndex) -> bool:
    if node.op_type == "Pow" and is_default(node):
        return node.inputs[0] == d and close(idx.scalar(node.inputs[1]), 2.0)
    return node.op_type == "Mul" and is_default(node) and node.inputs == [d, d]


def _last_axis_vector(c: np.ndarray, r: int, d: int | None) -> np.ndarray | None:
    """A constant that broadcasts along the last axis only, as a 1-D float32 vector."""
    if c.dtype != np.float32 or c.ndim > r or any(s != 1 for s in c.shape[:-1]):
        return None
    v = c.reshape(-1)
    if d is not None and v.size not in (1, d):
        return None
    if v.size == 1:
        if d is None:
            return None  # the op wants a scale of the normalized shape
        v = np.broadcast_to(v, (d,))
    return np.ascontiguousarray(v)
