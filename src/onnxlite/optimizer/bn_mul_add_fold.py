"""Fold a per-channel constant Mul or Add after an inference BatchNormalization into its scale
and bias.

``BN(x; s, b, mean, var) * c`` is ``BN(x; s * c, b * c, mean, var)`` and ``BN(...) + c`` is
``BN(x; s, b + c, mean, var)`` when ``c`` is constant and varies at most along the channel axis.
Converted Caffe models (DenseNet among onnx's light models) apply BatchNormalization's affine part
as a separate Mul and Add; where the BatchNormalization follows a Concat or a pooling rather than
a Conv, ``conv_bn_fold`` cannot absorb it, and this saves two full passes over the activation.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, const_after, is_default
from .base import PatternPass
from .conv_bn_fold import FLOATS, inference_bn
from .conv_mul_add_fold import per_channel


class BnMulAddFold(PatternPass):
    name = "bn_mul_add_fold"
    keeps_types = True  # see base.Pass
    anchors = frozenset({"Mul", "Add"})

    def rewrite(self, node: Node, idx: GraphIndex) -> bool:
        found = const_after(node, idx, "BatchNormalization")
        if found is None:
            return False
        bn, c = found
        if not is_default(bn) or len(bn.inputs) != 5 or not inference_bn(bn):
            return False
        scale, bias = idx.const(bn.inputs[1]), idx.const(bn.inputs[2])
        rank = idx.rank(bn.outputs[0])
        if scale is None or bias is None or rank is None or scale.dtype.type not in FLOATS:
            return False
        m = scale.size
        if c.dtype != scale.dtype or bias.dtype != scale.dtype or bias.size != m:
            return False
        cv = per_channel(c, m, rank)
        if cv is None:
            return False
        s64, b64 = scale.reshape(-1).astype(np.float64), bias.reshape(-1).astype(np.float64)
        if node.op_type == "Mul":
            s64, b64 = s64 * cv, b64 * cv
        else:
            b64 = b64 + cv
        idx.set_input(bn, 1, idx.add_initializer(f"{bn.inputs[1]}_folded", s64.astype(scale.dtype)))
        idx.set_input(bn, 2, idx.add_initializer(f"{bn.inputs[2]}_folded", b64.astype(scale.dtype)))
        out = node.outputs[0]
        idx.remove(node)
        idx.rename_output(bn, bn.outputs[0], out)
        return True
