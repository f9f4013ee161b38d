"""Gradient (``ai.onnx.preview.training``): the function it differentiates, captured at load.

A Gradient node names its function by attributes only: ``y`` is computed from ``xs`` and ``zs`` by
other nodes of the same graph, and the node's inputs are the values to differentiate at (for xs,
then zs). Those nodes are copied out at load, before the optimizer may fuse, fold or drop them
(``y`` need not be an output of the model), into a :class:`Function` that the CPU kernel evaluates
and differentiates in reverse mode (:mod:`onnxlite.providers.cpu.kernels._derivatives`). The
optimizer keeps those nodes in the graph as they are (:func:`function_values`), so that a saved
optimized model still defines every Gradient's function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidGraph
from .graph import Graph, InternalAttr, Node

TRAINING_DOMAIN = "ai.onnx.preview.training"
FUNCTION_ATTR = "function"  # the node attribute the captured function is kept under


@dataclass(eq=False)
class Function(InternalAttr):
    """``y`` as computed from ``xs`` and ``zs``: nodes in evaluation order, and the constants
    (initializers) they read besides."""

    xs: list[str]
    zs: list[str]
    y: str
    nodes: list[Node]
    constants: dict[str, np.ndarray]


def capture_gradients(graph: Graph) -> None:
    """Attach its :class:`Function` to every Gradient node of ``graph`` and its subgraphs."""
    for node in graph.nodes:
        for _, sub in node.graphs():
            capture_gradients(sub)
        if node.op_type == "Gradient" and node.domain == TRAINING_DOMAIN:
            node.attrs[FUNCTION_ATTR] = _capture(node, graph)


def function_values(graph: Graph) -> set[str]:
    """What the Gradient nodes of ``graph`` differentiate: ``y``, the values computed on the way
    and the constants read. Graph passes treat them as graph outputs."""
    out: set[str] = set()
    for node in graph.nodes:
        fn = node.attrs.get(FUNCTION_ATTR)
        if isinstance(fn, Function):
            out.add(fn.y)
            out.update(o for n in fn.nodes for o in n.outputs if o)
            out.update(fn.constants)
    return out


def _copy(n: Node) -> Node:
    # the optimizer edits nodes in place (renamed inputs, fused attributes): the function keeps
    # its own copies
    return Node(
        n.op_type, list(n.inputs), list(n.outputs), dict(n.attrs), n.name, n.domain, n.doc, n.opset_override
    )


def _capture(node: Node, graph: Graph) -> Function:
    where = node.describe()
    xs = [str(x) for x in node.attrs.get("xs") or []]
    zs = [str(z) for z in node.attrs.get("zs") or []]
    y = str(node.attrs.get("y") or "")
    if len(node.inputs) != len(xs) + len(zs):
        raise InvalidGraph(
            f"{where}: takes one input per name in xs then zs ({len(xs)} + {len(zs)}), got {len(node.inputs)}"
        )
    if len(node.outputs) != len(xs):
        raise InvalidGraph(f"{where}: has one output per name in xs ({len(xs)}), got {len(node.outputs)}")
    free = set(xs) | set(zs)
    if len(free) != len(xs) + len(zs):
        raise InvalidGraph(f"{where}: xs and zs must name distinct tensors, got xs={xs} zs={zs}")
    producer = {o: n for n in graph.nodes for o in n.outputs if o}
    graph_inputs = {v.name for v in graph.inputs}
    needed: set[int] = set()
    constants: dict[str, np.ndarray] = {}
    stack, seen = [y], set()
    while stack:
        name = stack.pop()
        if name in seen or name in free:
            continue
        seen.add(name)
        src = producer.get(name)
        if src is node:
            raise InvalidGraph(f"{where}: y {y!r} depends on the Gradient node's own outputs")
        if src is not None:
            if src.graphs():
                raise InvalidGraph(
                    f"{where}: cannot differentiate through {src.describe()}, which has subgraphs"
                )
            needed.add(id(src))
            stack.extend(i for i in src.inputs if i)
        elif name in graph.initializers:
            constants[name] = graph.initializers[name]
        elif name in graph_inputs:
            raise InvalidGraph(
                f"{where}: y {y!r} depends on graph input {name!r}, which is in neither xs nor zs"
            )
        else:
            raise InvalidGraph(
                f"{where}: y {y!r} depends on {name!r}, which is not computed in the Gradient's own "
                "graph (name it in xs or zs)"
            )
    nodes = [_copy(n) for n in graph.nodes if id(n) in needed]  # graph.nodes are in evaluation order
    return Function(xs, zs, y, nodes, constants)
