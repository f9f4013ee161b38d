"""com.microsoft QuantizeLinear/DequantizeLinear -> the standard ops, where those express them.

onnxruntime's quantizer writes the com.microsoft forms (``UseQDQContribOps``, 16-bit types below
opset 21). Where the model's opset has a standard op for the same types - 8-bit integers (int32
too for DequantizeLinear) against float32, per-axis parameters from opset 13, 16-bit and 4-bit
integers from opset 21 - the node becomes that op with the same attributes and results, so that
providers' QDQ fusions (oneDNN's integer convolutions and products) apply to it. Float16 forms
stay: the contrib QuantizeLinear divides float16 in float32, the standard one in float16.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ._graphutil import GraphIndex
from .base import MS_DOMAIN, PassContext, PatternPass

# the integer types of the standard ops, and the opset from which they take them
_SINCE = {
    np.dtype(np.int8): 10,
    np.dtype(np.uint8): 10,
    np.dtype(np.int16): 21,
    np.dtype(np.uint16): 21,
}
_DQ_ONLY = {np.dtype(np.int32): 10}


class ContribQDQToStandard(PatternPass):
    name = "contrib_qdq_to_standard"
    anchors = frozenset({"QuantizeLinear", "DequantizeLinear"})

    def __call__(self, graph: Graph, ctx: PassContext) -> bool:
        # standard QDQ models have hundreds of anchors and nothing to do: no index for them
        if not any(n.domain == MS_DOMAIN and n.op_type in self.anchors for n in graph.nodes):
            return False
        return super().__call__(graph, ctx)

    def rewrite(self, node: Node, idx: GraphIndex) -> bool:
        if node.domain != MS_DOMAIN or len(node.inputs) < 2 or set(node.attrs) - {"axis"}:
            return False
        scale = idx.const(node.inputs[1])
        if scale is None or scale.dtype != np.float32:
            return False  # float16 (or a scale computed at run time): keep the contrib op
        if len(node.inputs) > 2 and node.inputs[2]:
            zp = idx.const(node.inputs[2])
            if zp is None:
                return False  # a zero point computed at run time: its type is not known here
            itype = zp.dtype
        elif node.op_type == "QuantizeLinear":
            itype = np.dtype(np.uint8)  # no zero point: uint8 output
        else:
            return False  # the input's type is not known here
        since = _SINCE.get(itype) or (_DQ_ONLY.get(itype) if node.op_type == "DequantizeLinear" else None)
        if since is None:
            return False
        if scale.size > 1:
            since = max(since, 13)  # per-axis parameters
        if idx.ctx.opset("") < since:
            return False
        node.domain = ""
        return True
