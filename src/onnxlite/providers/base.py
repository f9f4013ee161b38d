"""The execution provider contract.

A provider tells which nodes it can run (:meth:`ExecutionProvider.capability`, as groups of node
indices), then supplies a kernel per node (:meth:`kernel`) or one callable for a whole group
(:meth:`compile`). It names its device and moves values to and from the CPU. The partitioner asks
providers in priority order; the CPU provider takes whatever nobody claims.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import onnx

from ..ir.graph import Graph, Node
from .registry import KernelDef, KernelRegistry, NodeInfo, norm_domain


def schema_version(node: Node, opsets: Mapping[str, int]) -> int:
    """The since_version of the node's op schema under its opset (the opset itself if unknown)."""
    dom = norm_domain(node.domain)
    op_type = node.op_type
    opset = (node.opset_override or opsets).get(dom) or opsets.get(dom, 1)
    try:
        return int(onnx.defs.get_schema(op_type, opset, dom).since_version)
    except Exception:
        return opset


class ExecutionProvider:
    """Base class of providers. Subclasses set ``name``, ``device`` and ``registry``."""

    name: ClassVar[str] = ""
    device: ClassVar[str] = "cpu"
    registry: ClassVar[KernelRegistry | None] = None

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

    def capability(
        self, graph: Graph, candidates: list[int], opsets: Mapping[str, int]
    ) -> list[list[int]]:
        """Groups of node indices (among ``candidates``) this provider claims."""
        return [[i] for i in candidates if self.supports(graph.nodes[i], graph, opsets)]

    def kernel(self, info: NodeInfo, node: Node, opsets: Mapping[str, int]) -> Callable[..., Any]:
        kd = self.lookup(node, opsets)
        if kd is None:
            raise LookupError(f"{self.name} has no kernel for {info.describe()}")
        return kd.bind(info)

    def compile(self, graph: Graph, group: list[int]) -> Callable[..., Any] | None:
        """A callable for a whole group, or None to use per-node kernels."""
        return None

    def to_device(self, value: Any) -> Any:
        return value

    def to_cpu(self, value: Any) -> Any:
        return value
