"""Fixtures: the CUDA provider's kernels on the host (numpy), and the real GPU when there is one.

``HostCUDAProvider`` is the CUDA provider with numpy as its array backend: it runs the same
kernels, capability checks and device copies, so they are tested on machines without a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from onnxlite import ortvalue
from onnxlite import providers as providers_mod
from onnxlite.providers.cuda._backend import Backend, load_error, numpy_backend
from onnxlite.providers.cuda.provider import CUDAExecutionProvider, CudaOptions

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class CountingBackend(Backend):
    """numpy, counting host-to-device and device-to-host copies."""

    to_device_calls: ClassVar[list[Any]] = []

    def to_device(self, a: Any) -> Any:
        CountingBackend.to_device_calls.append(a)
        return super().to_device(a)


def host_backend(device_id: int = 0) -> Backend:
    be = numpy_backend()
    return CountingBackend(xp=be.xp, dev_type=be.dev_type, erf=be.erf, to_host=be.to_host)


class HostCUDAProvider(CUDAExecutionProvider):
    to_cpu_calls: ClassVar[list[Any]] = []

    @classmethod
    def availability(cls) -> str | None:
        return None

    def _make_backend(self, cfg: CudaOptions) -> Backend:
        return host_backend(cfg.device_id)

    def to_cpu(self, value: Any) -> Any:
        HostCUDAProvider.to_cpu_calls.append(value)
        return super().to_cpu(value)


@pytest.fixture
def host_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[HostCUDAProvider]]:
    """CUDAExecutionProvider (and OrtValue's 'cuda' device) backed by numpy."""
    monkeypatch.setitem(providers_mod.PROVIDER_CLASSES, CUDA, HostCUDAProvider)
    monkeypatch.setitem(ortvalue._DEVICE_BACKENDS, "cuda", host_backend)
    CountingBackend.to_device_calls.clear()
    HostCUDAProvider.to_cpu_calls.clear()
    yield HostCUDAProvider


def gpu_missing() -> str | None:
    return load_error()


requires_gpu = pytest.mark.skipif(
    gpu_missing() is not None, reason=f"needs CuPy and a CUDA device: {gpu_missing()}"
)


def assert_close(got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_allclose(
        np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=atol
    )
