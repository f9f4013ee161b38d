"""Element-wise kernels against onnx.reference, plus the cases where the spec and numpy differ."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from tests.oracle import assert_refused_at_build, check_node, node_model, run_onnxlite, spec_allows

from onnxlite.providers.cpu.kernels.elementwise import erf

rng = np.random.default_rng(0)


def run(op, inputs, attrs=None, opset=21, **kw):
    model = node_model(op, inputs, attrs, opset=opset, **kw)
    return run_onnxlite(model, inputs)[0]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int32, np.int8, np.uint8])
def test_arith_broadcast(op, dtype):
    a = rng.integers(1, 100, (2, 3, 4)).astype(dtype)
    b = rng.integers(1, 100, (3, 1)).astype(dtype)
    check_node(op, {"a": a, "b": b}, opset=14)


def test_arith_wraps_small_ints():
    a = np.array([120, -120], np.int8)
    np.testing.assert_array_equal(run("Add", {"a": a, "b": a}), [-16, 16])
    assert run("Add", {"a": a, "b": a}).dtype == np.int8


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int16])
def test_div_int_truncates_toward_zero(dtype):
    a = np.array([7, -7, 7, -7, 6, -1, 0], dtype)
    b = np.array([2, 2, -2, -2, 3, 5, -3], dtype)
    y = run("Div", {"a": a, "b": b})
    np.testing.assert_array_equal(y, [3, -3, -3, 3, 2, 0, 0])
    assert y.dtype == dtype


def test_div_int64_exact_beyond_float_precision():
    a = np.array([2**62 + 1, -(2**62) - 3], np.int64)
    b = np.array([3, 3], np.int64)
    np.testing.assert_array_equal(run("Div", {"a": a, "b": b}), [(2**62 + 1) // 3, -((2**62 + 3) // 3)])


@pytest.mark.parametrize(
    ("xt", "yt"),
    [
        (np.float32, np.float32),
        (np.float32, np.int64),
        (np.int32, np.float32),
        (np.int64, np.int64),
        (np.float16, np.float32),
        (np.float64, np.int32),
    ],
)
def test_pow_types(xt, yt):
    x = np.array([[1, 2, 3], [0.5, 4, 1.5]]).astype(xt)
    y = np.array([2, 3, 1]).astype(yt)
    out = check_node("Pow", {"x": x, "y": y}, opset=15)[0]
    assert out.dtype == xt


def test_pow_scalar_two_and_negative():
    x = np.array([-3.0, -0.5, 0.0, 2.5], np.float32)
    check_node("Pow", {"x": x, "y": np.array(2.0, np.float32)})
    check_node("Pow", {"x": x, "y": np.array(2, np.int64)})
    check_node("Pow", {"x": np.abs(x), "y": np.array(0.5, np.float32)})


def test_pow_int_negative_exponent():
    # numpy refuses integer ** negative integer; the spec's result is the float power, truncated
    x = np.array([2, 1, -1, 4], np.int32)
    y = np.array([-1, -3, -3, 2], np.int32)
    np.testing.assert_array_equal(run("Pow", {"x": x, "y": y}), [0, 1, -1, 16])


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.float32, np.float64, np.float16])
def test_mod_mixed_sign(fmod, dtype):
    a = np.array([-4, 7, 5, 4, -7, 8], dtype)
    b = np.array([2, -3, 8, -2, 3, 5], dtype)
    y = check_node("Mod", {"a": a, "b": b}, {"fmod": fmod}, opset=13)[0]
    if fmod == 0:
        assert (np.sign(y[y != 0]) == np.sign(b[y != 0])).all()  # sign of the divisor


def test_mod_broadcast_uint():
    a = np.arange(12, dtype=np.uint32).reshape(3, 4)
    check_node("Mod", {"a": a, "b": np.array([5], np.uint32)})


@pytest.mark.parametrize(
    "op",
    ["Neg", "Abs", "Reciprocal", "Sqrt", "Exp", "Log", "Ceil", "Floor", "Sign", "Sin", "Cos", "Tan",
     "Atan", "Sinh", "Cosh", "Asinh", "Tanh"],
)  # fmt: skip
@pytest.mark.parametrize("opset", [13, 22])
def test_unary_math(op, opset):
    x = (rng.standard_normal((3, 4)) * 2).astype(np.float32)
    if op in ("Sqrt", "Log"):
        x = np.abs(x) + 0.1
    check_node(op, {"x": x}, opset=opset)


@pytest.mark.parametrize("op", ["Asin", "Acos", "Atanh"])
def test_unary_math_unit_domain(op):
    check_node(op, {"x": np.linspace(-0.99, 0.99, 11).astype(np.float32)})


def test_acosh():
    check_node("Acosh", {"x": np.linspace(1, 10, 11).astype(np.float64)})


def test_unary_int_and_empty():
    check_node("Abs", {"x": np.array([-3, 0, 127], np.int8)})
    check_node("Neg", {"x": np.array([-3, 0, 5], np.int64)})
    check_node("Sign", {"x": np.array([-3, 0, 5], np.int32)})
    check_node("Exp", {"x": np.zeros((0, 3), np.float32)})


def test_round_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.3, -4.7, 0.9], np.float32)
    y = run("Round", {"x": x})
    np.testing.assert_array_equal(y, [0, 2, 2, -0, -2, -2, 2, -5, 1])
    check_node("Round", {"x": x})


def test_erf_accuracy_float32():
    x = np.linspace(-6, 6, 200001).astype(np.float32)
    want = np.array([math.erf(float(v)) for v in x])
    got = erf(x)
    assert got.dtype == np.float32
    assert np.abs(got.astype(np.float64) - want).max() < 1e-7


def test_erf_accuracy_float64():
    x = np.concatenate([np.linspace(-7, 7, 100001), [0.0, -0.0, 1e-300, 1.99999, 2.0, 6.5, 40]])
    want = np.array([math.erf(v) for v in x])
    got = erf(x)
    assert got.dtype == np.float64
    assert np.abs(got - want).max() < 1e-13


def test_erf_specials_and_dtypes():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    y = erf(x)
    assert np.isnan(y[0]) and y[1] == 1 and y[2] == -1 and y[3] == 0 and np.signbit(y[4])
    for dt in (np.float16, ml_dtypes.bfloat16):
        assert erf(np.array([0.5, -1], dt)).dtype == dt
    check_node("Erf", {"x": rng.standard_normal((2, 3, 4)).astype(np.float32)}, opset=13)


def test_isnan_isinf():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 3.0], np.float32)
    check_node("IsNaN", {"x": x})
    for neg in (0, 1):
        for pos in (0, 1):
            check_node("IsInf", {"x": x}, {"detect_negative": neg, "detect_positive": pos})


@pytest.mark.parametrize("op", ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint16])
def test_comparisons(op, dtype):
    a = rng.integers(0, 4, (3, 4)).astype(dtype)
    b = rng.integers(0, 4, (4,)).astype(dtype)
    check_node(op, {"a": a, "b": b}, opset=19)


def test_equal_strings():
    a = np.array(["a", "bc", ""], dtype=object)
    b = np.array(["a", "b", ""], dtype=object)
    y = check_node("Equal", {"a": a, "b": b}, opset=19)[0]
    np.testing.assert_array_equal(y, [True, False, True])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic(op):
    a = rng.integers(0, 2, (2, 3, 4)).astype(bool)
    b = rng.integers(0, 2, (3, 1)).astype(bool)
    check_node(op, {"a": a, "b": b})
    check_node("Not", {"x": a})


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int16, np.uint64, np.int8])
def test_bitwise(op, dtype):
    a = rng.integers(0, 120, (3, 4)).astype(dtype)
    b = rng.integers(0, 120, (4,)).astype(dtype)
    check_node(op, {"a": a, "b": b}, opset=18)
    check_node("BitwiseNot", {"x": a}, opset=18)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint64, np.int8, np.int32])
def test_bitshift(direction, dtype):
    x = np.array([16, 4, 1, 127], dtype)
    y = np.array([1, 2, 3, 0], dtype)
    if not spec_allows("BitShift", dtype, 11):  # signed types are outside the spec
        assert_refused_at_build(node_model("BitShift", {"x": x, "y": y}, {"direction": direction}, opset=11))
        return
    check_node("BitShift", {"x": x, "y": y}, {"direction": direction}, opset=11)


def test_bitshift_out_of_range_amounts():
    x = np.array([8, 8, 64, 255], np.uint8)
    y = np.array([9, 8, 1, 7], np.uint8)
    np.testing.assert_array_equal(run("BitShift", {"x": x, "y": y}, {"direction": "RIGHT"}), [0, 0, 32, 1])
    np.testing.assert_array_equal(run("BitShift", {"x": x, "y": y}, {"direction": "LEFT"}), [0, 0, 128, 128])


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic(op):
    a = rng.standard_normal((2, 1, 4)).astype(np.float32)
    b = rng.standard_normal((3, 1)).astype(np.float32)
    c = rng.standard_normal((2, 3, 4)).astype(np.float32)
    d = rng.standard_normal(()).astype(np.float32)
    # the reference's Mean accumulates into a copy of the first input: put the full shape first
    check_node(op, {"c": c, "a": a, "b": b, "d": d}, opset=13)
    check_node(op, {"a": a}, opset=13)
    if op != "Mean":
        check_node(op, {"a": a, "b": b, "c": c, "d": d}, opset=13)
        check_node(op, {"a": a, "b": b}, opset=8)
    else:
        got = run(op, {"a": a, "b": b, "c": c, "d": d}, opset=13)
        np.testing.assert_allclose(got, (a + b + c + d) / 4, rtol=1e-6)


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_variadic_ints(op):
    a = np.array([1, -5, 7], np.int8)
    b = np.array([3, -9, 7], np.int8)
    check_node(op, {"a": a, "b": b}, opset=13)


def test_mean_float16():
    a = np.array([1, 2, 3], np.float16)
    y = check_node("Mean", {"a": a, "b": a * 2, "c": a * 4}, opset=13)[0]
    assert y.dtype == np.float16


def test_where():
    c = np.array([[True, False], [False, True]])
    check_node("Where", {"c": c, "x": np.float32([1, 2]), "y": np.float32([[9], [8]])})
    check_node("Where", {"c": c, "x": np.array(["a", "b"], object), "y": np.array(["z"], object)})


@pytest.mark.parametrize(
    ("c_shape", "x_shape", "y_shape"),
    [
        ((2, 3, 4), (1,), (2, 3, 4)),  # a scalar where the condition holds: masked copy into y
        ((2, 3, 4), (2, 3, 4), (1,)),  # the full operand first: masked copy of the other
        ((1, 3, 1), (2, 3, 4), (2, 1, 4)),
        ((2, 3, 4), (3, 1), (4,)),  # neither operand is full-shape: np.where
    ],
)
def test_where_broadcasts(c_shape, x_shape, y_shape):
    rng = np.random.default_rng(4)
    c = rng.random(c_shape) < 0.4
    for dt in (np.float32, np.int64, np.bool_):
        x = (rng.standard_normal(x_shape) * 5).astype(dt)
        y = (rng.standard_normal(y_shape) * 5).astype(dt)
        (got,) = run_onnxlite(node_model("Where", {"c": c, "x": x, "y": y}), {"c": c, "x": x, "y": y})
        want = np.where(c, x, y)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert got is not x and got is not y


def test_clip_attributes_opset6():
    x = np.linspace(-3, 3, 13).astype(np.float32)
    check_node("Clip", {"x": x}, {"min": -1.0, "max": 2.0}, opset=6)
    check_node("Clip", {"x": x}, {"max": 0.5}, opset=6)
    check_node("Clip", {"x": x}, opset=6)


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64, np.uint8, np.float16])
def test_clip_inputs(dtype):
    x = np.array([[0, 5, 10], [100, 3, 7]], dtype)
    lo, hi = np.array(2, dtype), np.array(8, dtype)
    check_node("Clip", {"x": x, "lo": lo, "hi": hi}, opset=13)
    check_node("Clip", {"x": x, "hi": hi}, opset=13, input_names=["x", "", "hi"])
    check_node("Clip", {"x": x, "lo": lo}, opset=12)
    if spec_allows("Clip", dtype, 11):
        check_node("Clip", {"x": x}, opset=11)
    else:  # integer Clip arrived in opset 12
        assert_refused_at_build(node_model("Clip", {"x": x}, opset=11))


def test_clip_min_greater_than_max():
    x = np.array([-2.0, 0.0, 5.0], np.float32)
    y = run("Clip", {"x": x, "lo": np.float32(3), "hi": np.float32(1)})
    np.testing.assert_array_equal(y, [1, 1, 1])


def test_clip_scalar_input():
    y = check_node("Clip", {"x": np.array(5.0, np.float32), "lo": np.float32(0), "hi": np.float32(1)})
    assert np.asarray(y[0]).shape == ()


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater"])
def test_legacy_broadcast_axis(op):
    # opset < 7: with broadcast=1, B's dims line up with A's from `axis` on (not numpy's suffix)
    dt = np.float32 if spec_allows(op, np.float32, 6) else np.int32  # Equal-1 takes ints only
    a = rng.integers(1, 5, (2, 3, 4)).astype(dt)
    b = np.array([1.0, 2.0, 3.0], dt)
    y = run(op, {"a": a, "b": b}, {"broadcast": 1, "axis": 1}, opset=6)
    want = run(op, {"a": a, "b": b.reshape(3, 1)}, opset=13)
    np.testing.assert_array_equal(y, want)
    # without axis, the suffix alignment is numpy's
    b4 = np.arange(1, 5, dtype=dt)
    y = run(op, {"a": a, "b": b4}, {"broadcast": 1}, opset=6)
    np.testing.assert_array_equal(y, run(op, {"a": a, "b": b4}, opset=13))


def test_legacy_logic_and_consumed_inputs():
    a = rng.integers(0, 2, (2, 3)).astype(bool)
    b = np.array([True, False], bool)
    y = run("And", {"a": a, "b": b}, {"broadcast": 1, "axis": 0}, opset=6)
    np.testing.assert_array_equal(y, a & b[:, None])
    x = np.array([-1.5, 2.0], np.float32)
    np.testing.assert_array_equal(run("Abs", {"x": x}, {"consumed_inputs": [0]}, opset=1), [1.5, 2])
    y = run("Sum", {"a": x, "b": x}, {"consumed_inputs": [0, 0]}, opset=1)
    np.testing.assert_array_equal(y, [-3, 4])
    np.testing.assert_array_equal(run("Clip", {"x": x}, {"max": 0.0}, opset=1), [-1.5, 0])
