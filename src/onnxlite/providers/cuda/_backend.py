"""The array backend of the CUDA provider: CuPy on a GPU, or numpy for the test suite.

Kernels compute with ``be.ns(*inputs)``: the device namespace (cupy) when any input lives on the
device, numpy otherwise. Small integer tensors (shapes, axes, indices of a few elements) stay on
the host, as onnxruntime keeps shape inputs in CPU memory: a Reshape or Slice reads them without a
device-to-host synchronisation, and Shape -> Gather -> Concat chains never touch the GPU.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

INSTALL_HINT = "pip install onnxlite[cuda] (CuPy: cupy-cuda12x, or cupy-cuda13x for CUDA 13)"
# Integer and bool tensors with at most this many elements stay on the host.
HOST_SMALL = 16


@functools.cache
def load_error() -> str | None:
    """None when CuPy is importable and sees a CUDA device; otherwise what is missing."""
    try:
        import cupy
    except Exception as e:  # ImportError, or a broken CUDA toolkit install
        return f"CuPy is not installed or fails to import ({type(e).__name__}: {e}); {INSTALL_HINT}"
    try:
        n = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # no driver, or a driver older than CuPy's CUDA runtime
        return f"CuPy finds no usable CUDA device ({type(e).__name__}: {e})"
    if n < 1:
        return "CuPy finds no CUDA device"
    return None


def device_count() -> int:
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())


def _host_small(a: np.ndarray) -> bool:
    return a.size <= HOST_SMALL and a.dtype.kind in "biu"


@dataclass(frozen=True)
class Backend:
    """What the kernels need from the array library of one device."""

    xp: Any  # the device namespace: cupy, or numpy for the host test backend
    dev_type: type  # the device array type
    erf: Callable[[Any], Any]
    to_host: Callable[[Any], np.ndarray]
    cudnn: Any = None  # cupyx.cudnn where CuPy has it (CuPy 13 and older)
    device_id: int = 0
    gpu: bool = False
    conv_auto_tune: bool = False  # cuDNN benchmarks convolution algorithms (EXHAUSTIVE search)

    def ns(self, *arrays: Any) -> Any:
        """The namespace to compute ``arrays`` in: the device's if any of them lives there."""
        for a in arrays:
            if isinstance(a, self.dev_type):
                return self.xp
        return np

    def on(self, m: Any, a: Any) -> Any:
        """``a`` as an array of namespace ``m`` (a host-to-device copy where needed)."""
        if a is None:
            return None
        return m.asarray(a)

    def to_device(self, a: Any) -> Any:
        if isinstance(a, self.dev_type):
            return a
        arr = np.asarray(a)
        if _host_small(arr):
            return arr
        return self.xp.asarray(arr)

    def place(self, host: np.ndarray) -> Any:
        """Where a value made on the host belongs: small integers stay, the rest moves."""
        return host if _host_small(host) else self.xp.asarray(host)

    def host_ints(self, a: Any) -> list[int]:
        """The integers of a (small) tensor, on the host."""
        return [int(v) for v in np.asarray(self.to_host(a)).reshape(-1).tolist()]

    def wrap_pointer(self, ptr: int, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """A device array over memory someone else owns (IOBinding.bind_input's buffer_ptr)."""
        if not self.gpu:
            raise ValueError("raw device pointers need the CuPy backend")
        import cupy

        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        mem = cupy.cuda.UnownedMemory(ptr, nbytes, None, self.device_id)
        return cupy.ndarray(shape, dtype, cupy.cuda.MemoryPointer(mem, 0))

    def synchronize(self) -> None:
        """Wait for the work queued on the device."""
        if self.gpu:
            import cupy

            with self.context():
                cupy.cuda.get_current_stream().synchronize()

    def context(self) -> Any:
        """The device to run on (CuPy's current device is per thread: set it per call)."""
        if not self.gpu or self.device_id == 0:
            return contextlib.nullcontext()
        import cupy

        return cupy.cuda.Device(self.device_id)


def numpy_backend() -> Backend:
    """The kernels on the host: how the test suite runs them without a GPU."""
    from ..cpu.kernels.elementwise import erf

    return Backend(xp=np, dev_type=np.ndarray, erf=erf, to_host=np.asarray)


@functools.cache
def cupy_backend(device_id: int, conv_auto_tune: bool = False) -> Backend:
    import cupy
    import cupyx.scipy.special as special

    try:  # cuDNN bindings: CuPy 13 and older, with the cuDNN library installed
        import cupyx.cudnn as cudnn
    except Exception:
        cudnn = None
    return Backend(
        xp=cupy,
        dev_type=cupy.ndarray,
        erf=special.erf,
        to_host=cupy.asnumpy,
        cudnn=cudnn,
        device_id=device_id,
        gpu=True,
        conv_auto_tune=conv_auto_tune,
    )


# (domain, op_type) -> builder(info, backend) returning the node's callable
Builder = Callable[[Any, Backend], Callable[..., Any]]
BUILDERS: dict[tuple[str, str], Builder] = {}


def builds(*ops: str, domain: str = "") -> Callable[[Builder], Builder]:
    """Register a kernel builder for ``ops`` (the provider's capability checks decide what runs)."""

    def deco(fn: Builder) -> Builder:
        for op in ops:
            BUILDERS[(domain, op)] = fn
        return fn

    return deco


def compute_dtype(dt: Any) -> Any:
    """16-bit floats compute reductions and transcendental functions in float32."""
    return np.float32 if np.dtype(dt) == np.float16 else dt
