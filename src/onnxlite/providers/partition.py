"""Assign every node of a graph to a provider: ask providers in priority order, CPU takes the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import EPFail
from ..ir.graph import Graph
from .base import ExecutionProvider


def partition(
    graph: Graph,
    providers: Sequence[ExecutionProvider],
    opsets: Mapping[str, int],
    cpu: ExecutionProvider,
    allow_cpu_fallback: bool = True,
) -> list[ExecutionProvider | None]:
    """The provider of each node (None where no provider, CPU included, has a kernel)."""
    assigned: list[ExecutionProvider | None] = [None] * len(graph.nodes)
    for ep in providers:
        if ep is cpu:
            continue
        todo = [i for i, p in enumerate(assigned) if p is None]
        if not todo:
            break
        for group in ep.capability(graph, todo, opsets):
            for i in group:
                if assigned[i] is None:
                    assigned[i] = ep
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
    return assigned
