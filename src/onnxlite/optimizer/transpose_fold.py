"""Transpose folding.

* ``Transpose(Transpose(x, p1), p2)`` becomes one Transpose with the composed permutation, or
  nothing when that is the identity.
* A Transpose of a constant becomes a transposed initializer.
* ``Gemm(Transpose(A), B)`` (2-D swap) toggles ``transA`` (``transB`` likewise).
* ``MatMul(Transpose(A), B)``, where the Transpose swaps the last two axes only, becomes
  com.microsoft ``FusedMatMul(A, B, transA=1)`` (float32); a FusedMatMul absorbs such
  Transposes the same way.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..ir.graph import Graph, Node
from ._graphutil import GraphIndex, attr, in_qdq_unit, is_default
from .base import MS_DOMAIN, PassContext
from .constant_folding import FOLD_LIMIT
from .identity_elimination import bypass


class TransposeFold:
    name = "transpose_fold"

    def __call__(self, graph: Graph, ctx: PassContext) -> bool:
        idx = GraphIndex(graph, ctx)
        changed = False
        # Pairs first, so a MatMul sees the composed permutation of a Transpose chain.
        for node in list(graph.nodes):
            if idx.alive(node) and node.op_type == "Reshape" and is_default(node):
                changed |= self._batched_transpose(node, idx)
        for node in list(graph.nodes):
            if idx.alive(node) and node.op_type == "Transpose" and is_default(node):
                changed |= self._pair(node, idx) or self._constant(node, idx)
        for node in list(graph.nodes):
            if not idx.alive(node):
                continue
            if node.op_type == "Gemm" and is_default(node):
                changed |= self._gemm(node, idx)
            elif (node.op_type == "MatMul" and is_default(node)) or (
                node.op_type == "FusedMatMul" and node.domain == MS_DOMAIN
            ):
                changed |= self._matmul(node, idx)
        if changed:
            idx.commit()
        return changed

    def _pair(self, node: Node, idx: GraphIndex) -> bool:
        inner = idx.producer_of(node.inputs[0], "Transpose")
        if inner is None:
            return False
        p1, p2 = _perm(inner, idx), _perm(node, idx)
        if p1 is None or p2 is None or len(p1) != len(p2):
            return False
        perm = [p1[i] for i in p2]
        if perm == list(range(len(perm))):
            return bypass(node, inner.inputs[0], idx)
        idx.set_input(node, 0, inner.inputs[0])
        node.attrs["perm"] = perm
        return True

    def _batched_transpose(self, r2: Node, idx: GraphIndex) -> bool:
        """Reshape(Transpose(Reshape(x, [-1, m, n]), [0, 2, 1]), [a, .., n, m]) is a Transpose of
        the last two axes of x = [a, .., m, n] (torch's decomposition of a batched transpose)."""
        t = idx.producer_of(r2.inputs[0], "Transpose") if len(r2.inputs) == 2 else None
        if t is None or _perm(t, idx) != [0, 2, 1] or idx.sole_consumer(t.outputs[0]) is not r2:
            return False
        r1 = idx.producer_of(t.inputs[0], "Reshape")
        if r1 is None or len(r1.inputs) != 2 or idx.sole_consumer(r1.outputs[0]) is not t:
            return False
        x = r1.inputs[0]
        xd = idx.dims(x)
        t1, t2 = idx.const(r1.inputs[1]), idx.const(r2.inputs[1])
        if (
            xd is None
            or len(xd) < 3
            or t1 is None
            or t2 is None
            or t1.shape != (3,)
            or t2.shape != (len(xd),)
        ):
            return False
        m, n = xd[-2], xd[-1]
        if not (isinstance(m, int) and isinstance(n, int)):
            return False
        copy1 = not attr(r1, "allowzero", 0)
        copy2 = not attr(r2, "allowzero", 0)
        merged = [int(v) for v in t1]
        if merged[1:] != [m, n] or not (merged[0] == -1 or (copy1 and merged[0] == 0 and len(xd) == 3)):
            return False
        lead, tail = [int(v) for v in t2[:-2]], [int(v) for v in t2[-2:]]
        if tail != [n, m] or lead.count(-1) > 1:
            return False
        for k, (v, d) in enumerate(zip(lead, xd)):
            # each leading dim restored: the same static size, the one -1, or a copy of the
            # merged dim when there is only one leading dim
            if not (
                v == -1 or (isinstance(d, int) and v == d) or (copy2 and v == 0 and k == 0 and len(xd) == 3)
            ):
                return False
        idx.remove(r1, t)
        idx.set_input(r2, 0, x)
        idx.set_input(r2, 1, "")
        r2.inputs[1:] = []
        r2.op_type, r2.attrs = "Transpose", {"perm": _swap_last(len(xd))}
        return True

    def _constant(self, node: Node, idx: GraphIndex) -> bool:
        value = idx.const(node.inputs[0], limit=FOLD_LIMIT)
        out = node.outputs[0]
        if value is None or out in idx.graph_outputs or node.inputs[0] not in idx.graph.initializers:
            return False
        perm = _perm(node, idx)
        if perm is None or len(perm) != value.ndim:
            return False
        name = idx.add_initializer(
            f"{node.inputs[0]}_transposed", np.ascontiguousarray(value.transpose(perm))
        )
        idx.remove(node)
        idx.replace_uses(out, name)
        return True

    def _gemm(self, node: Node, idx: GraphIndex) -> bool:
        changed = False
        for pos, flag in ((0, "transA"), (1, "transB")):
            t = idx.producer_of(node.inputs[pos], "Transpose") if len(node.inputs) > pos else None
            if t is None or _perm(t, idx) != [1, 0]:
                continue
            idx.set_input(node, pos, t.inputs[0])
            node.attrs[flag] = 0 if attr(node, flag, 0) else 1
            changed = True
        return changed

    def _matmul(self, node: Node, idx: GraphIndex) -> bool:
        if node.op_type == "FusedMatMul" and (attr(node, "transBatchA", 0) or attr(node, "transBatchB", 0)):
            return False
        if len(node.inputs) != 2 or idx.elem_type(node.outputs[0]) != TensorProto.FLOAT:
            return False
        if in_qdq_unit(node, idx):
            return False
        ranks = [idx.rank(i) for i in node.inputs]
        if any(r is None or r < 2 for r in ranks):
            return False  # FusedMatMul's transposes need both operands at least 2-D
        ctx = idx.ctx
        if not ctx.can_emit(MS_DOMAIN, "FusedMatMul"):
            return False
        found = []
        for pos in (0, 1):
            t = idx.producer_of(node.inputs[pos], "Transpose")
            perm = _perm(t, idx) if t is not None else None
            if t is not None and perm is not None and len(perm) >= 2 and perm == _swap_last(len(perm)):
                found.append((pos, t))
        if not found:
            return False
        if node.op_type == "MatMul":
            node.op_type, node.domain = "FusedMatMul", MS_DOMAIN
            node.attrs = {"alpha": 1.0, "transA": 0, "transB": 0}
            ctx.use_domain(MS_DOMAIN, 1)
        for pos, t in found:
            flag = "transA" if pos == 0 else "transB"
            idx.set_input(node, pos, t.inputs[0])
            node.attrs[flag] = 0 if attr(node, flag, 0) else 1
        return True


def _perm(node: Node, idx: GraphIndex) -> list[int] | None:
    perm = attr(node, "perm")
    if perm is not None:
        return [int(p) for p in perm]
    r = idx.rank(node.inputs[0])
    return None if r is None else list(reversed(range(r)))


def _swap_last(r: int) -> list[int]:
    return [*range(r - 2), r - 1, r - 2]
