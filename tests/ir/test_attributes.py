import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxlite.ir.attributes import tensor_to_array


@pytest.mark.parametrize(
    "dtype, onnx_type",
    [
        (np.float32, TensorProto.FLOAT),
        (np.float64, TensorProto.DOUBLE),
        (np.int32, TensorProto.INT32),
        (np.int64, TensorProto.INT64),
    ],
)
@pytest.mark.parametrize("shape", [(), (1,), (2, 3), (0, 4)])
def test_typed_field_tensors_read_as_onnx_reads_them(dtype, onnx_type, shape) -> None:
    values = (np.arange(int(np.prod(shape))) * 1.5 - 2).astype(dtype).reshape(shape)
    t = helper.make_tensor("t", onnx_type, shape, values.reshape(-1).tolist())
    assert not t.raw_data  # the typed field, not raw bytes
    got = tensor_to_array(t)
    want = numpy_helper.to_array(t)
    assert got.dtype == want.dtype == dtype and got.shape == shape
    np.testing.assert_array_equal(got, want)


def test_float32_values_survive_the_typed_field_exactly() -> None:
    values = np.array([0.02, 1 / 3, np.float32(1e-38), -0.0, np.inf, np.nan], np.float32)
    got = tensor_to_array(helper.make_tensor("w", TensorProto.FLOAT, [6], values.tolist()))
    assert got.tobytes() == values.tobytes()


def test_a_typed_field_that_does_not_fill_its_dims_is_refused() -> None:
    t = TensorProto(name="short", data_type=TensorProto.FLOAT, dims=[2, 3], float_data=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"short.*does not fill its dims"):
        tensor_to_array(t)


def test_raw_data_tensors_keep_their_path() -> None:
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = numpy_helper.from_array(values, "raw")
    assert t.raw_data
    np.testing.assert_array_equal(tensor_to_array(t), values)


def test_segmented_tensors_are_refused_as_before() -> None:
    t = helper.make_tensor("seg", TensorProto.FLOAT, [2], [1.0, 2.0])
    t.segment.begin, t.segment.end = 0, 2
    with pytest.raises(ValueError, match="seg"):
        tensor_to_array(t)
