"""``Add(MatMul(A, B), C)`` on 2-D operands becomes ``Gemm(A, B, C)``; likewise a Gemm without
C followed by an Add (onnxruntime's Gemm+Sum fusion).

C must broadcast to the (M, N) result without growing it (Gemm's unidirectional broadcast): a
scalar, (N,), (1, N), (M, 1) or (M, N), checked on static dims.
"""

from __future__ import annotations

from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, in_qdq_unit, is_default, other_input
from .base import PatternPass

# Not float16: Gemm rounds once where MatMul + Add round twice (~1e-3 apart in 16 bits).
_GEMM_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE)


class MatMulAddToGemm(PatternPass):
    name = "matmul_add_to_gemm"
    anchors = frozenset({"Add"})

    def rewrite(self, add: Node, idx: GraphIndex) -> bool:
        if not is_default(add) or len(add.inputs) != 2 or idx.ctx.opset() < 7:
            return False
        for y in add.inputs:
            mm = idx.producer_of(y, ("MatMul", "Gemm"))
            c = other_input(add, y) if mm is not None else None
            if mm is None or not c or idx.sole_consumer(y) is not add:
                continue
            if mm.op_type == "Gemm" and (len(mm.inputs) > 2 and mm.inputs[2]):
                continue
            if in_qdq_unit(mm, idx) or in_qdq_unit(add, idx):
                continue
            if self._fits(mm, c, add, idx):
                self._fuse(mm, c, add, idx)
                return True
        return False

    def _fits(self, mm: Node, c: str, add: Node, idx: GraphIndex) -> bool:
        a, b = mm.inputs[:2]
        if idx.rank(a) != 2 or idx.rank(b) != 2:
            return False
        et = idx.elem_type(mm.outputs[0]) or idx.elem_type(a)
        if et not in _GEMM_TYPES or idx.elem_type(c) != et:
            return False
        out = idx.dims(mm.outputs[0])
        if out is None and mm.op_type == "MatMul":
            da, db = idx.dims(a), idx.dims(b)
            out = [da[0], db[1]] if da and db else None
        cd = idx.dims(c)
        if out is None or cd is None or len(cd) > 2:
            return False
        for i, d in enumerate(reversed(cd)):
            o = out[len(out) - 1 - i]
            if d != 1 and not (isinstance(d, int) and d == o):
                return False
        return True

    def _fuse(self, mm: Node, c: str, add: Node, idx: GraphIndex) -> None:
        if mm.op_type == "MatMul":
            mm.op_type = "Gemm"
            mm.attrs = {}
        else:
            mm.attrs["beta"] = 1.0
            if attr(mm, "alpha", 1.0) == 1.0:
                mm.attrs.pop("alpha", None)
        mm.inputs[2:] = []
        mm.inputs.append(c)
        idx.consumers.setdefault(c, []).append(mm)
        out = add.outputs[0]
        idx.remove(add)
        idx.rename_output(mm, mm.outputs[0], out)
