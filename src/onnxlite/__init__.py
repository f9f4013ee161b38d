"""onnxlite: an ONNX inference runtime in Python with onnxruntime's API.

``import onnxlite as ort`` runs code written for onnxruntime's Python API.
"""

from __future__ import annotations

import logging as _logging

from . import errors
from .custom_ops import register_custom_op, unregister_custom_op
from .errors import (
    EngineError,
    EPFail,
    Fail,
    InvalidArgument,
    InvalidGraph,
    InvalidProtobuf,
    ModelLoaded,
    NoModel,
    NoSuchFile,
    NotImplemented,
    RuntimeException,
)
from .iobinding import IOBinding
from .options import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    RunOptions,
    SessionOptions,
)
from .ortvalue import OrtValue
from .providers import available_providers as _available
from .providers import known_provider_names as _known
from .session import InferenceSession, ModelMetadata, NodeArg
from .version import __version__

version = __version__
SessionIOBinding = IOBinding


def get_available_providers() -> list[str]:
    """Providers usable on this machine, best first (CPUExecutionProvider last)."""
    return _available()


def get_all_providers() -> list[str]:
    """Every provider name onnxruntime defines, plus installed plugins' names.

    The ones usable here are get_available_providers().
    """
    return _known()


def get_device() -> str:
    """'CPU', or 'GPU' when a GPU provider is available."""
    return "GPU" if any(p in _available() for p in ("CUDAExecutionProvider",)) else "CPU"


def get_version_string() -> str:
    return __version__


def get_build_info() -> str:
    return f"onnxlite {__version__} (pure Python, numpy kernels)"


_LEVELS = {
    0: _logging.DEBUG,
    1: _logging.INFO,
    2: _logging.WARNING,
    3: _logging.ERROR,
    4: _logging.CRITICAL,
}


def set_default_logger_severity(severity: int) -> None:
    """0 verbose, 1 info, 2 warning, 3 error, 4 fatal."""
    if severity not in _LEVELS:
        raise InvalidArgument(f"logger severity must be 0..4, got {severity!r}")
    _logging.getLogger("onnxlite").setLevel(_LEVELS[severity])


def set_default_logger_verbosity(verbosity: int) -> None:
    """Accepted for compatibility; onnxlite has one verbosity."""


def set_seed(seed: int) -> None:
    """Seed the random generator used by random ops without a seed attribute."""
    import numpy as np

    np.random.seed(seed)


def disable_telemetry_events() -> None:
    """onnxlite sends no telemetry."""


def enable_telemetry_events() -> None:
    """onnxlite sends no telemetry."""


__all__ = [
    "EPFail",
    "EngineError",
    "ExecutionMode",
    "ExecutionOrder",
    "Fail",
    "GraphOptimizationLevel",
    "IOBinding",
    "InferenceSession",
    "InvalidArgument",
    "InvalidGraph",
    "InvalidProtobuf",
    "ModelLoaded",
    "ModelMetadata",
    "NoModel",
    "NoSuchFile",
    "NodeArg",
    "NotImplemented",
    "OrtValue",
    "RunOptions",
    "RuntimeException",
    "SessionIOBinding",
    "SessionOptions",
    "__version__",
    "disable_telemetry_events",
    "enable_telemetry_events",
    "errors",
    "get_all_providers",
    "get_available_providers",
    "get_build_info",
    "get_device",
    "get_version_string",
    "register_custom_op",
    "set_default_logger_severity",
    "set_default_logger_verbosity",
    "set_seed",
    "unregister_custom_op",
    "version",
]
