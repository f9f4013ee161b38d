"""Fold a per-channel constant Mul or Add after a Conv into its weights and bias.

``Conv(x, W, B) * c`` is ``Conv(x, W * c, B * c)`` and ``Conv(x, W, B) + c`` is
``Conv(x, W, B + c)`` when ``c`` is constant and varies at most along the channel axis (shape
broadcasting to ``[1, M, 1, ...]`` without growing the Conv's output rank).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, const_after, scaled
from .base import PatternPass
from .conv_bn_fold import FLOATS, replace_conv_params


class ConvMulAddFold(PatternPass):
    name = "conv_mul_add_fold"
    keeps_types = True  # see base.Pass
    anchors = frozenset({"Mul", "Add"})

    def rewrite(self, node: Node, idx: GraphIndex) -> bool:
        found = const_after(node, idx, "Conv")
        if found is None or len(found[0].inputs) < 2:
            return False
        conv, c = found
        w = idx.const(conv.inputs[1])
        has_b = len(conv.inputs) > 2 and bool(conv.inputs[2])
        b = idx.const(conv.inputs[2]) if has_b else None
        if w is None or w.dtype.type not in FLOATS or c.dtype != w.dtype or (has_b and b is None):
            return False
        m = w.shape[0]
        cv = per_channel(c, m, w.ndim)
        if cv is None or (b is not None and (b.size != m or b.dtype != w.dtype)):
            return False
        b0 = np.zeros(m) if b is None else b.reshape(-1).astype(np.float64)
        w2: np.ndarray | None = None
        if node.op_type == "Mul":
            w2 = scaled(w, cv.reshape((m,) + (1,) * (w.ndim - 1)), idx.cache.setdefault("scaled", {}))
            b2 = (b0 * cv).astype(w.dtype)
        else:
            b2 = (b0 + cv).astype(w.dtype)
        replace_conv_params(conv, idx, w2, b2, node)
        return True


def per_channel(c: np.ndarray, m: int, rank: int) -> np.ndarray | None:
    """``c`` as M per-channel float64 values, if it broadcasts to [1, M, 1, ...] of ``rank``."""
    if c.ndim > rank:
        return None
    shape = (1,) * (rank - c.ndim) + c.shape
    if shape[0] != 1 or any(s != 1 for s in shape[2:]) or shape[1] not in (1, m):
        return None
    return np.broadcast_to(c.reshape(-1).astype(np.float64), (m,)).copy()
