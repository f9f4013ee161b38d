"""Dead code elimination: nodes none of whose outputs is used, and unused initializers.

Graph outputs (and the values Gradient nodes differentiate) are roots and graph inputs are never
removed. An unused initializer that is also a graph input stays when IR >= 4 (callers may feed
it: it is part of the interface); under IR 3, where every initializer is listed as an input,
both go together.
"""

from __future__ import annotations

from ..ir.gradient import TRAINING_DOMAIN, function_values
from ..ir.graph import Graph
from .base import PassContext


class DeadCode:
    name = "dead_code"
    keeps_types = True  # see base.Pass

    def __call__(self, graph: Graph, ctx: PassContext) -> bool:
        used = {o.name for o in graph.outputs}
        if ctx.opset(TRAINING_DOMAIN):
            used |= function_values(graph)  # what Gradient nodes differentiate stays defined
        keep = []
        for node in reversed(graph.nodes):
            if any(o and o in used for o in node.outputs):
                keep.append(node)
                used.update(i for i in node.inputs if i)
                for _, sub in node.graphs():
                    used |= sub.free_names()
        changed = len(keep) != len(graph.nodes)
        if changed:
            keep.reverse()
            graph.nodes = keep
        input_names = {v.name for v in graph.inputs}
        unused = [n for n in graph.initializers if n not in used]
        dropped_inputs = set()
        for name in unused:
            if name in input_names:
                if not ctx.legacy_initializers:
                    continue
                dropped_inputs.add(name)
            del graph.initializers[name]
            changed = True
        if dropped_inputs:
            graph.inputs = [v for v in graph.inputs if v.name not in dropped_inputs]
        return changed
