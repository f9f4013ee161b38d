"""Activation kernels against onnx.reference: opset versions, dtypes, extreme inputs."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from tests.oracle import assert_refused_at_build, check_node, node_model, run_onnxlite, spec_allows

from onnxlite.providers.cpu.kernels.activation import _softmax_unshifted

rng = np.random.default_rng(0)
X = (rng.standard_normal((2, 3, 4)) * 3).astype(np.float32)
EXTREME = np.array([-1000.0, -100.0, -20.0, -1e-6, 0.0, 1e-6, 20.0, 100.0, 1000.0], np.float32)


def run(op, inputs, attrs=None, opset=21):
    return run_onnxlite(node_model(op, inputs, attrs, opset=opset), inputs)[0]


CASES = [
    ("Relu", {}, 14),
    ("Relu", {}, 6),
    ("LeakyRelu", {}, 16),
    ("LeakyRelu", {"alpha": 0.2}, 6),
    ("LeakyRelu", {"alpha": 1.7}, 16),
    ("LeakyRelu", {"alpha": -0.5}, 16),
    ("Sigmoid", {}, 13),
    ("HardSigmoid", {}, 6),
    ("HardSigmoid", {"alpha": 0.5, "beta": 0.6}, 22),
    ("HardSwish", {}, 14),
    ("Tanh", {}, 13),
    ("Elu", {}, 6),
    ("Elu", {"alpha": 2.0}, 22),
    ("Selu", {}, 6),
    ("Selu", {"alpha": 2.0, "gamma": 3.0}, 22),
    ("Celu", {}, 12),
    ("Celu", {"alpha": 2.0}, 12),
    ("Gelu", {}, 20),
    ("Gelu", {"approximate": "tanh"}, 20),
    ("Softplus", {}, 1),
    ("Softsign", {}, 22),
    ("Mish", {}, 18),
    ("ThresholdedRelu", {}, 10),
    ("ThresholdedRelu", {"alpha": 2.0}, 22),
    ("Shrink", {}, 9),
    ("Shrink", {"bias": 1.5, "lambd": 1.0}, 9),
]


@pytest.mark.parametrize(("op", "attrs", "opset"), CASES)
def test_activation(op, attrs, opset):
    check_node(op, {"x": X}, attrs, opset=opset)


@pytest.mark.parametrize(("op", "attrs", "opset"), CASES)
def test_activation_extremes_and_float64(op, attrs, opset):
    if spec_allows(op, np.float64, opset):
        check_node(op, {"x": EXTREME.astype(np.float64)}, attrs, opset=opset)
    else:  # Celu takes float32 only
        assert_refused_at_build(node_model(op, {"x": EXTREME.astype(np.float64)}, attrs, opset=opset))
    y = run(op, {"x": EXTREME}, attrs, opset=opset)
    assert y.dtype == np.float32 and y.shape == EXTREME.shape
    assert not np.isnan(y).any()


@pytest.mark.parametrize(("op", "attrs", "opset"), CASES)
def test_activation_low_precision_keeps_dtype(op, attrs, opset):
    x16 = X.astype(np.float16)
    if not spec_allows(op, np.float16, opset):  # Celu takes float32 only
        assert_refused_at_build(node_model(op, {"x": x16}, attrs, opset=opset))
        return
    y = check_node(op, {"x": x16}, attrs, opset=opset, rtol=2e-3, atol=2e-3)[0]
    assert y.dtype == np.float16
    xb = X.astype(ml_dtypes.bfloat16)
    bf_opset = max(opset, 22) if op != "Shrink" else opset
    if not spec_allows(op, ml_dtypes.bfloat16, bf_opset):  # Shrink has no bfloat16
        assert_refused_at_build(node_model(op, {"x": xb}, attrs, opset=bf_opset))
        return
    yb = run(op, {"x": xb}, attrs, opset=bf_opset)
    assert yb.dtype == ml_dtypes.bfloat16
    want = run(op, {"x": xb.astype(np.float32)}, attrs, opset=max(opset, 22))
    np.testing.assert_allclose(yb.astype(np.float32), want, rtol=2e-2, atol=2e-2)


def test_relu_int_keeps_dtype():
    x = np.array([-3, 0, 5], np.int8)
    y = check_node("Relu", {"x": x}, opset=14)[0]
    assert y.dtype == np.int8


def test_sigmoid_tails_are_accurate():
    x = np.array([-80.0, -30.0, 30.0], np.float32)
    y = run("Sigmoid", {"x": x})
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)


def test_shrink_int():
    x = np.arange(-5, 6, dtype=np.int8)
    y = check_node("Shrink", {"x": x}, {"bias": 1.0, "lambd": 2.0})[0]
    assert y.dtype == np.int8


def test_prelu_broadcast():
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    check_node("PRelu", {"x": x, "slope": rng.random((3, 1, 1)).astype(np.float32)}, opset=16)
    check_node("PRelu", {"x": x, "slope": rng.random((5,)).astype(np.float32)}, opset=9)
    check_node("PRelu", {"x": x, "slope": np.float32([0.1])}, opset=7)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_swish(alpha):
    x = X.astype(np.float64)
    y = run("Swish", {"x": x}, {"alpha": alpha}, opset=24)
    np.testing.assert_allclose(y, x / (1 + np.exp(-alpha * x)), rtol=1e-12)


def test_gelu_matches_erf_definition():
    from math import erf, sqrt

    x = np.linspace(-8, 8, 1001).astype(np.float32)
    y = run("Gelu", {"x": x}, opset=20)
    want = [0.5 * v * (1 + erf(v / sqrt(2))) for v in x.astype(np.float64)]
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7)


SOFTMAX_OPS = ["Softmax", "LogSoftmax", "Hardmax"]


def _np_softmax_family(op, x, axis):
    x = x.astype(np.float64)
    if op == "Hardmax":
        y = np.zeros_like(x)
        np.put_along_axis(y, np.argmax(x, axis=axis, keepdims=True), 1, axis=axis)
        return y
    z = x - x.max(axis=axis, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z - lse if op == "LogSoftmax" else np.exp(z - lse)


@pytest.mark.parametrize("op", SOFTMAX_OPS)
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -2])
def test_softmax_family_axes(op, axis):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    attrs = {} if axis is None else {"axis": axis}
    check_node(op, {"x": x}, attrs, opset=13)


@pytest.mark.parametrize("op", SOFTMAX_OPS)
@pytest.mark.parametrize("opset", [7, 11])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -2, -3])
def test_softmax_family_coerced_2d(op, opset, axis):
    # before opset 13 the input is seen as 2-D [prod(dims[:axis]), prod(dims[axis:])] (default
    # axis 1); onnx.reference does not implement that, so numpy is the oracle here
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    attrs = {} if axis is None else {"axis": axis}
    a = 1 if axis is None else axis % 3
    want = _np_softmax_family(op, x.reshape(int(np.prod(x.shape[:a])), -1), 1).reshape(x.shape)
    got = run(op, {"x": x}, attrs, opset=opset)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_softmax_versions_differ():
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    old = run("Softmax", {"x": x}, {"axis": 1}, opset=11)
    new = run("Softmax", {"x": x}, {"axis": 1}, opset=13)
    np.testing.assert_allclose(old.reshape(2, -1).sum(1), 1, rtol=1e-6)
    np.testing.assert_allclose(new.sum(1), 1, rtol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_large_numbers(op):
    x = np.array([[0, 1, 2, 3], [10000, 10001, 10002, 10003], [-1e30, 0, -np.inf, 1]], np.float32)
    y = run(op, {"x": x}, opset=13)
    # onnx.reference's LogSoftmax is log(Softmax), -inf where the softmax underflows
    np.testing.assert_allclose(y, _np_softmax_family(op, x, -1), rtol=1e-6)
    assert y[2, 0] == (-1e30 if op == "LogSoftmax" else 0)


@pytest.mark.parametrize("op", SOFTMAX_OPS)
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_softmax_family_dtypes(op, dtype):
    x = rng.standard_normal((3, 5)).astype(dtype)
    y = check_node(op, {"x": x}, opset=13, rtol=1e-3, atol=1e-3)[0]
    assert y.dtype == dtype


def test_softmax_family_empty_and_bfloat16():
    for op in SOFTMAX_OPS:
        assert run(op, {"x": np.zeros((0, 4), np.float32)}).shape == (0, 4)
        xb = np.array([[1, 2, 3]], ml_dtypes.bfloat16)
        assert run(op, {"x": xb}).dtype == ml_dtypes.bfloat16


def test_hardmax_picks_first_of_ties():
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32)
    y = check_node("Hardmax", {"x": x}, opset=13)[0]
    np.testing.assert_array_equal(y, [[0, 1, 0, 0], [1, 0, 0, 0]])


@pytest.mark.parametrize(("op", "attrs", "opset"), CASES)
def test_activation_leaves_input_unchanged(op, attrs, opset):
    x = X.copy()
    run(op, {"x": x}, attrs, opset=opset)
    np.testing.assert_array_equal(x, X)


@pytest.mark.parametrize("op", ["Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh", "Elu", "Selu"])
def test_opset1_consumed_inputs(op):
    y = run(op, {"x": X}, {"consumed_inputs": [0]}, opset=1)
    np.testing.assert_allclose(y, run(op, {"x": X}, opset=13 if op in ("Relu", "Sigmoid", "Tanh") else 6))


def _softmax_rows(x):
    z = x.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def test_softmax_large_float32_tensors_take_either_path_accurately():
    # attention-sized inputs: most rows go without the per-row maximum; rows that would
    # overflow, or whose terms all underflow, or that hold -inf or NaN, take the shifted path
    x = (rng.standard_normal((2, 4, 64, 64)) * 4).astype(np.float32)
    assert _softmax_unshifted(x) is not None  # the short path is taken here
    want = _softmax_rows(x)
    np.testing.assert_allclose(run("Softmax", {"x": x}, opset=13), want, rtol=2e-6, atol=1e-12)
    for fill in (200.0, -200.0, 85.0):  # overflow, underflow, near the overflow bound
        y = x.copy()
        y[1, 2, 3] += fill
        got = run("Softmax", {"x": y}, opset=13)
        np.testing.assert_allclose(got, _softmax_rows(y), rtol=2e-6, atol=1e-12)
    masked = x.copy()
    masked[..., 40:] = -np.inf  # a padding mask
    np.testing.assert_allclose(
        run("Softmax", {"x": masked}, opset=13), _softmax_rows(masked), rtol=2e-6, atol=1e-12
    )
    masked[0, 0, 0] = -np.inf  # a row masked whole: NaN, as the ONNX definition gives
    assert np.isnan(run("Softmax", {"x": masked}, opset=13)[0, 0, 0]).all()
    nan = x.copy()
    nan[0, 1, 2, 3] = np.nan
    got = run("Softmax", {"x": nan}, opset=13)
    assert np.isnan(got[0, 1, 2]).all()
    np.testing.assert_allclose(got[1], want[1], rtol=2e-6, atol=1e-12)
