"""Execution providers: the contract, the known providers, and the partitioner."""

from __future__ import annotations

import importlib

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

# Providers loaded so far, by name: the CPU provider, the built-in ones a session or a listing
# asked for, and third-party ones from the entry-point group.
PROVIDER_CLASSES: dict[str, type[ExecutionProvider]] = {
    "CPUExecutionProvider": CPUExecutionProvider,
}
# The other built-in providers, by module: imported when first named (their kernels and library
# bindings cost a session that does not use them 3 MiB and several ms of import).
_BUILTIN: dict[str, str] = {
    "CUDAExecutionProvider": ".cuda.provider",
    "DnnlExecutionProvider": ".dnnl.provider",
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
        if cls.name not in _BUILTIN:  # a built-in name stays the built-in provider's
            PROVIDER_CLASSES.setdefault(cls.name, cls)


def provider_class(name: str) -> type[ExecutionProvider] | None:
    """The provider class of that name (None: unknown), its module imported if need be."""
    _load_plugins()
    cls = PROVIDER_CLASSES.get(name)
    if cls is None and name in _BUILTIN:
        cls = getattr(importlib.import_module(_BUILTIN[name], __name__), name)
        PROVIDER_CLASSES[name] = cls
    return cls


def provider_classes() -> dict[str, type[ExecutionProvider]]:
    """Every provider class, by name (the built-in ones all imported)."""
    _load_plugins()
    for name in _BUILTIN:
        provider_class(name)
    return PROVIDER_CLASSES


def known_provider_names() -> list[str]:
    """onnxruntime's provider names plus those of installed plugins."""
    _load_plugins()
    return ALL_PROVIDER_NAMES + [n for n in PROVIDER_CLASSES if n not in ALL_PROVIDER_NAMES]


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
    "provider_class",
    "provider_classes",
]
