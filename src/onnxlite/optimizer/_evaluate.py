"""Evaluate one node on constant inputs with onnxlite's own CPU kernels (for constant folding).

Folding with the kernels the session would run keeps folded values bit-identical to what the
unoptimized model computes. The kernel is bound and called as the plan would (building a plan
per node made folding the slowest part of session creation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.graph import Graph, Node, ValueInfo
from ..plan import freeze, node_info
from ..providers.base import schema_version
from .base import PassContext


def evaluate(node: Node, inputs: dict[str, np.ndarray], ctx: PassContext) -> list[Any] | None:
    """The node's outputs for constant ``inputs`` (by name), or None if it cannot run here.

    Nodes with subgraphs are not evaluated (constant folding never folds them).
    """
    if node.graphs():
        return None
    clone = Node(
        node.op_type,
        list(node.inputs),
        list(node.outputs),
        dict(node.attrs),
        node.name,
        node.domain,
        opset_override=node.opset_override,
    )
    g = Graph("fold", [clone], [], [ValueInfo(o) for o in node.outputs if o], dict(inputs))
    names = list(node.inputs)
    while names and not names[-1]:
        names.pop()
    try:
        info = node_info(clone, schema_version(clone, ctx.opsets), g, ctx.opsets, {}, ())
        fn = ctx.cpu().kernel(info, clone, ctx.opsets)
        res = fn(*[freeze(inputs[n]) if n else None for n in names])
    except Exception:
        return None  # the session would report it; folding just leaves the node alone
    if len(node.outputs) == 1:
        return [res[0] if type(res) is tuple else res]
    return list(res)
