"""OrtValue: a value held by the runtime (tensor, sequence, map or optional), as in onnxruntime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InvalidArgument
from .types import elem_name, np_dtype, onnx_type

_DEVICES = ("cpu", "cuda")
# Array backends of non-CPU devices by name, for tests that stand a host backend in for a GPU.
_DEVICE_BACKENDS: dict[str, Callable[[int], Any]] = {}


def device_backend(device_type: str, device_id: int = 0) -> Any:
    """The array backend (``providers.cuda._backend.Backend``) holding values of a non-CPU
    device; InvalidArgument naming what is missing where the device is not usable here."""
    dev = str(device_type).lower()
    hook = _DEVICE_BACKENDS.get(dev)
    if hook is not None:
        return hook(int(device_id))
    if dev != "cuda":
        raise InvalidArgument(f"device_type {device_type!r} is not available; onnxlite has {list(_DEVICES)}")
    from .providers.cuda._backend import cupy_backend, device_count, load_error

    why = load_error()
    if why is not None:
        raise InvalidArgument(f"device_type 'cuda' is not available: {why}")
    if not 0 <= int(device_id) < device_count():
        raise InvalidArgument(f"device_id {device_id} is out of range: CuPy sees {device_count()} device(s)")
    return cupy_backend(int(device_id))


class OrtValue:
    """Wraps a numpy array (zero copy on CPU), a device array (device_type 'cuda': a CuPy array),
    a list (sequence), a dict (map) or None."""

    __slots__ = ("_device", "_device_id", "_value")

    def __init__(self, value: Any, device_type: str = "cpu", device_id: int = 0) -> None:
        self._value = value
        self._device = device_type
        self._device_id = device_id

    @classmethod
    def ortvalue_from_numpy(cls, numpy_obj: Any, device_type: str = "cpu", device_id: int = 0) -> OrtValue:
        """Wrap a numpy array without copying it (CPU), or copy it to a device ('cuda')."""
        dev = str(device_type).lower()
        if dev not in _DEVICES:
            raise InvalidArgument(
                f"device_type {device_type!r} is not available; onnxlite has {list(_DEVICES)}"
            )
        if dev != "cpu":
            be = device_backend(dev, device_id)
            with be.context():
                return cls(be.xp.asarray(numpy_obj), dev, device_id)
        return cls(np.asarray(numpy_obj), dev, device_id)

    @classmethod
    def ortvalue_from_shape_and_type(
        cls, shape: Any, element_type: Any, device_type: str = "cpu", device_id: int = 0
    ) -> OrtValue:
        """A new (uninitialised) tensor; element_type is a numpy dtype or an ONNX element type."""
        dt = np_dtype(element_type) if isinstance(element_type, int) else np.dtype(element_type)
        dev = str(device_type).lower()
        if dev != "cpu" and dev in _DEVICES:
            be = device_backend(dev, device_id)
            with be.context():
                return cls(be.xp.empty(tuple(shape), dtype=dt), dev, device_id)
        return cls.ortvalue_from_numpy(np.empty(tuple(shape), dtype=dt), device_type, device_id)

    @classmethod
    def ort_value_from_sparse_tensor(cls, sparse_tensor: Any) -> OrtValue:
        raise InvalidArgument("sparse OrtValues are not supported; pass a dense numpy array")

    def numpy(self) -> Any:
        """The tensor as a numpy array: the array itself on CPU, a host copy of a device tensor."""
        if not self.is_tensor():
            raise InvalidArgument("this OrtValue is not a tensor; use its value through run()")
        if self._device != "cpu":
            return np.asarray(device_backend(self._device, self._device_id).to_host(self._value))
        return self._value

    def shape(self) -> list[int]:
        return [int(d) for d in self._value.shape] if self.is_tensor() else []

    def data_type(self) -> str:
        v = self._value
        if self.is_tensor():
            return f"tensor({elem_name(onnx_type(v.dtype))})"
        if isinstance(v, list):
            inner = f"tensor({elem_name(onnx_type(v[0].dtype))})" if v else "tensor(float)"
            return f"seq({inner})"
        if isinstance(v, dict):
            return "map"
        return "optional"

    def element_type(self) -> Any:
        if not self.is_tensor():
            raise InvalidArgument("element_type() is defined for tensors only")
        return self._value.dtype.type

    def device_name(self) -> str:
        return self._device

    def device_id(self) -> int:
        return self._device_id

    def is_tensor(self) -> bool:
        if self._device != "cpu":  # device values are always tensors (CuPy arrays)
            return self._value is not None
        return isinstance(self._value, np.ndarray)

    def is_tensor_sequence(self) -> bool:
        return isinstance(self._value, list)

    def is_sparse_tensor(self) -> bool:
        return False

    def has_value(self) -> bool:
        return self._value is not None

    def data_ptr(self) -> int:
        if self._device != "cpu":
            mem: Any = getattr(self._value, "data", None)
            if hasattr(mem, "ptr"):  # a CuPy array's device memory
                return int(mem.ptr)
            return int(self._value.ctypes.data)
        return int(self.numpy().ctypes.data)

    def update_inplace(self, np_arr: Any) -> None:
        """Copy ``np_arr`` into this tensor (same shape and dtype)."""
        if not self.is_tensor():
            raise InvalidArgument("update_inplace is defined for tensors only")
        arr = self._value
        if self._device != "cpu":
            be = device_backend(self._device, self._device_id)
            with be.context():
                src = be.xp.asarray(np_arr)
        else:
            src = np.asarray(np_arr)
        if tuple(src.shape) != tuple(arr.shape) or src.dtype != arr.dtype:
            raise InvalidArgument(
                f"update_inplace needs {arr.dtype}{list(arr.shape)}, got {src.dtype}{list(src.shape)}"
            )
        arr[...] = src

    def value(self) -> Any:
        """The held Python value (array, list, dict or None)."""
        return self._value

    def __repr__(self) -> str:
        return f"OrtValue({self.data_type()}, shape={self.shape()}, device={self._device!r})"
