"""Fold an inference BatchNormalization into the Conv before it.

``BN(Conv(x, W, B))`` with constant W, B and BN parameters is ``Conv(x, W * f, (B - mean) * f +
bias)`` with ``f = scale / sqrt(var + eps)`` per output channel. The new weights are computed in
float64 and rounded once.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default, scaled
from .base import PatternPass

# 16-bit floats are left alone: refolded weights round differently by ~1e-3, far above the
# 1e-5 budget.
FLOATS = (np.float32, np.float64)


class ConvBnFold(PatternPass):
    name = "conv_bn_fold"
    keeps_types = True  # see base.Pass
    anchors = frozenset({"BatchNormalization"})

    def rewrite(self, bn: Node, idx: GraphIndex) -> bool:
        if not is_default(bn) or len(bn.inputs) != 5 or not inference_bn(bn):
            return False
        conv = idx.producer_of(bn.inputs[0], "Conv")
        if conv is None or len(conv.inputs) < 2 or idx.sole_consumer(bn.inputs[0]) is not bn:
            return False
        w = idx.const(conv.inputs[1])
        b = idx.const(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
        if w is None or w.dtype.type not in FLOATS or w.ndim < 3:
            return False
        if len(conv.inputs) > 2 and conv.inputs[2] and b is None:
            return False
        params = [idx.const(n) for n in bn.inputs[1:]]
        m = w.shape[0]
        if any(p is None or p.size != m or p.dtype != w.dtype for p in params):
            return False
        scale, bias, mean, var = (p.reshape(-1).astype(np.float64) for p in params)  # type: ignore[union-attr]
        if b is not None and (b.size != m or b.dtype != w.dtype):
            return False
        f = scale / np.sqrt(var + float(attr(bn, "epsilon", 1e-5)))
        w2 = scaled(w, f.reshape((m,) + (1,) * (w.ndim - 1)), idx.cache.setdefault("scaled", {}))
        b0 = np.zeros(m) if b is None else b.reshape(-1).astype(np.float64)
        b2 = ((b0 - mean) * f + bias).astype(w.dtype)
        replace_conv_params(conv, idx, w2, b2, bn)
        return True


def inference_bn(bn: Node) -> bool:
    """A BatchNormalization that normalizes with its stored statistics (one output)."""
    if len([o for o in bn.outputs if o]) != 1 or bn.outputs[0] == "":
        return False
    return not attr(bn, "training_mode", 0) and attr(bn, "spatial", 1) == 1


def replace_conv_params(
    conv: Node, idx: GraphIndex, w: np.ndarray | None, b: np.ndarray, after: Node
) -> None:
    """Give ``conv`` new bias (and weight, unless None) initializers; it now produces ``after``'s
    output."""
    old = list(conv.inputs[1:3])
    if w is not None:
        idx.set_input(conv, 1, idx.add_initializer(f"{conv.inputs[1]}_folded", w))
    bname = idx.add_initializer(f"{conv.name}_bias_folded", b)
    if len(conv.inputs) > 2:
        idx.set_input(conv, 2, bname)
    else:
        conv.inputs.append(bname)
        idx.consumers.setdefault(bname, []).append(conv)
    out = after.outputs[0]
    idx.remove(after)
    idx.rename_output(conv, conv.outputs[0], out)
    for name in old:
        idx.drop_if_unused(name)
