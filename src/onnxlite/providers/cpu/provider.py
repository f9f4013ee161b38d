"""CPUExecutionProvider: numpy kernels; runs every node no other provider claims."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from ...ir.graph import Graph, Node
from ..base import ExecutionProvider, schema_version
from ..registry import KernelDef, NodeInfo, norm_domain
from .inplace import FRESH_OPS
from .inplace import inplace_variant as _inplace_variant
from .kernels import load_all
from .kernels.contrib import fused_matmul_feature_major
from .layout import transpose_matmul_weights
from .registry import CPU_KERNELS, CUSTOM_KERNELS


class CPUExecutionProvider(ExecutionProvider):
    name = "CPUExecutionProvider"
    device = "cpu"
    registry = CPU_KERNELS

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        load_all()
        # the FusedMatMul nodes of transform_assigned whose products stay feature-major
        self._feature_major: set[int] = set()

    def transform_assigned(self, graph: Graph, nodes: list[int], opsets: MutableMapping[str, int]) -> None:
        self._feature_major.update(id(n) for n in transpose_matmul_weights(graph, nodes, opsets))

    def kernel(self, info: NodeInfo, node: Node, opsets: Mapping[str, int]) -> Callable[..., Any]:
        if id(node) in self._feature_major:
            return fused_matmul_feature_major
        return super().kernel(info, node, opsets)

    def lookup(self, node: Node, opsets: Mapping[str, int]) -> KernelDef | None:
        # Users' custom kernels come first, so that they can replace a built-in one.
        custom = CUSTOM_KERNELS.lookup(node.domain, node.op_type, schema_version(node, opsets))
        return custom if custom is not None else super().lookup(node, opsets)

    def writes_fresh(self, node: Node, fn: Callable[..., Any]) -> bool:
        if CUSTOM_KERNELS.has_op(node.domain, node.op_type):
            return False  # a user's kernel may return anything
        return (norm_domain(node.domain), node.op_type) in FRESH_OPS

    def inplace_variant(
        self, node: Node, owned: tuple[bool, ...], fn: Callable[..., Any]
    ) -> Callable[..., Any] | None:
        return _inplace_variant(node.op_type, node.domain, node.attrs, owned, fn)
