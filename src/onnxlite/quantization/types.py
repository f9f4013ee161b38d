"""Enums with onnxruntime.quantization's names and values, and the integer ranges of each type."""

from __future__ import annotations

from enum import Enum

import ml_dtypes
import numpy as np
from onnx import TensorProto


class QuantFormat(Enum):
    QOperator = 0
    QDQ = 1

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def from_string(fmt: str) -> QuantFormat:
        try:
            return QuantFormat[fmt]
        except KeyError:
            raise ValueError(f"unknown QuantFormat {fmt!r}; expected one of QOperator, QDQ") from None


class QuantType(Enum):
    QInt8 = 0
    QUInt8 = 1
    QFLOAT8E4M3FN = 2
    QInt16 = 3
    QUInt16 = 4
    QInt4 = 5
    QUInt4 = 6

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def from_string(t: str) -> QuantType:
        try:
            return QuantType[t]
        except KeyError:
            names = ", ".join(q.name for q in QuantType)
            raise ValueError(f"unknown QuantType {t!r}; expected one of {names}") from None

    @property
    def tensor_type(self) -> int:
        return _TENSOR_TYPE[self]

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(_NP[self])

    @property
    def is_float8(self) -> bool:
        return self is QuantType.QFLOAT8E4M3FN

    @property
    def needs_opset21(self) -> bool:
        return self in (QuantType.QInt16, QuantType.QUInt16, QuantType.QInt4, QuantType.QUInt4)


class CalibrationMethod(Enum):
    MinMax = 0
    Entropy = 1
    Percentile = 2
    Distribution = 3


_TENSOR_TYPE = {
    QuantType.QInt8: TensorProto.INT8,
    QuantType.QUInt8: TensorProto.UINT8,
    QuantType.QFLOAT8E4M3FN: TensorProto.FLOAT8E4M3FN,
    QuantType.QInt16: TensorProto.INT16,
    QuantType.QUInt16: TensorProto.UINT16,
    QuantType.QInt4: TensorProto.INT4,
    QuantType.QUInt4: TensorProto.UINT4,
}
_NP = {
    QuantType.QInt8: np.int8,
    QuantType.QUInt8: np.uint8,
    QuantType.QFLOAT8E4M3FN: ml_dtypes.float8_e4m3fn,
    QuantType.QInt16: np.int16,
    QuantType.QUInt16: np.uint16,
    QuantType.QInt4: ml_dtypes.int4,
    QuantType.QUInt4: ml_dtypes.uint4,
}


def qrange(qtype: QuantType, *, reduce_range: bool = False, symmetric: bool = False) -> tuple[int, int]:
    """(qmin, qmax) as onnxruntime's get_qmin_qmax_for_qType: symmetric signed ranges drop the
    most negative value; reduce_range gives 7-bit ranges (int8 [-64, 64], uint8 [0, 127])."""
    if qtype.is_float8:
        raise ValueError("float 8 types have no integer range")
    if reduce_range and qtype is QuantType.QInt8:
        return (-64, 64)
    if reduce_range and qtype is QuantType.QUInt8:
        return (0, 127)
    info = ml_dtypes.iinfo(qtype.np_dtype)
    lo, hi = int(info.min), int(info.max)
    if symmetric and lo < 0:
        lo = -hi
    return lo, hi
