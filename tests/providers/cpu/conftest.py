"""These tests check the CPU provider's own kernels: no other provider may claim their nodes."""

from __future__ import annotations

import pytest

from onnxlite import providers as providers_mod
from onnxlite.providers.cpu.provider import CPUExecutionProvider


@pytest.fixture(autouse=True)
def cpu_provider_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers_mod, "PROVIDER_CLASSES", {"CPUExecutionProvider": CPUExecutionProvider})
    monkeypatch.setattr(providers_mod, "_BUILTIN", {})
