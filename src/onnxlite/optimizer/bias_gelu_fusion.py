"""BiasGelu fusion: ``Gelu(x + bias)`` with a constant 1-D bias over the last axis becomes
com.microsoft ``BiasGelu(x, bias)``; ``FastGelu(x + bias)`` becomes ``FastGelu(x, bias)``.

Both com.microsoft Gelu/FastGelu (from gelu_fusion) and opset-20 ``Gelu`` are matched. The input's
last dim must be statically the bias size, so the Add did not broadcast x.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default
from .base import MS_DOMAIN, PatternPass


class BiasGeluFusion(PatternPass):
    name = "bias_gelu_fusion"
    anchors = frozenset({"Gelu", "FastGelu"})

    def rewrite(self, gelu: Node, idx: GraphIndex) -> bool:
        if gelu.domain == MS_DOMAIN:
            if len([i for i in gelu.inputs if i]) != 1:
                return False
            fused = "BiasGelu" if gelu.op_type == "Gelu" else "FastGelu"
        elif is_default(gelu) and gelu.op_type == "Gelu":
            approx = attr(gelu, "approximate", "none")
            fused = {"none": "BiasGelu", "tanh": "FastGelu"}.get(approx, "")
            if not fused:
                return False
        else:
            return False
        add = idx.producer_of(gelu.inputs[0], "Add")
        if add is None or len(add.inputs) != 2 or idx.sole_consumer(gelu.inputs[0]) is not gelu:
            return False
        for k in (0, 1):
            x, bias = add.inputs[1 - k], add.inputs[k]
            c = idx.const(bias)
            dims = idx.dims(x)
            if c is None or c.ndim != 1 or not dims or dims[-1] != c.shape[0]:
                continue
            # float32 only, as gelu_fusion: onnxruntime has no double BiasGelu
            if c.dtype != np.float32 or idx.dtype(x) != c.dtype or not idx.ctx.can_emit(MS_DOMAIN, fused):
                continue
            out = gelu.outputs[0]
            idx.remove(add, gelu)
            idx.insert(Node(fused, [x, bias], [out], {}, idx.ctx.fresh(fused), MS_DOMAIN), gelu)
            idx.ctx.use_domain(MS_DOMAIN, 1)
            return True
        return False
