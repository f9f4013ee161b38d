"""Assign every node of a graph to a provider: ask providers in priority order, CPU takes the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import EPFail
from ..ir.graph import Graph
from .base import ExecutionProvider
from .cpu.registry import CUSTOM_KERNELS


@dataclass
class Partition:
    """The provider of each node (None where no provider has a kernel), and the node groups
    non-CPU providers claimed (candidates for ``ExecutionProvider.compile``)."""

    assigned: list[ExecutionProvider | None]
    groups: list[tuple[ExecutionProvider, list[int]]] = field(default_factory=list)


def partition(
    graph: Graph,
    providers: Sequence[ExecutionProvider],
    opsets: Mapping[str, int],
    cpu: ExecutionProvider,
    allow_cpu_fallback: bool = True,
) -> Partition:
    """Ask providers in priority order for groups of nodes; CPU takes the nodes nobody claims."""
    assigned: list[ExecutionProvider | None] = [None] * len(graph.nodes)
    groups: list[tuple[ExecutionProvider, list[int]]] = []
    for i, node in enumerate(graph.nodes):
        # A user's custom kernel (onnxlite.register_custom_op) wins over every provider.
        if CUSTOM_KERNELS.has_op(node.domain, node.op_type) and cpu.supports(node, graph, opsets):
            assigned[i] = cpu
    for ep in providers:
        if ep is cpu:
            continue
        todo = [i for i, p in enumerate(assigned) if p is None]
        if not todo:
            break
        for group in ep.capability(graph, todo, opsets):
            mine = [i for i in group if assigned[i] is None]
            for i in mine:
                assigned[i] = ep
            if mine:
                groups.append((ep, sorted(mine)))
    cpu_requested = any(ep is cpu for ep in providers)
    fallback: list[str] = []
    for i, p in enumerate(assigned):
        if p is None and cpu.supports(graph.nodes[i], graph, opsets):
            assigned[i] = cpu
            if not cpu_requested:
                fallback.append(graph.nodes[i].describe())
    if fallback and not allow_cpu_fallback:
        raise EPFail(
            "session.disable_cpu_ep_fallback is set and no requested provider supports "
            f"{len(fallback)} node(s): {', '.join(fallback[:20])}"
        )
    return Partition(assigned, groups)
