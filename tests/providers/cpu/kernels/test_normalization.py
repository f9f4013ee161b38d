"""Normalization kernels against onnx.reference (or numpy where it falls short)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

RNG = np.random.default_rng(2)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def bn_inputs(shape, dtype=np.float32):
    c = shape[1]
    return {
        "x": rand(*shape, dtype=dtype),
        "s": rand(c, dtype=dtype),
        "b": rand(c, dtype=dtype),
        "mean": rand(c, dtype=dtype),
        "var": RNG.random(c).astype(dtype) + 0.5,
    }


def bn_numpy(inputs, eps=1e-5):
    x = inputs["x"].astype(np.float64)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    s, b, m, v = (inputs[k].astype(np.float64).reshape(shape) for k in ("s", "b", "mean", "var"))
    return (x - m) / np.sqrt(v + eps) * s + b


@pytest.mark.parametrize("opset", [14, 15])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (2, 3, 4, 5)])
def test_batch_norm_inference(opset, shape):
    check_node("BatchNormalization", bn_inputs(shape), {"epsilon": 1e-3}, opset=opset, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [6, 7, 9])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5)])
def test_batch_norm_inference_old_opsets(opset, shape):
    # one output means inference (the reference runs these versions in training mode)
    inputs = bn_inputs(shape)
    (y,) = run_onnxlite(node_model("BatchNormalization", inputs, {"epsilon": 1e-3}, opset=opset), inputs)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, bn_numpy(inputs, 1e-3), rtol=1e-5, atol=1e-5)


def test_batch_norm_v7_non_spatial():
    x = rand(2, 3, 2)
    inputs = {
        "x": x,
        "s": rand(3, 2),
        "b": rand(3, 2),
        "mean": rand(3, 2),
        "var": RNG.random((3, 2)).astype(np.float32) + 0.5,
    }
    (y,) = run_onnxlite(node_model("BatchNormalization", inputs, {"spatial": 0}, opset=7), inputs)
    want = (x - inputs["mean"]) / np.sqrt(inputs["var"] + 1e-5) * inputs["s"] + inputs["b"]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_batch_norm_float16_and_double():
    check_node("BatchNormalization", bn_inputs((1, 3, 4, 4), np.float16), opset=15, rtol=1e-2, atol=1e-2)
    check_node("BatchNormalization", bn_inputs((1, 3, 4, 4), np.float64), opset=15)


def test_batch_norm_training_mode():
    inputs = bn_inputs((4, 3, 5, 5))
    attrs = {"training_mode": 1, "momentum": 0.8}
    check_node("BatchNormalization", inputs, attrs, opset=15, outputs=("y", "rm", "rv"), rtol=1e-5, atol=1e-5)


def test_batch_norm_v7_training_outputs():
    inputs = bn_inputs((4, 3, 5))
    model = node_model(
        "BatchNormalization", inputs, {"momentum": 0.5}, opset=7, outputs=("y", "rm", "rv", "sm", "sv")
    )
    y, rm, rv, sm, sv = run_onnxlite(model, inputs)
    x = inputs["x"].astype(np.float64)
    bm, bv = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    np.testing.assert_allclose(sm, bm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sv, bv, rtol=1e-5)
    np.testing.assert_allclose(rm, 0.5 * inputs["mean"] + 0.5 * bm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, 0.5 * inputs["var"] + 0.5 * bv, rtol=1e-5)
    want = (x - bm[:, None]) / np.sqrt(bv[:, None] + 1e-5) * inputs["s"][:, None]
    np.testing.assert_allclose(y, want + inputs["b"][:, None], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 4, 3, 5), (1, 2, 3, 2, 4)])
def test_instance_norm(shape):
    c = shape[1]
    inputs = {"x": rand(*shape), "s": rand(c), "b": rand(c)}
    check_node("InstanceNormalization", inputs, {"epsilon": 1e-4}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, -2, 0, 1, 2])
def test_layer_norm(axis):
    x = rand(2, 3, 4)
    norm_shape = x.shape[axis:]
    inputs = {"x": x, "s": rand(*norm_shape), "b": rand(*norm_shape)}
    check_node(
        "LayerNormalization",
        inputs,
        {"axis": axis},
        opset=17,
        outputs=("y", "mean", "inv"),
        rtol=1e-4,
        atol=1e-5,
    )


def test_layer_norm_single_output_no_bias_broadcast_scale():
    x = rand(3, 5, 8)
    check_node(
        "LayerNormalization", {"x": x, "s": rand(8)}, {"epsilon": 1e-3}, opset=17, rtol=1e-4, atol=1e-5
    )


def test_layer_norm_float16_stats_in_float32():
    x = rand(2, 6).astype(np.float16)
    inputs = {"x": x, "s": np.ones(6, np.float16)}
    model = node_model("LayerNormalization", inputs, {}, opset=17, outputs=("y", "mean", "inv"))
    y, mean, _inv = run_onnxlite(model, inputs)
    assert y.dtype == np.float16 and mean.dtype == np.float32 and mean.shape == (2, 1)
    xf = x.astype(np.float64)
    want = (xf - xf.mean(1, keepdims=True)) / np.sqrt(xf.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=2e-3, atol=2e-3)


def group_norm_ref(x, scale, bias, groups, eps=1e-5):
    n, c = x.shape[:2]
    xg = x.astype(np.float64).reshape(n, groups, -1)
    y = (xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + eps)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return y.reshape(x.shape) * scale.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_group_norm_v21_per_channel(groups):
    x, s, b = rand(2, 6, 3, 4), rand(6), rand(6)
    model = node_model("GroupNormalization", {"x": x, "s": s, "b": b}, {"num_groups": groups}, opset=21)
    (y,) = run_onnxlite(model, {"x": x, "s": s, "b": b})
    np.testing.assert_allclose(y, group_norm_ref(x, s, b, groups), rtol=1e-4, atol=1e-5)


def test_group_norm_v18_per_group():
    x, s, b = rand(2, 6, 5), rand(3), rand(3)
    model = node_model("GroupNormalization", {"x": x, "s": s, "b": b}, {"num_groups": 3}, opset=18)
    (y,) = run_onnxlite(model, {"x": x, "s": s, "b": b})
    want = group_norm_ref(x, np.repeat(s, 2), np.repeat(b, 2), 3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_rms_norm(axis):
    x = rand(2, 3, 4)
    check_node(
        "RMSNormalization",
        {"x": x, "s": rand(*x.shape[axis:])},
        {"axis": axis},
        opset=23,
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    ("size", "beta", "channels", "dtype"),
    [
        (1, 0.75, 6, np.float32),
        (2, 0.75, 6, np.float32),
        (3, 0.75, 6, np.float32),
        (5, 0.75, 6, np.float32),
        (5, 0.75, 2, np.float32),  # a window wider than the channels
        (4, 0.5, 6, np.float32),
        (3, 1.0, 6, np.float32),
        (5, 0.6, 6, np.float32),  # the exp(beta * log) branch
        (3, 0.75, 5, np.float64),
        (3, 0.9, 5, np.float16),
    ],
)
def test_lrn(size, beta, channels, dtype):
    x = rand(2, channels, 3, 3, dtype=dtype) * 4
    attrs = {"size": size, "alpha": 1e-2, "beta": beta, "bias": 1.5}
    (y,) = run_onnxlite(node_model("LRN", {"x": x}, attrs), {"x": x})
    sq = x.astype(np.float64) ** 2
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    acc = np.stack([sq[:, max(0, c - lo) : c + hi + 1].sum(1) for c in range(channels)], axis=1)
    assert y.dtype == dtype
    tol = 2e-3 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(y, x / (1.5 + 1e-2 / size * acc) ** beta, rtol=tol, atol=tol * 1e-2)


@pytest.mark.parametrize(("p", "axis"), [(1, -1), (2, 0), (2, 1)])
def test_lp_normalization(p, axis):
    x = rand(3, 4)
    x[1] = 0  # a zero row divides to zero, not NaN
    (y,) = run_onnxlite(node_model("LpNormalization", {"x": x}, {"p": p, "axis": axis}), {"x": x})
    norm = np.linalg.norm(x.astype(np.float64), ord=p, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        want = np.where(norm == 0, 0, x / norm)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("axes", [None, [0, 2, 3], [1], [2, 3]])
def test_mean_variance_normalization(axes):
    attrs = {} if axes is None else {"axes": axes}
    check_node("MeanVarianceNormalization", {"x": rand(2, 3, 4, 5)}, attrs, opset=13, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("axis", [2, -3])
def test_layer_norm_axis_out_of_range_fails(axis):
    # axis 2 of a rank-2 input once normalized every element on its own (all zeros)
    x = np.ones((2, 3), np.float32)
    feeds = {"x": x, "s": np.ones(3, np.float32)}
    with pytest.raises(Exception, match=f"LayerNormalization axis {axis} is out of range for rank 2"):
        run_onnxlite(node_model("LayerNormalization", feeds, {"axis": axis}, opset=17), feeds)
