"""GELU fusion: the erf form ``x * 0.5 * (1 + erf(x / sqrt(2)))`` becomes com.microsoft ``Gelu``
and the tanh approximation ``x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`` becomes
com.microsoft ``FastGelu``.

Matched orderings: ``x / sqrt2`` or ``x * (1/sqrt2)``; the product as ``(x * (1+e)) * 0.5``,
``(x * 0.5) * (1+e)`` or ``x * ((1+e) * 0.5)``; the cube as ``Pow(x, 3)``, ``x * x * x``, or
factored ``x * (1 + 0.044715 x^2)``. Constants must be one-element and within 1e-6 relative of
the exact value, so the fused op computes the same function.
"""

from __future__ import annotations

import math

from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, is_default, other_input
from .base import MS_DOMAIN, PatternPass

# float32 only: onnxruntime has no double Gelu, and in 16 bits the fused op's single rounding
# differs from the decomposition's per-op rounding by ~1e-3.
_FLOATS = (TensorProto.FLOAT,)


def close(v: float | None, target: float, rel: float = 1e-6) -> bool:
    return v is not None and abs(v - target) <= rel * abs(target)


def const_operand(node: Node, idx: GraphIndex, target: float) -> str | None:
    """For a binary node with one constant operand equal to ``target``, the other operand."""
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if close(idx.scalar(b), target):
        return a
    if close(idx.scalar(a), target):
        return b
    return None


def single(idx: GraphIndex, name: str, op: str | tuple[str, ...]) -> Node | None:
    """The sole consumer of ``name`` when it is a default-domain ``op``."""
    n = idx.sole_consumer(name)
    if n is None or not is_default(n) or (n.op_type != op if isinstance(op, str) else n.op_type not in op):
        return None
    return n


def half_product(idx: GraphIndex, one_plus: Node, x: str) -> tuple[Node, list[Node]] | None:
    """Match ``x * 0.5 * one_plus`` in its three associations: (final node, matched nodes)."""
    m = single(idx, one_plus.outputs[0], "Mul")
    if m is None:
        return None
    other = other_input(m, one_plus.outputs[0])
    if other == x:  # (x * (1+e)) * 0.5
        final = single(idx, m.outputs[0], "Mul")
        if final is not None and const_operand(final, idx, 0.5) == m.outputs[0]:
            return final, [m, final]
        return None
    if other and const_operand(m, idx, 0.5) == one_plus.outputs[0]:  # x * ((1+e) * 0.5)
        final = single(idx, m.outputs[0], "Mul")
        if final is not None and other_input(final, m.outputs[0]) == x:
            return final, [m, final]
        return None
    h = idx.producer_of(other, "Mul") if other else None  # (x * 0.5) * (1+e)
    if h is not None and const_operand(h, idx, 0.5) == x and idx.sole_consumer(h.outputs[0]) is m:
        return m, [h, m]
    return None


def _one_plus(idx: GraphIndex, name: str) -> Node | None:
    a = single(idx, name, "Add")
    return a if a is not None and const_operand(a, idx, 1.0) == name else None


class GeluFusion(PatternPass):
    name = "gelu_fusion"
    anchors = frozenset({"Erf", "Tanh"})

    def rewrite(self, node: Node, idx: GraphIndex) -> bool:
        if not is_default(node):
            return False
        if node.op_type == "Erf":
            found = self._erf(node, idx)
            op = "Gelu"
        else:
            found = self._tanh(node, idx)
            op = "FastGelu"
        if found is None:
            return False
        x, nodes = found
        final = nodes[-1]
        if idx.elem_type(x) not in _FLOATS or not idx.ctx.can_emit(MS_DOMAIN, op):
            return False
        for n in nodes[:-1]:
            if not idx.only_used_by(n.outputs[0], nodes):
                return False
        out = final.outputs[0]
        idx.remove(*nodes)
        idx.insert(Node(op, [x], [out], {}, idx.ctx.fresh(op), MS_DOMAIN), final)
        idx.ctx.use_domain(MS_DOMAIN, 1)
        return True

    def _erf(self, erf: Node, idx: GraphIndex) -> tuple[str, list[Node]] | None:
        d = idx.producer_of(erf.inputs[0], ("Div", "Mul"))
        if d is None:
            return None
        x = const_operand(d, idx, math.sqrt(2.0) if d.op_type == "Div" else math.sqrt(0.5))
        if x is None or (d.op_type == "Div" and d.inputs[0] != x):
            return None
        one_plus = _one_plus(idx, erf.outputs[0])
        prod = half_product(idx, one_plus, x) if one_plus is not None else None
        if prod is None:
            return None
        return x, [d, erf, one_plus, *prod[1]]  # type: ignore[list-item]

    def _tanh(self, tanh: Node, idx: GraphIndex) -> tuple[str, list[Node]] | None:
        s = idx.producer_of(tanh.inputs[0], "Mul")
        inner = const_operand(s, idx, math.sqrt(2.0 / math.pi)) if s is not None else None
        inner_node = idx.producer_of(inner, ("Add", "Mul")) if inner else None
        if inner_node is None:
            return None
        poly = _poly(inner_node, idx)
        if poly is None:
            return None
        x, poly_nodes = poly
        one_plus = _one_plus(idx, tanh.outputs[0])
        prod = half_product(idx, one_plus, x) if one_plus is not None else None
        if prod is None:
            return None
        return x, [*poly_nodes, s, tanh, one_plus, *prod[1]]  # type: ignore[list-item]


def _poly(node: Node, idx: GraphIndex) -> tuple[str, list[Node]] | None:
    """x + 0.044715 x^3, or x * (1 + 0.044715 x^2): (x, nodes) with ``node`` last."""
    if len(node.inputs) != 2:
        return None
    for x in node.inputs:
        other = other_input(node, x)
        p = idx.producer_of(other, "Mul") if other else None
        if p is None:
            continue
        term = const_operand(p, idx, 0.044715)
        if term is None:
            continue
        if node.op_type == "Add":  # x + 0.044715 * x^3
            cube = _power(idx, term, x, 3)
            if cube is not None:
                return x, [*cube, p, node]
        else:  # x * (1 + 0.044715 * x^2)
            continue
    if node.op_type == "Mul":
        for x in node.inputs:
            other = other_input(node, x)
            q = idx.producer_of(other, "Add") if other else None
            rest = const_operand(q, idx, 1.0) if q is not None else None
            p = idx.producer_of(rest, "Mul") if rest else None
            term = const_operand(p, idx, 0.044715) if p is not None else None
            sq = _power(idx, term, x, 2) if term else None
            if sq is not None:
                return x, [*sq, p, q, node]  # type: ignore[list-item]
    return None


def _power(idx: GraphIndex, name: str, x: str, k: int) -> list[Node] | None:
    """Nodes computing ``x**k`` into ``name``: Pow(x, k), x*x, or (x*x)*x in either order."""
    n = idx.producer.get(name)
    if n is None or not is_default(n):
        return None
    if n.op_type == "Pow" and len(n.inputs) == 2 and n.inputs[0] == x and close(idx.scalar(n.inputs[1]), k):
        return [n]
    if n.op_type != "Mul" or len(n.inputs) != 2:
        return None
    a, b = n.inputs
    if k == 2:
        return [n] if a == x and b == x else None
    if k == 3:
        for sq, lin in ((a, b), (b, a)):
            if lin == x:
                inner = _power(idx, sq, x, 2)
                if inner is not None:
                    return [*inner, n]
    return None
