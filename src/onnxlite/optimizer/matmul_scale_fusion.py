"""Scale fusion: ``MatMul(a * s, b * t)`` (or ``a / s``) with scalar constants becomes
com.microsoft ``FusedMatMul(a, b, alpha=s*t)`` (float32, as onnxruntime's MatMulScaleFusion).

Exported attention scales queries and keys by the square root of 1/sqrt(head size) each, on
transposed views: two element-wise passes (and, for a provider that needs contiguous input, two
copies) per attention head group that the product's alpha does in its output pass instead.
Scaling before or after the product differs by float32 rounding only (relative 1e-7).
"""

from __future__ import annotations

from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, in_qdq_unit, is_default
from .base import MS_DOMAIN, PatternPass


class MatMulScaleFusion(PatternPass):
    name = "matmul_scale_fusion"
    anchors = frozenset({"MatMul", "FusedMatMul"})

    def rewrite(self, node: Node, idx: GraphIndex) -> bool:
        fused = node.op_type == "FusedMatMul"
        if (fused and node.domain != MS_DOMAIN) or (not fused and not is_default(node)):
            return False
        if len(node.inputs) != 2 or idx.elem_type(node.outputs[0]) != TensorProto.FLOAT:
            return False
        if any(r is None or r < 2 for r in (idx.rank(i) for i in node.inputs)) or in_qdq_unit(node, idx):
            return False  # FusedMatMul keeps MatMul's semantics for operands of rank 2 and up
        if not idx.ctx.can_emit(MS_DOMAIN, "FusedMatMul"):
            return False
        found = [(pos, *hit) for pos in (0, 1) if (hit := _scaled(node.inputs[pos], node, idx)) is not None]
        if not found:
            return False
        if not fused:
            node.op_type, node.domain = "FusedMatMul", MS_DOMAIN
            node.attrs = {"alpha": 1.0, "transA": 0, "transB": 0}
            idx.ctx.use_domain(MS_DOMAIN, 1)
        alpha = float(attr(node, "alpha", 1.0))
        for pos, scale_node, source, factor in found:
            idx.set_input(node, pos, source)
            idx.remove(scale_node)
            alpha *= factor
        node.attrs["alpha"] = alpha
        return True


def _scaled(name: str, reader: Node, idx: GraphIndex) -> tuple[Node, str, float] | None:
    """(the Mul/Div, its other operand, the factor) when ``name`` is a float32 value times (or
    divided by) a scalar constant that ``reader`` alone reads."""
    op = idx.producer_of(name, ("Mul", "Div"))
    if op is None or not is_default(op) or len(op.inputs) != 2 or len(op.outputs) != 1:
        return None
    if idx.sole_consumer(name) is not reader or idx.pinned(name):
        return None
    for pos in (0, 1) if op.op_type == "Mul" else (1,):
        s = idx.scalar(op.inputs[pos])
        other = op.inputs[1 - pos]
        if s is None or idx.elem_type(op.inputs[pos]) != TensorProto.FLOAT:
            continue
        if idx.elem_type(other) != TensorProto.FLOAT or idx.static_shape(op.inputs[pos]) not in ((), (1,)):
            continue
        if idx.rank(other) != idx.rank(name):  # the scalar must not change the operand's rank
            continue
        if op.op_type == "Div":
            if s == 0.0:
                return None
            s = 1.0 / s
        return op, other, s
    return None
