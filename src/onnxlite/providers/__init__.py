"""Execution providers: the contract, the known providers, and the partitioner."""

from __future__ import annotations

from .base import ExecutionProvider
from .cpu.provider import CPUExecutionProvider

# Every provider name onnxruntime knows (get_all_providers), in its priority order.
ALL_PROVIDER_NAMES = [
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "MIGraphXExecutionProvider",
    "ROCMExecutionProvider",
    "OpenVINOExecutionProvider",
    "DnnlExecutionProvider",
    "VitisAIExecutionProvider",
    "QNNExecutionProvider",
    "NnapiExecutionProvider",
    "VSINPUExecutionProvider",
    "JsExecutionProvider",
    "CoreMLExecutionProvider",
    "ArmNNExecutionProvider",
    "ACLExecutionProvider",
    "DmlExecutionProvider",
    "RknpuExecutionProvider",
    "WebNNExecutionProvider",
    "WebGpuExecutionProvider",
    "XnnpackExecutionProvider",
    "CANNExecutionProvider",
    "AzureExecutionProvider",
    "CPUExecutionProvider",
]

# Providers onnxlite implements, best first; the CPU provider is always last.
PROVIDER_CLASSES: dict[str, type[ExecutionProvider]] = {
    "CPUExecutionProvider": CPUExecutionProvider,
}


def available_providers() -> list[str]:
    """Names of the providers usable on this machine, in priority order."""
    return [n for n, cls in PROVIDER_CLASSES.items() if cls.availability() is None]


__all__ = [
    "ALL_PROVIDER_NAMES",
    "PROVIDER_CLASSES",
    "CPUExecutionProvider",
    "ExecutionProvider",
    "available_providers",
]
