"""Convert ONNX AttributeProto values to the Python values kernels receive."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import AttributeProto, TensorProto, numpy_helper

from ..types import np_dtype

_A = AttributeProto
_T = TensorProto
# Element types whose raw bytes are exactly numpy's little-endian layout (no packing, no strings).
RAW_DIRECT = frozenset(
    {
        _T.FLOAT,
        _T.DOUBLE,
        _T.FLOAT16,
        _T.INT8,
        _T.UINT8,
        _T.INT16,
        _T.UINT16,
        _T.INT32,
        _T.UINT32,
        _T.INT64,
        _T.UINT64,
        _T.BOOL,
    }
)


# Element types whose values a TensorProto stores in a typed field of their own width.
_TYPED_FIELDS = {
    _T.FLOAT: ("float_data", np.float32),
    _T.DOUBLE: ("double_data", np.float64),
    _T.INT32: ("int32_data", np.int32),
    _T.INT64: ("int64_data", np.int64),
}


def tensor_to_array(t: Any, base_dir: str | None = None) -> Any:
    """A TensorProto as a numpy array (strings as an object array of str); ValueError naming the
    tensor when its dims are negative or its data does not fill them."""
    if any(d < 0 for d in t.dims):
        raise ValueError(f"tensor {t.name!r} has a negative dimension in dims {list(t.dims)}")
    try:
        return _to_array(t, base_dir)
    except (OSError, MemoryError):  # a missing external file or too little memory: as they are
        raise
    except Exception as e:
        if "cannot reshape" in str(e):
            raise ValueError(
                f"tensor {t.name!r}: its data does not fill its dims {list(t.dims)} ({e}); "
                "the model is corrupt"
            ) from None
        raise ValueError(f"tensor {t.name!r}: cannot read its data: {e}") from None


def _to_array(t: Any, base_dir: str | None) -> Any:
    if t.data_location == t.EXTERNAL:
        from onnx.external_data_helper import load_external_data_for_tensor

        load_external_data_for_tensor(t, base_dir or "")
    if t.data_type in RAW_DIRECT and t.raw_data:
        # One copy out of the protobuf, no second one: the runtime treats weights as read-only.
        dt = np_dtype(t.data_type).newbyteorder("<")
        return np.frombuffer(t.raw_data, dtype=dt).reshape(tuple(t.dims))
    field = _TYPED_FIELDS.get(t.data_type)
    if field is not None and not t.raw_data and not t.HasField("segment"):
        # the typed field as it is (numpy_helper's general path cost ~10 us a tensor: light models
        # hold hundreds of one-element fill values)
        return np.array(getattr(t, field[0]), dtype=field[1]).reshape(tuple(t.dims))
    arr = numpy_helper.to_array(t)
    if arr.dtype.kind in "SU" or t.data_type == 8:
        arr = _decode_strings(arr)
    else:
        want = np_dtype(t.data_type)
        if arr.dtype != want:
            arr = arr.view(want) if arr.dtype.itemsize == want.itemsize else arr.astype(want)
    return arr


def _decode_strings(arr: Any) -> Any:
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(arr.reshape(-1)):
        flat[i] = v.decode("utf-8", errors="surrogateescape") if isinstance(v, bytes) else str(v)
    return out


def sparse_to_dense(sp: Any) -> Any:
    """A SparseTensorProto as a dense numpy array."""
    import numpy as np

    values = tensor_to_array(sp.values)
    dims = tuple(int(d) for d in sp.dims)
    dense = np.zeros(dims, dtype=values.dtype)
    idx = tensor_to_array(sp.indices).astype(np.int64)
    if idx.ndim == 1:  # linearised indices
        dense.reshape(-1)[idx] = values
    else:
        dense[tuple(idx.T)] = values
    return dense


def attribute_value(attr: AttributeProto) -> Any:
    """The Python value of an attribute: int, float, str, list, ndarray, GraphProto or TypeProto.

    Graph attributes are returned as GraphProto; the plan builder compiles them.
    """
    t = attr.type
    if t == _A.INT:
        return int(attr.i)
    if t == _A.FLOAT:
        return float(attr.f)
    if t == _A.STRING:
        return attr.s.decode("utf-8", errors="surrogateescape")
    if t == _A.INTS:
        return [int(v) for v in attr.ints]
    if t == _A.FLOATS:
        return [float(v) for v in attr.floats]
    if t == _A.STRINGS:
        return [s.decode("utf-8", errors="surrogateescape") for s in attr.strings]
    if t == _A.TENSOR:
        return tensor_to_array(attr.t)
    if t == _A.TENSORS:
        return [tensor_to_array(x) for x in attr.tensors]
    if t == _A.GRAPH:
        return attr.g
    if t == _A.GRAPHS:
        return list(attr.graphs)
    if t == _A.SPARSE_TENSOR:
        return sparse_to_dense(attr.sparse_tensor)
    if t == _A.TYPE_PROTO:
        return attr.tp
    if t == _A.TYPE_PROTOS:
        return list(attr.type_protos)
    raise ValueError(f"attribute {attr.name!r} has no value (type {t})")
