"""QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear against onnx.reference."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto
from tests.oracle import check_node, node_model, run_onnxlite

RNG = np.random.default_rng(4)
X = np.array([[-300.0, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 254.4, 1e6]], np.float32)


@pytest.mark.parametrize(
    ("dt", "opset"),
    [(dt, opset) for dt in (np.uint8, np.int8) for opset in (10, 13, 19, 21)]
    + [(np.uint16, 21), (np.int16, 21)],  # 16-bit types arrived in opset 21
)
def test_quantize_per_tensor(dt, opset):
    inputs = {"x": X, "s": np.array(0.5, np.float32), "z": np.array(3, dt)}
    check_node("QuantizeLinear", inputs, opset=opset)


def test_quantize_default_uint8_and_rounding_half_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, 300.0], np.float32)
    inputs = {"x": x, "s": np.array(1.0, np.float32)}
    y = check_node("QuantizeLinear", inputs, opset=13)[0]
    np.testing.assert_array_equal(y, np.array([0, 2, 2, 0, 255], np.uint8))


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_quantize_per_axis(axis):
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32) * 50
    n = x.shape[axis]
    inputs = {
        "x": x,
        "s": (RNG.random(n) + 0.1).astype(np.float32),
        "z": RNG.integers(-10, 10, n).astype(np.int8),
    }
    check_node("QuantizeLinear", inputs, {"axis": axis}, opset=13)


@pytest.mark.parametrize("block_size", [2, 3])
def test_quantize_and_dequantize_blocked(block_size):
    x = RNG.standard_normal((4, 6)).astype(np.float32) * 20
    nblocks = -(-6 // block_size)
    s = (RNG.random((4, nblocks)) + 0.1).astype(np.float32)
    z = RNG.integers(-5, 5, (4, nblocks)).astype(np.int8)
    attrs = {"axis": 1, "block_size": block_size}
    y = check_node("QuantizeLinear", {"x": x, "s": s, "z": z}, attrs, opset=21)[0]
    check_node("DequantizeLinear", {"y": y, "s": s, "z": z}, attrs, opset=21)


def test_quantize_output_dtype_int4_and_uint4():
    x = np.array([-20.0, -8.4, -0.5, 0.0, 3.5, 7.6, 40.0], np.float32)
    s = np.array(1.0, np.float32)
    for to, dt in [(TensorProto.INT4, ml_dtypes.int4), (TensorProto.UINT4, ml_dtypes.uint4)]:
        model = node_model("QuantizeLinear", {"x": x, "s": s}, {"output_dtype": to}, opset=21)
        (y,) = run_onnxlite(model, {"x": x, "s": s})
        assert y.dtype == dt
        info = ml_dtypes.iinfo(dt)
        want = np.clip(np.rint(x), info.min, info.max)
        np.testing.assert_array_equal(y.astype(np.float32), want)


@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize(
    ("dt", "name"),
    [(ml_dtypes.float8_e4m3fn, "e4m3fn"), (ml_dtypes.float8_e5m2, "e5m2")],
)
def test_quantize_float8(saturate, dt, name):
    x = np.array([0.0, 1.0, -3.3, 1000.0, -1e6, 1e6, np.inf], np.float32)
    inputs = {"x": x, "s": np.array(2.0, np.float32), "z": np.zeros((), dt)}
    model = node_model("QuantizeLinear", inputs, {"saturate": saturate}, opset=19)
    (y,) = run_onnxlite(model, inputs)
    assert y.dtype == dt
    yf = y.astype(np.float32)
    fmax = float(ml_dtypes.finfo(dt).max)
    if saturate:
        assert yf[4] == -fmax and yf[5] == fmax and yf[6] == fmax
    else:
        assert not np.isfinite(yf[5]) and not np.isfinite(yf[6])
    np.testing.assert_array_equal(yf[:3], (x[:3] / 2).astype(dt).astype(np.float32))


def test_quantize_precision_attribute():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    inputs = {"x": x, "s": np.array(0.3, np.float32), "z": np.array(0, np.int8)}
    check_node("QuantizeLinear", inputs, {"precision": TensorProto.FLOAT}, opset=23)


@pytest.mark.parametrize("dt", [np.uint8, np.int8, np.int32])
def test_dequantize(dt):
    info = np.iinfo(dt)
    x = RNG.integers(max(info.min, -1000), min(info.max, 1000) + 1, (2, 3, 4)).astype(dt)
    inputs = {"x": x, "s": np.array(0.25, np.float32)}
    if dt != np.int32:
        inputs["z"] = np.array(7 if dt == np.uint8 else -3, dt)
    want = check_node("DequantizeLinear", inputs, opset=19)[0]
    # v10/v13 share the semantics (the reference has no kernel for them)
    for opset in (10, 13):
        (y,) = run_onnxlite(node_model("DequantizeLinear", inputs, opset=opset), inputs)
        np.testing.assert_array_equal(y, want)


def test_dequantize_per_axis_float16_scale():
    x = RNG.integers(-128, 128, (2, 3, 4)).astype(np.int8)
    inputs = {"x": x, "s": np.array([0.5, 0.25, 2.0], np.float16), "z": np.array([1, 0, -1], np.int8)}
    y = check_node("DequantizeLinear", inputs, {"axis": 1}, opset=19)[0]
    assert y.dtype == np.float16


def test_dequantize_output_dtype_and_int4():
    x = np.array([-8, -1, 0, 7], ml_dtypes.int4)
    inputs = {"x": x, "s": np.array(0.5, np.float32), "z": np.array(1, ml_dtypes.int4)}
    model = node_model("DequantizeLinear", inputs, {"output_dtype": TensorProto.FLOAT16}, opset=23)
    (y,) = run_onnxlite(model, inputs)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, np.array([-4.5, -1.0, -0.5, 3.0], np.float16))


def test_dequantize_float8():
    x = np.array([0.0, 1.5, -448.0], ml_dtypes.float8_e4m3fn)
    inputs = {"x": x, "s": np.array(2.0, np.float32)}
    (y,) = run_onnxlite(node_model("DequantizeLinear", inputs, opset=19), inputs)
    np.testing.assert_array_equal(y, np.array([0.0, 3.0, -896.0], np.float32))


@pytest.mark.parametrize(
    "x",
    [
        RNG.standard_normal((3, 5)).astype(np.float32) * 4,
        np.abs(RNG.standard_normal(7)).astype(np.float32),
        -np.abs(RNG.standard_normal(7)).astype(np.float32),
        np.zeros((2, 2), np.float32),
    ],
)
def test_dynamic_quantize(x):
    _y, scale, zp = check_node("DynamicQuantizeLinear", {"x": x}, outputs=("y", "s", "z"))
    assert scale.shape == () and zp.shape == () and zp.dtype == np.uint8


def test_scalar_inputs_quantize():
    feeds = {"x": np.array(1.5, np.float32), "s": np.array(0.1, np.float32), "z": np.array(3, np.uint8)}
    assert check_node("QuantizeLinear", feeds, opset=19)[0] == 18
    got = check_node(
        "DynamicQuantizeLinear", {"x": np.array(-2.0, np.float32)}, opset=11, outputs=("y", "s", "z")
    )
    assert got[0].shape == ()


@pytest.mark.parametrize(
    ("op", "axis", "scale", "message"),
    [
        ("QuantizeLinear", 2, np.ones(3, np.float32), "axis 2 is out of range for an input of rank 2"),
        ("DequantizeLinear", 0, np.ones(3, np.float32), "has 3 values for a dimension of 2"),
    ],
)
def test_per_axis_parameters_are_checked(op, axis, scale, message):
    x = np.ones((2, 3), np.float32 if op == "QuantizeLinear" else np.uint8)
    feeds = {"x": x, "s": scale}
    with pytest.raises(Exception, match=message):
        run_onnxlite(node_model(op, feeds, {"axis": axis}, opset=19), feeds)
