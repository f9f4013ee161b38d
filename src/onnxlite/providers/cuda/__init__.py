"""The CUDA execution provider (``CUDAExecutionProvider``), over CuPy (``onnxlite[cuda]``)."""

from __future__ import annotations

from .provider import CUDAExecutionProvider

__all__ = ["CUDAExecutionProvider"]
