"""Execution providers: the contract, the known providers, and the partitioner."""

from __future__ import annotations

from .base import ExecutionProvider
from .cpu.provider import CPUExecutionProvider
from .cuda.provider import CUDAExecutionProvider
from .dnnl.provider import DnnlExecutionProvider

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

# Providers onnxlite implements, by name; third-party ones join from the entry-point group.
PROVIDER_CLASSES: dict[str, type[ExecutionProvider]] = {
    "CUDAExecutionProvider": CUDAExecutionProvider,
    "DnnlExecutionProvider": DnnlExecutionProvider,
    "CPUExecutionProvider": CPUExecutionProvider,
}

ENTRY_POINT_GROUP = "onnxlite.execution_providers"
_plugins_loaded = False


def _load_plugins() -> None:
    """Add the providers that installed packages declare under ``onnxlite.execution_providers``.

    Each entry point names an ExecutionProvider subclass; its ``name`` is the provider's name.
    A plugin that fails to load is reported with a warning and skipped.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import warnings
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, ExecutionProvider) and cls.name):
                raise TypeError(f"{ep.value} is not a named ExecutionProvider subclass")
        except Exception as e:
            warnings.warn(
                f"execution provider plugin {ep.name!r} ({ep.value}) failed to load: {e}", stacklevel=2
            )
            continue
        PROVIDER_CLASSES.setdefault(cls.name, cls)


def provider_classes() -> dict[str, type[ExecutionProvider]]:
    _load_plugins()
    return PROVIDER_CLASSES


def known_provider_names() -> list[str]:
    """onnxruntime's provider names plus those of installed plugins."""
    return ALL_PROVIDER_NAMES + [n for n in provider_classes() if n not in ALL_PROVIDER_NAMES]


def available_providers() -> list[str]:
    """Names of the providers usable on this machine, best first, CPUExecutionProvider last."""
    rank = {n: i for i, n in enumerate(ALL_PROVIDER_NAMES)}
    names = [n for n, cls in provider_classes().items() if cls.availability() is None]
    return sorted(names, key=lambda n: (n == "CPUExecutionProvider", rank.get(n, len(rank))))


__all__ = [
    "ALL_PROVIDER_NAMES",
    "PROVIDER_CLASSES",
    "CPUExecutionProvider",
    "ExecutionProvider",
    "available_providers",
    "known_provider_names",
    "provider_classes",
]
