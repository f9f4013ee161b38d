"""Cast / CastLike / BitCast against onnx.reference and the spec's tables."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto
from tests.oracle import check_node, node_model, run_onnxlite

TP = TensorProto
SPECIAL = np.array(
    [0.47892547, -0.0, 1e6, -1e6, 1e-7, np.nan, np.inf, -np.inf, 448.0, 465.0, 57344.0, 3.0],
    dtype=np.float32,
)


def cast(x, to, opset=21, **attrs):
    model = node_model("Cast", {"x": x}, {"to": to, **attrs}, opset=opset)
    return run_onnxlite(model, {"x": x})[0]


@pytest.mark.parametrize(
    "to",
    [TP.FLOAT16, TP.DOUBLE, TP.BFLOAT16, TP.INT32, TP.UINT8, TP.BOOL, TP.INT64],
)
def test_cast_numeric(to):
    x = np.array([[0.4, -2.7, 3.5], [100.0, 0.0, -0.0]], np.float32)
    check_node("Cast", {"x": x}, {"to": to})


@pytest.mark.parametrize("to", [TP.FLOAT8E4M3FN, TP.FLOAT8E4M3FNUZ, TP.FLOAT8E5M2, TP.FLOAT8E5M2FNUZ])
@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("src", [np.float32, np.float16, np.float64])
def test_cast_float8_saturate(to, saturate, src):
    x = SPECIAL.astype(src)
    y = check_node("Cast", {"x": x}, {"to": to, "saturate": saturate})[0]
    finite_max = float(ml_dtypes.finfo(y.dtype).max)
    yf = y.astype(np.float32)
    if saturate:  # Inf and out-of-range values clamp to the largest finite value
        assert yf[6] == finite_max and yf[7] == -finite_max
        assert yf[2] == finite_max


def test_cast_float8_from_int_saturates():
    x = np.array([1, -3, 100000, -100000], np.int64)
    y = cast(x, TP.FLOAT8E4M3FN)
    np.testing.assert_array_equal(y.astype(np.float32), [1, -3, 448, -448])


@pytest.mark.parametrize("to", [TP.INT4, TP.UINT4, TP.FLOAT4E2M1])
def test_cast_sub_byte(to):
    x = np.arange(-9, 16).astype(np.float32)
    check_node("Cast", {"x": x}, {"to": to})


def test_cast_sub_byte_inputs():
    x = np.arange(-8, 8).astype(ml_dtypes.int4)
    y = cast(x, TP.FLOAT)
    np.testing.assert_array_equal(y, np.arange(-8, 8, dtype=np.float32))
    y = cast(np.arange(16).astype(ml_dtypes.uint4), TP.INT8)
    np.testing.assert_array_equal(y, np.arange(16, dtype=np.int8))


def test_cast_int_wraps():
    x = np.array([200, -1, 300], np.int32)
    check_node("Cast", {"x": x}, {"to": TP.INT8})
    check_node("Cast", {"x": x}, {"to": TP.UINT16})


def test_cast_to_string_and_back():
    # Numbers print as onnxruntime prints them ('%.8g', NaN/INF/-INF, bools as 1/0).
    x = np.array([1.5, -2.0, 0.1, 1e6, 1e-5, np.nan, np.inf, -np.inf, 1 / 3], np.float32)
    y = cast(x, TP.STRING)
    assert y.dtype == object
    want = ["1.5", "-2", "0.1", "1000000", "9.9999997e-06", "NaN", "INF", "-INF", "0.33333334"]
    assert list(y) == want
    assert list(cast(np.array([True, False]), TP.STRING)) == ["1", "0"]
    assert list(cast(np.array([-5, 2**62], np.int64), TP.STRING)) == ["-5", str(2**62)]
    s = np.array(["3.14", "1e-5", "-1E8", "+INF", "inf", "-INF", "NaN"], dtype=object)
    y = cast(s, TP.FLOAT)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(
        y, np.array([3.14, 1e-5, -1e8, np.inf, np.inf, -np.inf, np.nan], np.float32)
    )
    y = cast(np.array(["100", "-7", "2.5"], dtype=object), TP.INT64)
    np.testing.assert_array_equal(y, np.array([100, -7, 2], np.int64))
    y = cast(np.array(["0", "12", "-3", "1.5"], dtype=object), TP.BOOL)
    np.testing.assert_array_equal(y, [False, True, True, True])


def test_cast_bfloat16_to_string():
    x = np.array([1.5, -3.0], ml_dtypes.bfloat16)
    y = cast(x, TP.STRING)
    assert y.dtype == object and list(y) == ["1.5", "-3"]


def test_cast_opset_versions():
    x = np.array([1.9, -1.9], np.float64)
    for opset in (7, 9, 13, 19, 25):
        check_node("Cast", {"x": x}, {"to": TP.INT32}, opset=opset)


@pytest.mark.skipif(not hasattr(TP, "FLOAT8E8M0"), reason="onnx without float8e8m0")
@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
def test_cast_e8m0_round_modes(round_mode):
    x = np.array([0.124, 0.25, 0.5, 1.1, 1.5, 2.0, 3.0, 4.0, 8.0, 100.0], np.float32)
    check_node("Cast", {"x": x}, {"to": TP.FLOAT8E8M0, "round_mode": round_mode}, opset=25)


def test_castlike():
    x = np.array([1.2, -3.7, 1e6], np.float32)
    like = np.zeros(0, ml_dtypes.float8_e5m2)
    check_node("CastLike", {"x": x, "t": like}, {"saturate": 0}, opset=19)
    check_node("CastLike", {"x": x, "t": np.zeros(1, np.int16)}, opset=15)
    ins = {"x": x, "t": np.array(["a"], dtype=object)}
    (y,) = run_onnxlite(node_model("CastLike", ins, opset=15), ins)
    assert y.dtype == object and list(y) == ["1.2", "-3.7", "1000000"]


@pytest.mark.parametrize(
    ("x", "to"),
    [
        (np.array([1.0, -2.5], np.float32), TP.INT32),
        (np.array([-1, 127], np.int8), TP.UINT8),
        (np.array([True, False]), TP.UINT8),
        (np.array(3.0, np.float64), TP.INT64),
    ],
)
def test_bitcast(x, to):
    check_node("BitCast", {"x": x}, {"to": to}, opset=26)


def test_bitcast_width_mismatch():
    with pytest.raises(Exception, match="bit"):
        x = np.zeros(2, np.float32)
        run_onnxlite(node_model("BitCast", {"x": x}, {"to": TP.INT64}, opset=26), {"x": x})
