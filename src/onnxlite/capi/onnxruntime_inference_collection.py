"""onnxruntime.capi.onnxruntime_inference_collection: the Python API classes by that path."""

from __future__ import annotations

from ..iobinding import IOBinding  # noqa: F401 - re-exported names
from ..ortvalue import OrtValue  # noqa: F401
from ..session import InferenceSession

Session = InferenceSession
