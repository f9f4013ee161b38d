"""Move a pre-activation BatchNormalization's scale into the convolutions after its ReLU.

``Conv(Relu(BN(x)), W)`` with BN's per-channel scale ``f = s / sqrt(var + eps)`` positive
everywhere is ``Conv(Relu(x + (b - mean * f) / f), W * f)``: ``relu(f * y) = f * relu(y)`` for
``f > 0``, and a convolution is linear in each input channel (zero padding stays zero). The
BatchNormalization becomes one broadcast Add where it was a multiply and an add. DenseNet applies
BatchNormalization and ReLU before each convolution, after a Concat, where ``conv_bn_fold``
cannot reach it (numpy provider: 62 BatchNormalizations, each two passes over the activation).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default, scaled
from .base import PatternPass
from .conv_bn_fold import FLOATS, inference_bn


class BnReluConvFold(PatternPass):
    name = "bn_relu_conv_fold"
    keeps_types = True  # see base.Pass
    anchors = frozenset({"BatchNormalization"})

    def rewrite(self, bn: Node, idx: GraphIndex) -> bool:
        if not is_default(bn) or len(bn.inputs) != 5 or not inference_bn(bn):
            return False
        relu = idx.sole_consumer(bn.outputs[0])
        if relu is None or relu.op_type != "Relu" or not is_default(relu):
            return False
        act = relu.outputs[0]
        convs = idx.users(act)
        if not convs or idx.pinned(act) or not all(self._plain_conv(c, act, idx) for c in convs):
            return False
        params = [idx.const(n) for n in bn.inputs[1:]]
        if any(p is None or p.dtype.type not in FLOATS for p in params):
            return False
        scale, bias, mean, var = (p.reshape(-1).astype(np.float64) for p in params)  # type: ignore[union-attr]
        c = scale.size
        if idx.rank(bn.inputs[0]) != 4 or any(p.size != c for p in (bias, mean, var)):
            return False
        f = scale / np.sqrt(var + float(attr(bn, "epsilon", 1e-5)))
        # positive everywhere; and no channel scaled nearly away, whose shift / f would dwarf
        # its inputs in float32
        if not (np.isfinite(f).all() and (f > 0).all() and f.min() >= 1e-6 * f.max()):
            return False
        weights = [idx.const(conv.inputs[1]) for conv in convs]
        if any(w is None or w.dtype.type not in FLOATS or w.ndim != 4 or w.shape[1] != c for w in weights):
            return False
        dt = params[0].dtype  # type: ignore[union-attr]
        shift = ((bias - mean * f) / f).astype(dt).reshape(1, c, 1, 1)
        add = Node(
            "Add", [bn.inputs[0], idx.add_initializer(f"{bn.name or 'bn'}_shift", shift)], [bn.outputs[0]]
        )
        idx.insert(add, bn)
        idx.remove(bn)
        for name in bn.inputs[1:]:
            idx.drop_if_unused(name)
        for conv, w in zip(convs, weights):
            assert w is not None
            w2 = scaled(w, f.reshape(1, c, 1, 1), idx.cache.setdefault("scaled", {}))
            old = conv.inputs[1]
            idx.set_input(conv, 1, idx.add_initializer(f"{old}_scaled", w2))
            idx.drop_if_unused(old)
        return True

    @staticmethod
    def _plain_conv(conv: Node, act: str, idx: GraphIndex) -> bool:
        """A default-domain Conv reading ``act`` as its data input only, with one group."""
        return (
            conv.op_type == "Conv"
            and is_default(conv)
            and conv.inputs[0] == act
            and act not in conv.inputs[1:]
            and int(attr(conv, "group", 1)) == 1
            and len(conv.inputs) >= 2
            and idx.const(conv.inputs[1]) is not None
        )
