"""The execution provider contract.

A provider tells which nodes it can run (:meth:`ExecutionProvider.capability`, as groups of node
indices), then supplies a kernel per node (:meth:`kernel`) or one callable for a whole group
(:meth:`compile`). It names its device and moves values to and from the CPU. The partitioner asks
providers in priority order; the CPU provider takes whatever nobody claims.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar

import onnx

from ..ir.graph import Graph, Node
from .registry import KernelDef, KernelRegistry, NodeInfo, norm_domain


def schema_version(node: Node, opsets: Mapping[str, int]) -> int:
    """The since_version of the node's op schema under its opset (the opset itself if unknown)."""
    dom = norm_domain(node.domain)
    opset = (node.opset_override or opsets).get(dom) or opsets.get(dom, 1)
    return _since_version(node.op_type, opset, dom)


@functools.lru_cache(maxsize=4096)
def _since_version(op_type: str, opset: int, dom: str) -> int:
    try:
        return int(onnx.defs.get_schema(op_type, opset, dom).since_version)
    except Exception:
        return opset


class ExecutionProvider:
    """Base class of providers. Subclasses set ``name``, ``device`` and ``registry``."""

    name: ClassVar[str] = ""
    device: ClassVar[str] = "cpu"
    registry: ClassVar[KernelRegistry | None] = None
    # Its kernels run on a thread pool of their own that honours onnxlite.threads'
    # single_thread_run(): sessions using it may then run one thread for everything.
    own_thread_pool: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self.options: dict[str, str] = {k: str(v) for k, v in (options or {}).items()}

    @classmethod
    def availability(cls) -> str | None:
        """None when usable here; otherwise what is missing (library, device)."""
        return None

    def lookup(self, node: Node, opsets: Mapping[str, int]) -> KernelDef | None:
        if self.registry is None:
            return None
        return self.registry.lookup(node.domain, node.op_type, schema_version(node, opsets))

    def supports(self, node: Node, graph: Graph, opsets: Mapping[str, int]) -> bool:
        """Whether this provider can run one node (op, version; subclasses add type checks)."""
        return self.lookup(node, opsets) is not None

    def capability(self, graph: Graph, candidates: list[int], opsets: Mapping[str, int]) -> list[list[int]]:
        """Groups of node indices (among ``candidates``) this provider claims."""
        return [[i] for i in candidates if self.supports(graph.nodes[i], graph, opsets)]

    def kernel(self, info: NodeInfo, node: Node, opsets: Mapping[str, int]) -> Callable[..., Any]:
        kd = self.lookup(node, opsets)
        if kd is None:
            raise LookupError(f"{self.name} has no kernel for {info.describe()}")
        return kd.bind(info)

    def transform_assigned(self, graph: Graph, nodes: list[int], opsets: MutableMapping[str, int]) -> None:
        """Rewrite the nodes assigned to this provider (indices into ``graph.nodes``) into forms
        its kernels run faster, with the same outputs; called once the graph is partitioned.
        A rewrite keeps each node's index, outputs and provider; ``opsets`` takes new domains."""

    def compile(self, graph: Graph, group: list[int]) -> Callable[..., Any] | None:
        """One callable for a whole group of nodes, or None to use per-node kernels.

        The callable takes the values of ``group_io(graph, group)[0]`` positionally and returns
        a tuple with the values of ``group_io(graph, group)[1]``.
        """
        return None

    def segmentable(self, fn: Callable[..., Any]) -> bool:
        """Whether the plan step ``fn`` (one of this provider's kernels) may be part of a
        segment (see :meth:`segment`)."""
        return False

    def segment(
        self, steps: Sequence[tuple[Any, ...]], indices: Sequence[int], constants: Mapping[int, Any]
    ) -> Callable[[list[Any]], None] | None:
        """One callable for consecutive plan steps ``(fn, in_slots, out_slots, free_slots)`` of
        this provider (their plan indices in ``indices``), run on a run's slot list: it leaves
        the slots as the steps one by one would. ``constants`` are the plan's constants by slot
        (an initializer that is also a graph input holds another value when fed). None runs the
        steps one by one. A step of a segment that fails raises
        :class:`onnxlite.plan.SegmentStepError` with the step's plan index."""
        return None

    def packed_constant(self, node: Node, name: str) -> Any:
        """The stand-in that this provider's kernel for ``node`` recognises in place of the
        initializer ``name``, whose values it keeps in its own form (packed at session
        creation); None when it needs the array. Where ``node`` alone reads the initializer,
        the plan and the graph hold the stand-in, so the original array is freed."""
        return None

    def writes_fresh(self, node: Node, fn: Callable[..., Any]) -> bool:
        """Whether ``fn``, this provider's step for ``node``, always returns newly allocated
        buffers (never views of its inputs or of cached values)."""
        return False

    def inplace_variant(
        self, node: Node, owned: tuple[bool, ...], fn: Callable[..., Any]
    ) -> Callable[..., Any] | None:
        """A step for ``node`` that may overwrite the inputs marked in ``owned`` (fresh buffers
        that it alone reads and no graph output holds), or None to keep ``fn``."""
        return None

    def to_device(self, value: Any) -> Any:
        return value

    def to_cpu(self, value: Any) -> Any:
        return value


def group_io(graph: Graph, group: Sequence[int]) -> tuple[list[str], list[str]]:
    """The calling convention of a compiled group: its external inputs (in first-use order) and
    its outputs (values read outside the group or graph outputs, in production order)."""
    members = set(group)
    produced: dict[str, int] = {}
    for i in group:
        for o in graph.nodes[i].outputs:
            if o:
                produced[o] = i
    inputs: list[str] = []
    for i in sorted(group):
        node = graph.nodes[i]
        names = [n for n in node.inputs if n]
        for _, sub in node.graphs():
            names.extend(sorted(sub.free_names()))
        for n in names:
            if n not in produced and n not in inputs:
                inputs.append(n)
    used_outside = {o.name for o in graph.outputs}
    for j, node in enumerate(graph.nodes):
        if j not in members:
            used_outside.update(node.inputs)
            for _, sub in node.graphs():
                used_outside |= sub.free_names()
    outputs = [o for o in produced if o in used_outside]
    return inputs, outputs
