"""SkipLayerNorm fusion: ``LayerNormalization(a + b)`` over the last axis of 3-D tensors becomes
com.microsoft ``SkipLayerNormalization(a, b, gamma, beta)``.

Both Add operands must have provably equal (batch, seq, hidden) shapes (static or the same
symbolic dims), gamma/beta 1-D of the hidden size. A bias Add feeding one operand (``MatMul +
bias``) is absorbed as the op's bias input; a sum that other nodes also read is taken from the
op's fourth output.
"""

from __future__ import annotations

from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default, same_dim
from .base import MS_DOMAIN, PatternPass

# float32 only: float16 sums round differently once fused (~1e-3), and onnxruntime's CPU kernel
# has no double.
_TYPES = (TensorProto.FLOAT,)


class SkipLayerNormFusion(PatternPass):
    name = "skip_layernorm_fusion"
    anchors = frozenset({"LayerNormalization"})

    def rewrite(self, ln: Node, idx: GraphIndex) -> bool:
        if (
            not is_default(ln)
            or len(ln.inputs) < 2
            or not idx.ctx.can_emit(MS_DOMAIN, "SkipLayerNormalization")
        ):
            return False
        if any(o and idx.n_uses(o) for o in ln.outputs[1:]) or attr(ln, "axis", -1) not in (-1, 2):
            return False
        if attr(ln, "stash_type", 1) != 1:
            return False
        add = idx.producer_of(ln.inputs[0], "Add")
        if add is None or len(add.inputs) != 2 or add.outputs[0] in idx.graph_outputs:
            return False
        a, b = add.inputs
        da, db = idx.dims(a), idx.dims(b)
        if da is None or db is None or len(da) != 3 or len(db) != 3:
            return False
        if not all(same_dim(x, y) for x, y in zip(da, db)):
            return False
        hidden = da[2]
        et = idx.elem_type(a)
        if not isinstance(hidden, int) or et not in _TYPES or idx.elem_type(b) != et:
            return False
        gamma, beta = ln.inputs[1], ln.inputs[2] if len(ln.inputs) > 2 else ""
        for p in (gamma, beta):
            if p and (idx.dims(p) != [hidden] or idx.elem_type(p) != et):
                return False
        ins, bias_add = self._absorb_bias(a, b, add, hidden, idx)
        sum_out = add.outputs[0]
        extra = [u for u in idx.users(sum_out) if u is not ln]
        outputs = [ln.outputs[0]]
        if extra or idx.implicit.get(sum_out):
            outputs += ["", "", sum_out]
        idx.remove(ln, add)
        if bias_add is not None:
            idx.remove(bias_add)
        inputs = [*ins[:2], gamma, beta, *ins[2:]]
        while not inputs[-1]:
            inputs.pop()
        node = Node(
            "SkipLayerNormalization",
            inputs,
            outputs,
            {"epsilon": float(attr(ln, "epsilon", 1e-5))},
            idx.ctx.fresh("SkipLayerNorm"),
            MS_DOMAIN,
        )
        idx.insert(node, ln)
        idx.ctx.use_domain(MS_DOMAIN, 1)
        return True

    def _absorb_bias(
        self, a: str, b: str, add: Node, hidden: int, idx: GraphIndex
    ) -> tuple[list[str], Node | None]:
        """[input, skip] or [input, skip, bias] and the absorbed bias Add."""
        for x, skip in ((a, b), (b, a)):
            p = idx.producer_of(x, "Add")
            if p is None or idx.sole_consumer(x) is not add or len(p.inputs) != 2:
                continue
            for k in (0, 1):
                bias, m = p.inputs[k], p.inputs[1 - k]
                c = idx.const(bias)
                if c is None or c.shape != (hidden,) or c.dtype != idx.dtype(a):
                    continue
                dm = idx.dims(m)
                if (
                    dm is None
                    or len(dm) != 3
                    or not all(same_dim(u, v) for u, v in zip(dm, idx.dims(skip) or []))
                ):
                    continue
                return [m, skip, bias], p
        return [a, b], None
