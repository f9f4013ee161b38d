"""Build a :class:`~onnxlite.plan.Plan` from an IR graph and a list of providers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidGraph, NotImplemented_, OnnxliteError
from .ir.functions import expand_functions
from .ir.graph import Graph, Node
from .ir.typecheck import check_node_types
from .plan import NONE_SLOT, SINK_SLOT, Plan, Step, freeze, node_info
from .providers.base import ExecutionProvider, schema_version
from .providers.partition import partition


@dataclass
class BuildContext:
    opsets: Mapping[str, int]
    providers: Sequence[ExecutionProvider]
    cpu: ExecutionProvider
    allow_cpu_fallback: bool = True


def compile_graph(graph: Graph, ctx: BuildContext, outer: Sequence[str] = ()) -> Plan:
    """Compile ``graph``; ``outer`` names the enclosing-scope values it may read (subgraphs)."""

    def has_kernel(node: Node) -> bool:
        return any(
            ep.supports(node, graph, ctx.opsets) for ep in ctx.providers
        ) or ctx.cpu.supports(node, graph, ctx.opsets)

    expand_functions(graph, ctx.opsets, has_kernel, graph.type_of)
    assigned = partition(graph, ctx.providers, ctx.opsets, ctx.cpu, ctx.allow_cpu_fallback)

    slots: dict[str, int] = {}

    def slot(name: str) -> int:
        s = slots.get(name)
        if s is None:
            s = slots[name] = len(slots) + 2  # 0 and 1 are NONE_SLOT and SINK_SLOT
        return s

    for v in graph.inputs:
        slot(v.name)
    outer_used = sorted(graph.free_names() & set(outer)) if outer else []
    missing = graph.free_names() - set(outer)
    if missing:
        raise InvalidGraph(f"graph {graph.name!r} reads undefined value(s) {sorted(missing)}")
    for n in outer_used:
        slot(n)
    constants = {}
    for name, value in graph.initializers.items():
        slot(name)
        constants[name] = freeze(value)

    steps: list[Step] = []
    visible = set(outer) | {v.name for v in graph.inputs} | set(graph.initializers)
    for node, ep in zip(graph.nodes, assigned):
        if ep is None:
            raise _unknown_op(node, ctx.opsets)
        check_node_types(node, ctx.opsets, graph.type_of)
        subgraphs: dict[str, Any] = {}
        implicit: set[str] = set()
        for attr, sub in node.attrs.items():
            if isinstance(sub, Graph):
                plan = compile_graph(sub, ctx, sorted(visible))
                subgraphs[attr] = plan
                implicit.update(plan.outer_names)
        implicit_names = sorted(implicit)
        info = node_info(
            node, schema_version(node, ctx.opsets), graph, ctx.opsets, subgraphs, implicit_names
        )
        try:
            fn = ep.kernel(info, node, ctx.opsets)
        except OnnxliteError:
            raise
        except Exception as e:
            raise NotImplemented_(
                f"{node.describe()}: cannot build its {ep.name} kernel: {e}"
            ) from e
        names = list(node.inputs)
        if not implicit_names:
            while names and not names[-1]:
                names.pop()
        ins = tuple(slot(n) if n else NONE_SLOT for n in names) + tuple(
            slot(n) for n in implicit_names
        )
        outs = tuple(slot(n) if n else SINK_SLOT for n in node.outputs)
        steps.append(Step(fn, ins, outs, node, ep.name))
        visible.update(o for o in node.outputs if o)
    for o in graph.outputs:
        slot(o.name)
    return Plan(graph, steps, slots, constants, outer_used)


def _unknown_op(node: Node, opsets: Mapping[str, int]) -> NotImplemented_:
    dom = node.domain or "ai.onnx"
    opset = opsets.get("" if node.domain in ("", "ai.onnx") else node.domain)
    return NotImplemented_(
        f"Could not find an implementation for {node.op_type}({opset}) node with name "
        f"'{node.name}': op {node.op_type!r} of domain {dom!r} at opset {opset} has no kernel "
        "in any provider and no function body"
    )
