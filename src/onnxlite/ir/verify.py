"""Check each node against its op schema at load, as onnxruntime's graph resolution does.

The number of inputs and outputs, a required input left empty, attribute names, attribute types
and required attributes: a node that breaks its schema is reported when the model loads, naming
the node, instead of failing with an unrelated error at run time or, worse, running (a Relu with
two outputs once handed back a row of its result as the first). Ops without an ONNX schema
(other domains, unknown ops) are left to the kernel lookup, which names what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping

import onnx
from onnx import AttributeProto

from ..errors import InvalidGraph

# Checker messages about something reported elsewhere, with a message of its own: an op no
# kernel implements (the kernel lookup) and a domain the model does not import (validate_graph);
# and ops whose schema is marked deprecated at the model's opset, which kernels may still run
# (GroupNormalization-18, as in onnxruntime).
_LEFT_TO_OTHERS = ("No Op registered for", "No opset import for domain", "Op registered for")


def verify_nodes(g: onnx.GraphProto, opsets: Mapping[str, int], ir_version: int) -> None:
    """Raise InvalidGraph for the first node of ``g`` (or its subgraphs) its schema rejects."""
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = ir_version or onnx.IR_VERSION
    ctx.opset_imports = dict(opsets)
    _verify_graph(g, ctx)


def _verify_graph(g: onnx.GraphProto, ctx: onnx.checker.C.CheckerContext) -> None:
    for index, node in enumerate(g.node):
        subgraphs = [a for a in node.attribute if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)]
        checked = node
        if subgraphs:
            # The checker would verify a subgraph without the outer scope it reads; its nodes are
            # verified one by one below, so the node itself is checked with empty stand-ins.
            checked = onnx.NodeProto()
            checked.CopyFrom(node)
            for a in checked.attribute:
                if a.type == AttributeProto.GRAPH:
                    a.g.CopyFrom(onnx.GraphProto(name="body"))
                elif a.type == AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        sg.CopyFrom(onnx.GraphProto(name="body"))
        try:
            onnx.checker.check_node(checked, ctx)
        except onnx.checker.ValidationError as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if not msg.startswith(_LEFT_TO_OTHERS):
                dom = f"{node.domain}:" if node.domain not in ("", "ai.onnx") else ""
                name = node.name or f"{node.op_type}_{index}"  # as the IR names it
                raise InvalidGraph(f"node {name!r} ({dom}{node.op_type}): {msg}") from None
        for a in subgraphs:
            for sg in [a.g] if a.type == AttributeProto.GRAPH else list(a.graphs):
                _verify_graph(sg, ctx)
