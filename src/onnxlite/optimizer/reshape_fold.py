"""Reshape folding.

* A chain ``Reshape(Reshape|Flatten|Squeeze|Unsqueeze(x), s)`` reads ``x`` directly when ``s``
  is a constant without copy-dims (0): the final shape does not depend on the intermediate one.
* A target computed at run time from ``Shape`` (``Concat(Unsqueeze(Gather(Shape(x), i)), ...)``,
  as exporters write ``x.view(x.size(0), x.size(1), -1, 64)``) becomes a constant: an element
  that is provably dim ``j`` of the data becomes 0 (copy), static dims their value, and a single
  remaining unknown becomes -1. The Shape arithmetic then dies.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default, same_dim
from ._shapevec import ShapeVecs
from .base import PatternPass

_CHAIN = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


class ReshapeFold(PatternPass):
    name = "reshape_fold"
    anchors = frozenset({"Reshape"})

    def rewrite(self, node: Node, idx: GraphIndex) -> bool:
        if not is_default(node) or len(node.inputs) != 2 or attr(node, "allowzero", 0):
            return False
        changed = self._constant_target(node, idx)
        return self._skip_chain(node, idx) or changed

    def _skip_chain(self, node: Node, idx: GraphIndex) -> bool:
        shape = idx.const(node.inputs[1])
        if shape is None or shape.ndim != 1 or (shape == 0).any():
            return False
        inner = idx.producer_of(node.inputs[0], _CHAIN)
        if inner is None or not inner.inputs or not inner.inputs[0]:
            return False
        idx.set_input(node, 0, inner.inputs[0])
        return True

    def _constant_target(self, node: Node, idx: GraphIndex) -> bool:
        if idx.const(node.inputs[1]) is not None:
            return False
        vecs = idx.cache.get("shapevecs")
        if vecs is None:
            vecs = idx.cache["shapevecs"] = ShapeVecs(idx)
        vec = vecs.get(node.inputs[1])
        if vec is None or vec.scalar:
            return False
        data = node.inputs[0]
        dims = idx.dims(data)
        target: list[int | None] = []
        for j, v in enumerate(vec.values):
            origin = vec.origin(j)
            if v is not None:
                target.append(v)
            elif (
                origin is not None
                and dims is not None
                and j < len(dims)
                and ((origin[0] == data and origin[1] == j) or _same(idx, origin, dims[j]))
            ):
                target.append(0)
            else:
                target.append(None)
        unknown = [j for j, t in enumerate(target) if t is None]
        if len(unknown) > 1 or (unknown and -1 in target):
            return False
        if unknown:
            target[unknown[0]] = -1
        name = idx.add_initializer(f"{node.name}_shape", np.array(target, dtype=np.int64))
        idx.set_input(node, 1, name)
        return True


def _same(idx: GraphIndex, origin: tuple[str, int], dim: object) -> bool:
    odims = idx.dims(origin[0])
    if odims is None or origin[1] >= len(odims):
        return False
    return same_dim(odims[origin[1]], dim)  # type: ignore[arg-type]
