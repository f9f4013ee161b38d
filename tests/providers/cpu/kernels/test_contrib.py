"""com.microsoft contrib ops (fused ops, Gelu family, layer norms, misc) against onnxruntime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import onnxlite
from onnxlite.types import onnx_type

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
rng = np.random.default_rng(0)


def _f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def contrib_model(op, inputs, attrs=None, outputs=("y",), inits=(), domain=MS, opset=17):
    """One-node model; an input given as None is skipped (empty name); ``inits`` become
    initializers (onnxruntime needs some inputs constant)."""
    names = [n if v is not None else "" for n, v in inputs.items()]
    node = helper.make_node(op, names, list(outputs), domain=domain, **(attrs or {}))
    graph_inputs = [
        helper.make_tensor_value_info(n, onnx_type(np.asarray(v).dtype), list(np.shape(v)))
        for n, v in inputs.items()
        if v is not None and n not in inits
    ]
    initializers = [numpy_helper.from_array(np.asarray(inputs[n]), n) for n in inits]
    graph = helper.make_graph(
        [node],
        "g",
        graph_inputs,
        [helper.make_value_info(o, onnx.TypeProto()) for o in outputs if o],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def run_both(model: onnx.ModelProto, feeds: Mapping[str, Any]) -> tuple[list, list]:
    raw = model.SerializeToString()
    got = onnxlite.InferenceSession(raw).run(None, dict(feeds))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    sess = ort.InferenceSession(raw, so, providers=["CPUExecutionProvider"])
    return got, sess.run(None, dict(feeds))


def compare(got, want, rtol=1e-5, atol=1e-5, quant_tol=0) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"dtype {g.dtype} != {w.dtype}"
        if w.dtype.kind in "biu":
            diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
            assert diff.max(initial=0) <= quant_tol, f"integer outputs differ by {diff.max()}"
        else:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)


def ort_check(
    op: str,
    inputs: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    *,
    outputs: Sequence[str] = ("y",),
    inits: Sequence[str] = (),
    domain: str = MS,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    quant_tol: int = 0,
) -> list:
    """Run a one-node model in onnxlite and onnxruntime and compare every output."""
    model = contrib_model(op, inputs, attrs, outputs, inits, domain)
    feeds = {n: v for n, v in inputs.items() if v is not None and n not in inits}
    got, want = run_both(model, feeds)
    compare(got, want, rtol, atol, quant_tol)
    return got


def lite_run(op, inputs, attrs=None, outputs=("y",), domain=MS) -> list:
    model = contrib_model(op, inputs, attrs, outputs, domain=domain)
    feeds = {n: v for n, v in inputs.items() if v is not None}
    return onnxlite.InferenceSession(model.SerializeToString()).run(None, feeds)


# --------------------------------------------------------------------------- fused ops


@pytest.mark.parametrize(
    "activation,params",
    [
        ("Relu", None),
        ("Tanh", None),
        ("Sigmoid", None),
        ("LeakyRelu", [0.2]),
        ("Clip", [-0.5, 0.7]),
        ("HardSigmoid", [0.3, 0.4]),
        ("HardSwish", None),
    ],
)
def test_fused_conv_activations(activation, params):
    attrs = {"activation": activation, "pads": [1, 1, 1, 1]}
    if params:
        attrs["activation_params"] = params
    ort_check("FusedConv", {"x": _f32(2, 3, 6, 6), "w": _f32(4, 3, 3, 3), "b": _f32(4)}, attrs, atol=1e-4)


@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_conv_residual_z(with_bias):
    inputs = {"x": _f32(1, 4, 7, 7), "w": _f32(4, 2, 3, 3), "b": _f32(4) if with_bias else None}
    inputs["z"] = _f32(1, 4, 4, 4)
    attrs = {"activation": "Relu", "group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]}
    ort_check("FusedConv", inputs, attrs, atol=1e-4)


@pytest.mark.parametrize(
    "activation",
    [
        "Relu",
        "Tanh",
        "Sigmoid",
        "LeakyRelu",
        "HardSigmoid",
        "Elu",
        "Selu",
        "Softplus",
        "Softsign",
        "ThresholdedRelu",
        "ScaledTanh",
        "ParametricSoftplus",
        "Celu",
    ],
)
def test_fused_gemm_activations(activation):
    attrs = {
        "activation": activation,
        "activation_alpha": 0.5,
        "activation_beta": 0.7,
        "activation_gamma": 1.3,
        "alpha": 0.9,
        "beta": 0.5,
        "transB": 1,
    }
    ort_check("FusedGemm", {"a": _f32(3, 4), "b": _f32(5, 4), "c": _f32(5)}, attrs, atol=1e-5)


def test_fused_gemm_trans_a_no_c():
    ort_check("FusedGemm", {"a": _f32(4, 3), "b": _f32(4, 5)}, {"activation": "Relu", "transA": 1})


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("tba,tbb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_fused_matmul_transposes(ta, tb, tba, tbb):
    a = _f32(2, 3, 4, 5)  # logical [2, 3, 4, 5] before the layout transposes below
    b = _f32(2, 3, 5, 6)
    if ta:
        a = a.swapaxes(-1, -2)
    if tb:
        b = b.swapaxes(-1, -2)
    if tba:
        a = np.moveaxis(a, -2, 0)
    if tbb:
        b = np.moveaxis(b, -2, 0)
    attrs = {"alpha": 0.5, "transA": ta, "transB": tb, "transBatchA": tba, "transBatchB": tbb}
    got = ort_check("FusedMatMul", {"a": np.ascontiguousarray(a), "b": np.ascontiguousarray(b)}, attrs)
    assert got[0].shape == (2, 3, 4, 6)


def test_fused_matmul_broadcast_2d():
    ort_check("FusedMatMul", {"a": _f32(2, 3, 4), "b": _f32(6, 4)}, {"transB": 1, "alpha": 2.0})


# --------------------------------------------------------------------------- Gelu family


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float16, 2e-3)])
def test_gelu_family(dtype, tol):
    x = _f32(2, 3, 16, scale=3).astype(dtype)
    b = _f32(16).astype(dtype)
    ort_check("Gelu", {"x": x}, atol=tol, rtol=tol)
    ort_check("BiasGelu", {"x": x, "b": b}, atol=tol, rtol=tol)
    ort_check("FastGelu", {"x": x}, atol=tol, rtol=tol)
    ort_check("FastGelu", {"x": x, "b": b}, atol=tol, rtol=tol)
    ort_check("QuickGelu", {"x": x}, atol=tol, rtol=tol)
    ort_check("QuickGelu", {"x": x}, {"alpha": 1.3}, atol=tol, rtol=tol)


def test_fast_gelu_double():
    ort_check("FastGelu", {"x": _f32(4, 8).astype(np.float64), "b": _f32(8).astype(np.float64)})


def test_bias_add():
    """onnxruntime has no CPU BiasAdd kernel: checked against numpy."""
    x, b, s = _f32(2, 9, 4), _f32(4), _f32(2, 9, 4)
    (y,) = lite_run("BiasAdd", {"x": x, "b": b, "s": s})
    np.testing.assert_allclose(y, x + b + s, rtol=1e-6)
    assert y.dtype == np.float32


# --------------------------------------------------------------------------- layer norms

SLN_OUT = ("y", "mean", "inv_std", "sum")


@pytest.mark.parametrize("skip_shape", [(2, 3, 16), (1, 3, 16), (3, 16)])
@pytest.mark.parametrize("with_beta,with_bias", [(True, True), (False, False), (True, False)])
def test_skip_layer_norm(skip_shape, with_beta, with_bias):
    inputs = {
        "x": _f32(2, 3, 16),
        "skip": _f32(*skip_shape),
        "gamma": _f32(16),
        "beta": _f32(16) if with_beta else None,
        "bias": _f32(16) if with_bias else None,
    }
    ort_check("SkipLayerNormalization", inputs, {"epsilon": 1e-5}, outputs=SLN_OUT)


def test_skip_layer_norm_single_output_fp16():
    inputs = {"x": _f32(2, 4, 8).astype(np.float16), "skip": _f32(2, 4, 8).astype(np.float16)}
    inputs["gamma"] = _f32(8).astype(np.float16)
    ort_check("SkipLayerNormalization", inputs, atol=5e-3, rtol=5e-3)


@pytest.mark.parametrize("with_bias", [True, False])
def test_skip_simplified_layer_norm(with_bias):
    inputs = {"x": _f32(2, 3, 16), "skip": _f32(2, 3, 16), "gamma": _f32(16)}
    inputs["bias"] = _f32(16) if with_bias else None
    ort_check("SkipSimplifiedLayerNormalization", inputs, outputs=SLN_OUT)


@pytest.mark.parametrize("axis", [-1, 1])
def test_simplified_layer_norm(axis):
    x = _f32(2, 3, 8)
    scale = _f32(*x.shape[axis:])
    attrs = {"axis": axis, "epsilon": 1e-6}
    ort_check("SimplifiedLayerNormalization", {"x": x, "s": scale}, attrs, outputs=("y", "inv"), domain="")


def test_layer_normalization_pre_opset17():
    """onnxruntime's own ONNX-domain LayerNormalization-1, used by models below opset 17."""
    x, s, b = _f32(2, 3, 8), _f32(8), _f32(8)
    model = contrib_model(
        "LayerNormalization",
        {"x": x, "s": s, "b": b},
        {"epsilon": 1e-5},
        ("y", "m", "iv"),
        domain="",
        opset=13,
    )
    got, want = run_both(model, {"x": x, "s": s, "b": b})
    compare(got, want)


def _embed_inputs(with_segment=True, with_mask=True, pos_ids=None, b=2, s=5, h=16):
    return {
        "ids": rng.integers(0, 20, (b, s)).astype(np.int32),
        "seg": rng.integers(0, 2, (b, s)).astype(np.int32) if with_segment else None,
        "word": _f32(20, h),
        "pos": _f32(8, h),
        "segemb": _f32(2, h) if with_segment else None,
        "gamma": _f32(h),
        "beta": _f32(h),
        "mask": np.array([[1, 1, 0, 1, 0], [1] * s], np.int32) if with_mask else None,
        "pids": pos_ids,
    }


@pytest.mark.parametrize("with_segment,with_mask", [(True, True), (False, False), (True, False)])
def test_embed_layer_norm(with_segment, with_mask):
    inputs = _embed_inputs(with_segment, with_mask)
    ort_check("EmbedLayerNormalization", inputs, {"epsilon": 1e-5}, outputs=("y", "mask_index", "emb_sum"))


@pytest.mark.parametrize("shape", [(1, 5), (2, 5)])
def test_embed_layer_norm_position_ids(shape):
    pids = rng.integers(0, 8, shape).astype(np.int32)
    ort_check("EmbedLayerNormalization", _embed_inputs(pos_ids=pids), outputs=("y", "mask_index", "emb_sum"))


# --------------------------------------------------------------------------- misc


def _softmax_from(z, axis):
    axes = tuple(range(axis, z.ndim))
    e = np.exp(z - z.max(axis=axes, keepdims=True))
    return e / e.sum(axis=axes, keepdims=True)


@pytest.mark.parametrize(
    "inner,axis,bias_shape,full_bias",
    [
        (0, 3, (4, 5), (1, 1, 4, 5)),
        (0, 1, (3, 4, 5), (1, 3, 4, 5)),
        (1, 3, (2, 1, 1, 5), (2, 1, 1, 5)),
        (1, 3, (2, 5), (2, 1, 1, 5)),
        (1, 2, (2, 4, 5), (2, 1, 4, 5)),
    ],
)
def test_bias_softmax(inner, axis, bias_shape, full_bias):
    """onnxruntime has BiasSoftmax only for CUDA/ROCm: checked against numpy."""
    d, b = _f32(2, 3, 4, 5), _f32(*bias_shape)
    (y,) = lite_run("BiasSoftmax", {"d": d, "b": b}, {"axis": axis, "is_inner_broadcast": inner})
    np.testing.assert_allclose(y, _softmax_from(d + b.reshape(full_bias), axis), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inverse(dtype):
    x = (_f32(2, 3, 4, 4) + 4 * np.eye(4, dtype=np.float32)).astype(dtype)
    ort_check("Inverse", {"x": x}, atol=1e-5)


def test_inverse_fp16():
    x = (_f32(3, 3) + 4 * np.eye(3, dtype=np.float32)).astype(np.float16)
    ort_check("Inverse", {"x": x}, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, -1, 2])
def test_trilu(upper, k):
    inputs = {"x": rng.integers(-9, 9, (2, 4, 5)).astype(np.int64)}
    if k is not None:
        inputs["k"] = np.array(k, np.int64)
    ort_check("Trilu", inputs, {"upper": upper})


@pytest.mark.parametrize(
    "indices",
    [
        np.array([[0, 1], [1, 2]], np.int64),
        np.array([[1], [0]], np.int64),
        np.array([[[0, 1, 3]], [[1, -1, -2]]], np.int64),
    ],
)
def test_gather_nd(indices):
    ort_check("GatherND", {"d": _f32(2, 3, 4), "i": indices})


# --------------------------------------------------------------------------- RotaryEmbedding


def _rope_inputs(x, pos, head=8, max_pos=16, rd=None):
    half = (rd or head) // 2
    return {"x": x, "pos": pos, "cos": _f32(max_pos, half), "sin": _f32(max_pos, half)}


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_3d(interleaved):
    pos = np.array([[0, 1, 2], [4, 5, 6]], np.int64)
    ort_check("RotaryEmbedding", _rope_inputs(_f32(2, 3, 16), pos), {"interleaved": interleaved})


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_4d_scalar_position(interleaved):
    pos = np.array([3], np.int64)
    inputs = _rope_inputs(_f32(2, 2, 3, 8), pos)
    ort_check("RotaryEmbedding", inputs, {"interleaved": interleaved, "num_heads": 2})


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_partial_dim(interleaved):
    pos = rng.integers(0, 16, (2, 3)).astype(np.int64)
    inputs = _rope_inputs(_f32(2, 3, 16), pos, rd=4)
    attrs = {"interleaved": interleaved, "num_heads": 2, "rotary_embedding_dim": 4}
    ort_check("RotaryEmbedding", inputs, attrs)


def test_rotary_scale_and_packed_batching_attrs():
    pos = np.array([[0, 1, 2, 3, 4, 5]], np.int64)
    inputs = _rope_inputs(_f32(1, 6, 16), pos)
    ort_check("RotaryEmbedding", inputs, {"scale": 2.0, "is_packed_batching": 1})


def test_rotary_fp16():
    pos = np.array([[0, 1, 2], [2, 3, 4]], np.int64)
    inputs = {
        k: (v.astype(np.float16) if v.dtype == np.float32 else v)
        for k, v in _rope_inputs(_f32(2, 3, 16), pos).items()
    }
    ort_check("RotaryEmbedding", inputs, atol=3e-3, rtol=3e-3)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_of_a_feature_major_view(approximate):
    # a transposed product's output (providers.cpu.layout) comes as a transposed view; Gelu
    # works in its memory order, the bias running down its rows
    from onnxlite.providers.cpu.kernels.activation import gelu_f32

    x = np.ascontiguousarray(_f32(48, 10, scale=3)).T[None]  # [1, 10, 48] feature-major
    b = _f32(48)
    got = gelu_f32(x, b, approximate)
    want = gelu_f32(np.ascontiguousarray(x), b, approximate)
    assert got[0].T.flags.c_contiguous  # the layout it came in
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
