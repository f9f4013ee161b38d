"""The oneDNN execution provider (``DnnlExecutionProvider``), over the onednn-cpu-gomp wheel."""

from __future__ import annotations

from .provider import DnnlExecutionProvider

__all__ = ["DnnlExecutionProvider"]
