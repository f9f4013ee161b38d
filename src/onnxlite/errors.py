"""onnxruntime's exception classes (onnxruntime.capi.onnxruntime_pybind11_state), same names.

All derive from :class:`OnnxliteError` (a RuntimeError, as onnxruntime's are), so one except
clause catches every runtime failure.
"""

from __future__ import annotations


class OnnxliteError(RuntimeError):
    """Base of every error onnxlite raises for a model, graph, provider or run failure."""


class Fail(OnnxliteError):
    """Generic failure, also raised when a kernel fails during a run."""


class InvalidArgument(OnnxliteError, ValueError):
    """An argument (feed, option, provider option) is invalid."""


class NoSuchFile(OnnxliteError, FileNotFoundError):
    """The model file (or an external data file) does not exist."""


class NoModel(OnnxliteError):
    """No model was loaded."""


class EngineError(OnnxliteError):
    """Internal engine failure."""


class RuntimeException(OnnxliteError):
    """Run-time failure outside a kernel (cancelled run, provider failure during a run)."""


class InvalidProtobuf(OnnxliteError):
    """The model bytes are not a valid ONNX protobuf (corrupt or truncated file)."""


class ModelLoaded(OnnxliteError):
    """A model was already loaded."""


class NotImplemented_(OnnxliteError, NotImplementedError):
    """An operator, type or attribute has no implementation."""


class InvalidGraph(OnnxliteError):
    """The graph is invalid: a cycle, an undefined value, a missing opset import, ..."""


class EPFail(OnnxliteError):
    """An execution provider failed."""


class NotFound(OnnxliteError):
    """A requested item was not found."""


class ModelLoadCanceled(OnnxliteError):
    """Model loading was cancelled."""


# The spelling users import: `from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented`.
NotImplemented = NotImplemented_

__all__ = [
    "EPFail",
    "EngineError",
    "Fail",
    "InvalidArgument",
    "InvalidGraph",
    "InvalidProtobuf",
    "ModelLoadCanceled",
    "ModelLoaded",
    "NoModel",
    "NoSuchFile",
    "NotFound",
    "NotImplemented",
    "OnnxliteError",
    "RuntimeException",
]
