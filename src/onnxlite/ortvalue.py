"""OrtValue: a value held by the runtime (tensor, sequence, map or optional), as in onnxruntime."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidArgument
from .types import elem_name, np_dtype, onnx_type

_DEVICES = ("cpu",)


class OrtValue:
    """Wraps a numpy array (zero copy on CPU), a list (sequence), a dict (map) or None."""

    __slots__ = ("_device", "_device_id", "_value")

    def __init__(self, value: Any, device_type: str = "cpu", device_id: int = 0) -> None:
        self._value = value
        self._device = device_type
        self._device_id = device_id

    @classmethod
    def ortvalue_from_numpy(
        cls, numpy_obj: Any, device_type: str = "cpu", device_id: int = 0
    ) -> OrtValue:
        """Wrap a numpy array without copying it."""
        dev = str(device_type).lower()
        if dev not in _DEVICES:
            raise InvalidArgument(
                f"device_type {device_type!r} is not available; onnxlite has {list(_DEVICES)}"
            )
        return cls(np.asarray(numpy_obj), dev, device_id)

    @classmethod
    def ortvalue_from_shape_and_type(
        cls, shape: Any, element_type: Any, device_type: str = "cpu", device_id: int = 0
    ) -> OrtValue:
        """A new (uninitialised) tensor; element_type is a numpy dtype or an ONNX element type."""
        dt = np_dtype(element_type) if isinstance(element_type, int) else np.dtype(element_type)
        return cls.ortvalue_from_numpy(np.empty(tuple(shape), dtype=dt), device_type, device_id)

    @classmethod
    def ort_value_from_sparse_tensor(cls, sparse_tensor: Any) -> OrtValue:
        raise InvalidArgument("sparse OrtValues are not supported; pass a dense numpy array")

    def numpy(self) -> Any:
        if not isinstance(self._value, np.ndarray):
            raise InvalidArgument("this OrtValue is not a tensor; use its value through run()")
        return self._value

    def shape(self) -> list[int]:
        return list(np.shape(self._value)) if self.is_tensor() else []

    def data_type(self) -> str:
        v = self._value
        if isinstance(v, np.ndarray):
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

    def is_tensor(self) -> bool:
        return isinstance(self._value, np.ndarray)

    def is_tensor_sequence(self) -> bool:
        return isinstance(self._value, list)

    def is_sparse_tensor(self) -> bool:
        return False

    def has_value(self) -> bool:
        return self._value is not None

    def data_ptr(self) -> int:
        return int(self.numpy().ctypes.data)

    def update_inplace(self, np_arr: Any) -> None:
        """Copy ``np_arr`` into this tensor (same shape and dtype)."""
        arr = self.numpy()
        src = np.asarray(np_arr)
        if src.shape != arr.shape or src.dtype != arr.dtype:
            raise InvalidArgument(
                f"update_inplace needs {arr.dtype}{list(arr.shape)}, got {src.dtype}{list(src.shape)}"
            )
        arr[...] = src

    def value(self) -> Any:
        """The held Python value (array, list, dict or None)."""
        return self._value

    def __repr__(self) -> str:
        return f"OrtValue({self.data_type()}, shape={self.shape()}, device={self._device!r})"
