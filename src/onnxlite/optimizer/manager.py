"""Run a list of passes over a model (graph and subgraphs) to a fixed point."""

from __future__ import annotations

from collections.abc import Sequence

from ..ir.graph import Graph, Model
from ._types import refresh_types
from .base import Pass, PassContext

MAX_ROUNDS = 8


def run_passes(
    model: Model, passes: Sequence[Pass], ctx: PassContext | None = None, max_rounds: int = MAX_ROUNDS
) -> list[str]:
    """Apply ``passes`` in order, round after round, until a round changes nothing.

    Types are re-inferred before each round (unless the round before only removed or merged
    nodes), so a pass sees the shapes that earlier rewrites exposed. Returns the names of the
    passes that changed something, in first-change order.
    """
    if not passes:
        return []
    ctx = ctx or PassContext.for_model(model)
    changed: list[str] = []
    # Nodes on constants fold without types: folding them (and dropping what they read) before
    # the first inference leaves it fewer nodes and values to convert and infer (light models'
    # weights are hundreds of ConstantOfShape nodes).
    by_name = {p.name: p for p in passes}
    fold, dead = by_name.get("constant_folding"), by_name.get("dead_code")
    if fold is not None and _apply(model.graph, fold, ctx):
        changed.append(fold.name)
        if dead is not None and _apply(model.graph, dead, ctx):
            changed.append(dead.name)
    infer = True
    for _ in range(max_rounds):
        if infer:
            refresh_types(model)
        round_changed: set[str] = set()
        for p in passes:
            if _apply(model.graph, p, ctx):
                round_changed.add(p.name)
                if p.name not in changed:
                    changed.append(p.name)
        if not round_changed:
            break
        # the rewrites of passes that keep types leave inference nothing new to learn
        infer = any(not getattr(by_name[n], "keeps_types", False) for n in round_changed)
    return changed


def _apply(graph: Graph, p: Pass, ctx: PassContext) -> bool:
    changed = bool(p(graph, ctx))
    if ctx.legacy_initializers:
        # IR 3 ties initializers to graph inputs; subgraph inputs are formal parameters, so
        # passes that add initializers cannot run there.
        return changed
    for node in graph.nodes:
        for _, sub in node.graphs():
            changed |= _apply(sub, p, ctx)
    return changed
