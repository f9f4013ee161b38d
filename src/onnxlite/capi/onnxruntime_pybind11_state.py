"""onnxruntime.capi.onnxruntime_pybind11_state: the exception classes (and API classes) by that path."""

from __future__ import annotations

from ..errors import (  # noqa: F401 - re-exported names
    EngineError,
    EPFail,
    Fail,
    InvalidArgument,
    InvalidGraph,
    InvalidProtobuf,
    ModelLoadCanceled,
    ModelLoaded,
    NoModel,
    NoSuchFile,
    NotFound,
    NotImplemented,
    RuntimeException,
)
from ..options import (  # noqa: F401
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    RunOptions,
    SessionOptions,
)
from ..ortvalue import OrtValue  # noqa: F401
from ..session import ModelMetadata, NodeArg  # noqa: F401
