"""Element types: ONNX TensorProto data types <-> numpy dtypes, and onnxruntime type strings."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
from onnx import TensorProto, TypeProto

_TP = TensorProto

# The numpy dtype that holds each ONNX element type. Types numpy lacks come from ml_dtypes,
# which onnx itself depends on.
_ONNX_TO_NP: dict[int, np.dtype] = {
    _TP.FLOAT: np.dtype(np.float32),
    _TP.UINT8: np.dtype(np.uint8),
    _TP.INT8: np.dtype(np.int8),
    _TP.UINT16: np.dtype(np.uint16),
    _TP.INT16: np.dtype(np.int16),
    _TP.INT32: np.dtype(np.int32),
    _TP.INT64: np.dtype(np.int64),
    _TP.STRING: np.dtype(object),
    _TP.BOOL: np.dtype(np.bool_),
    _TP.FLOAT16: np.dtype(np.float16),
    _TP.DOUBLE: np.dtype(np.float64),
    _TP.UINT32: np.dtype(np.uint32),
    _TP.UINT64: np.dtype(np.uint64),
    _TP.COMPLEX64: np.dtype(np.complex64),
    _TP.COMPLEX128: np.dtype(np.complex128),
    _TP.BFLOAT16: np.dtype(ml_dtypes.bfloat16),
    _TP.FLOAT8E4M3FN: np.dtype(ml_dtypes.float8_e4m3fn),
    _TP.FLOAT8E4M3FNUZ: np.dtype(ml_dtypes.float8_e4m3fnuz),
    _TP.FLOAT8E5M2: np.dtype(ml_dtypes.float8_e5m2),
    _TP.FLOAT8E5M2FNUZ: np.dtype(ml_dtypes.float8_e5m2fnuz),
    _TP.UINT4: np.dtype(ml_dtypes.uint4),
    _TP.INT4: np.dtype(ml_dtypes.int4),
}
for _name, _ml in (
    ("FLOAT4E2M1", "float4_e2m1fn"),
    ("FLOAT8E8M0", "float8_e8m0fnu"),
    ("UINT2", "uint2"),
    ("INT2", "int2"),
):
    if hasattr(_TP, _name) and hasattr(ml_dtypes, _ml):
        _ONNX_TO_NP[getattr(_TP, _name)] = np.dtype(getattr(ml_dtypes, _ml))

# Several ONNX types share numpy's object dtype (strings only); the reverse map is built so that
# each numpy dtype names its natural ONNX type.
_NP_TO_ONNX: dict[np.dtype, int] = {v: k for k, v in reversed(list(_ONNX_TO_NP.items()))}
_NP_TO_ONNX[np.dtype(object)] = _TP.STRING
_NP_TO_ONNX[np.dtype(np.str_)] = _TP.STRING

# onnxruntime's spelling of element types in NodeArg.type ('tensor(float)').
_ORT_NAMES: dict[int, str] = {
    _TP.FLOAT: "float",
    _TP.UINT8: "uint8",
    _TP.INT8: "int8",
    _TP.UINT16: "uint16",
    _TP.INT16: "int16",
    _TP.INT32: "int32",
    _TP.INT64: "int64",
    _TP.STRING: "string",
    _TP.BOOL: "bool",
    _TP.FLOAT16: "float16",
    _TP.DOUBLE: "double",
    _TP.UINT32: "uint32",
    _TP.UINT64: "uint64",
    _TP.COMPLEX64: "complex64",
    _TP.COMPLEX128: "complex128",
    _TP.BFLOAT16: "bfloat16",
    _TP.FLOAT8E4M3FN: "float8e4m3fn",
    _TP.FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    _TP.FLOAT8E5M2: "float8e5m2",
    _TP.FLOAT8E5M2FNUZ: "float8e5m2fnuz",
    _TP.UINT4: "uint4",
    _TP.INT4: "int4",
}
if hasattr(_TP, "FLOAT4E2M1"):
    _ORT_NAMES[_TP.FLOAT4E2M1] = "float4e2m1"


def np_dtype(elem_type: int) -> np.dtype:
    """The numpy dtype for an ONNX TensorProto element type."""
    try:
        return _ONNX_TO_NP[elem_type]
    except KeyError:
        raise TypeError(f"unsupported ONNX element type {elem_type}") from None


def onnx_type(dtype: Any) -> int:
    """The ONNX TensorProto element type for a numpy dtype."""
    dt = np.dtype(dtype)
    if dt.kind == "U":
        return _TP.STRING
    try:
        return _NP_TO_ONNX[dt]
    except KeyError:
        raise TypeError(f"numpy dtype {dt} has no ONNX element type") from None


def elem_name(elem_type: int) -> str:
    """onnxruntime's short name of an element type: 'float', 'int64', ..."""
    return _ORT_NAMES.get(elem_type, TensorProto.DataType.Name(elem_type).lower())


def type_string(tp: TypeProto | None) -> str:
    """onnxruntime's type string for a TypeProto: 'tensor(float)', 'seq(tensor(int64))', ..."""
    if tp is None:
        return "unknown"
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        return f"tensor({elem_name(tp.tensor_type.elem_type)})"
    if which == "sparse_tensor_type":
        return f"sparse_tensor({elem_name(tp.sparse_tensor_type.elem_type)})"
    if which == "sequence_type":
        return f"seq({type_string(tp.sequence_type.elem_type)})"
    if which == "map_type":
        key = elem_name(tp.map_type.key_type)
        return f"map({key},{type_string(tp.map_type.value_type)})"
    if which == "optional_type":
        return f"optional({type_string(tp.optional_type.elem_type)})"
    return "unknown"


def type_shape(tp: TypeProto | None) -> list[int | str | None] | None:
    """onnxruntime's NodeArg.shape: ints, strings for symbolic dims, None for unknown ones."""
    if tp is None or tp.WhichOneof("value") != "tensor_type":
        return [] if tp is not None else None
    tt = tp.tensor_type
    if not tt.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def static_shape(tp: TypeProto | None) -> tuple[int, ...] | None:
    """A tensor type's shape when every dim is a known number, else None."""
    if tp is None or tp.WhichOneof("value") != "tensor_type":
        return None
    shape = type_shape(tp)
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(d for d in shape if isinstance(d, int))


def np_dtype_of_type_string(type_str: str) -> np.dtype:
    """The numpy dtype of an onnxruntime tensor type string such as 'tensor(float)'."""
    if not type_str.startswith("tensor(") or not type_str.endswith(")"):
        raise TypeError(f"{type_str!r} is not a tensor type")
    name = type_str[len("tensor(") : -1]
    for et, n in _ORT_NAMES.items():
        if n == name:
            return np_dtype(et)
    raise TypeError(f"unknown element type {name!r}")
