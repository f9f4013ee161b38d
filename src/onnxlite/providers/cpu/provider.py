"""CPUExecutionProvider: numpy kernels; runs every node no other provider claims."""

from __future__ import annotations

from collections.abc import Mapping

from ..base import ExecutionProvider
from .kernels import load_all
from .registry import CPU_KERNELS


class CPUExecutionProvider(ExecutionProvider):
    name = "CPUExecutionProvider"
    device = "cpu"
    registry = CPU_KERNELS

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        load_all()
