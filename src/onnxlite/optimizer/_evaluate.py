"""Evaluate one node on constant inputs with onnxlite's own CPU kernels (for constant folding).

Folding with the kernels the session would run keeps folded values bit-identical to what the
unoptimized model computes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compile import BuildContext, compile_graph
from ..ir.graph import Graph, Node, ValueInfo
from ..plan import freeze, node_info
from ..providers.base import schema_version
from .base import PassContext


def evaluate(node: Node, inputs: dict[str, np.ndarray], ctx: PassContext) -> list[Any] | None:
    """The node's outputs for constant ``inputs`` (by name), or None if it cannot run."""
    clone = Node(
        node.op_type,
        list(node.inputs),
        list(node.outputs),
        dict(node.attrs),
        node.name,
        node.domain,
        opset_override=node.opset_override,
    )
    outs = [o for o in node.outputs if o]
    g = Graph("fold", [clone], [], [ValueInfo(o) for o in outs], dict(inputs))
    cpu = ctx.cpu()
    if not node.graphs():
        # the kernel itself, as the plan would bind and call it (a whole plan per node is slow)
        try:
            info = node_info(clone, schema_version(clone, ctx.opsets), g, ctx.opsets, {}, ())
            fn = cpu.kernel(info, clone, ctx.opsets)
            names = list(node.inputs)
            while names and not names[-1]:
                names.pop()
            res = fn(*[freeze(inputs[n]) if n else None for n in names])
        except Exception:
            return None
        if len(node.outputs) == 1:
            return [res[0] if type(res) is tuple else res]
        return list(res)
    try:
        plan = compile_graph(g, BuildContext(ctx.opsets, [cpu], cpu))
        vals = plan.template.copy()
        res = plan.execute(vals, plan.full)
    except Exception:
        return None  # the session would report it; folding just leaves the node alone
    by_name = dict(zip(outs, res))
    return [by_name.get(o) if o else None for o in node.outputs]
