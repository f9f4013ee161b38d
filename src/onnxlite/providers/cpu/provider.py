"""CPUExecutionProvider: numpy kernels; runs every node no other provider claims."""

from __future__ import annotations

from collections.abc import Mapping

from ...ir.graph import Node
from ..base import ExecutionProvider, schema_version
from ..registry import KernelDef
from .kernels import load_all
from .registry import CPU_KERNELS, CUSTOM_KERNELS


class CPUExecutionProvider(ExecutionProvider):
    name = "CPUExecutionProvider"
    device = "cpu"
    registry = CPU_KERNELS

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        load_all()

    def lookup(self, node: Node, opsets: Mapping[str, int]) -> KernelDef | None:
        # Users' custom kernels come first, so that they can replace a built-in one.
        custom = CUSTOM_KERNELS.lookup(node.domain, node.op_type, schema_version(node, opsets))
        return custom if custom is not None else super().lookup(node, opsets)
