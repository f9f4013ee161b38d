"""com.microsoft quantized ops against onnxruntime: integer outputs must match exactly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import onnxlite
from onnxlite.types import onnx_type

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
rng = np.random.default_rng(2)
f32 = np.float32


def _model(op, inputs, attrs, outputs, inits):
    while inputs and list(inputs.values())[-1] is None:  # no trailing empty input names
        inputs = dict(list(inputs.items())[:-1])
    names = [n if v is not None else "" for n, v in inputs.items()]
    node = helper.make_node(op, names, list(outputs), domain=MS, **attrs)
    ins = [
        helper.make_tensor_value_info(n, onnx_type(np.asarray(v).dtype), list(np.shape(v)))
        for n, v in inputs.items()
        if v is not None and n not in inits
    ]
    inits_ = [numpy_helper.from_array(np.asarray(inputs[n]), n) for n in inits if inputs.get(n) is not None]
    outs = [helper.make_value_info(o, onnx.TypeProto()) for o in outputs if o]
    graph = helper.make_graph([node], "g", ins, outs, initializer=inits_)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def check(op, inputs, attrs=None, outputs=("y",), inits=(), atol=1e-5, rtol=1e-5, quant_tol=0):
    """Run in onnxlite and onnxruntime (one intra-op thread: its quantized LSTM quantizes each
    thread's rows separately) and compare; integer outputs within ``quant_tol`` units."""
    raw = _model(op, inputs, attrs or {}, outputs, inits).SerializeToString()
    feeds = {n: np.asarray(v) for n, v in inputs.items() if v is not None and n not in inits}
    got = onnxlite.InferenceSession(raw).run(None, feeds)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(raw, so, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        if w.dtype.kind in "iu":
            diff = np.abs(g.astype(np.int64) - w.astype(np.int64)).max(initial=0)
            assert diff <= quant_tol, f"quantized outputs differ by {diff}"
        else:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)
    return got


def _q(dtype, *shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


# ---------------------------------------------------------------- QuantizeLinear / DequantizeLinear


@pytest.mark.parametrize("qtype", [np.int8, np.uint8, np.int16, np.uint16])
@pytest.mark.parametrize("per_axis", [False, True])
@pytest.mark.parametrize("xtype", [f32, np.float16])
def test_ms_quantize_dequantize_linear(qtype, per_axis, xtype):
    x = (rng.standard_normal((2, 3, 4)) * 50).astype(xtype)
    n = 3 if per_axis else 1
    scale = rng.uniform(0.05, 0.5, n).astype(xtype)
    info = np.iinfo(qtype)
    zp = rng.integers(info.min // 4, info.max // 4 + 1, n).astype(qtype)
    if not per_axis:
        scale, zp = scale.reshape(()), zp.reshape(())
    q = check(
        "QuantizeLinear", {"x": x, "y_scale": scale, "y_zero_point": zp}, {"axis": 1}, inits=("y_scale",)
    )
    check("DequantizeLinear", {"x": q[0], "x_scale": scale, "x_zero_point": zp}, {"axis": 1}, rtol=1e-3)


def test_ms_quantize_linear_without_zero_point_is_uint8_and_axis_defaults_to_1():
    x = (rng.standard_normal((2, 3)) * 10).astype(f32)
    (q,) = check("QuantizeLinear", {"x": x, "y_scale": np.array([0.1, 0.2, 0.3], f32)})
    assert q.dtype == np.uint8
    check("DequantizeLinear", {"x": _q(np.int16, 2, 3), "x_scale": np.array([0.1, 0.2, 0.3], f32)})


def test_ms_dequantize_linear_names_a_scale_that_does_not_fit():
    model = _model("DequantizeLinear", {"x": _q(np.int8, 2, 3), "s": np.ones(4, f32)}, {"axis": 1}, ["y"], ())
    sess = onnxlite.InferenceSession(model.SerializeToString())
    with pytest.raises(
        Exception, match="per-axis quantization along axis 1: the scale/zero point has 4 values"
    ):
        sess.run(None, {"x": _q(np.int8, 2, 3), "s": np.ones(4, f32)})


# --------------------------------------------------------------------------- MatMulNBits


def _pack(vals: np.ndarray, bits: int) -> np.ndarray:
    """Pack integer codes along the last axis, low bits first."""
    per = 8 // bits
    v = vals.reshape(*vals.shape[:-1], -1, per).astype(np.uint8)
    out = np.zeros(v.shape[:-1], np.uint8)
    for i in range(per):
        out |= (v[..., i] << (i * bits)).astype(np.uint8)
    return out


def _nbits(M=3, K=64, N=5, bits=4, block=16, zp="none", lead=(), dtype=f32, bias=False, g_idx=None):
    nb = -(-K // block)
    codes = rng.integers(0, 1 << bits, (N, nb, block))
    zps = None
    if zp == "packed":
        z = rng.integers(0, 1 << bits, (N, nb))
        per = 8 // bits
        zps = _pack(np.pad(z, ((0, 0), (0, -nb % per))), bits)
    elif zp == "float":
        zps = (rng.random((N, nb)) * (1 << bits)).astype(dtype)
    return {
        "a": rng.standard_normal((*lead, M, K)).astype(dtype),
        "b": _pack(codes, bits),
        "scales": (rng.random((N, nb)) * 0.1).astype(dtype),
        "zp": zps,
        "g_idx": g_idx,
        "bias": rng.standard_normal(N).astype(dtype) if bias else None,
    }


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("zp", ["none", "packed", "float"])
def test_matmul_nbits(bits, zp):
    if bits == 8 and zp == "float":
        pytest.skip("onnxruntime has no 8-bit kernel with float zero points")
    inputs = _nbits(bits=bits, zp=zp)
    attrs = {"K": 64, "N": 5, "bits": bits, "block_size": 16}
    check("MatMulNBits", inputs, attrs, inits=("b", "scales", "zp"), atol=1e-4)


@pytest.mark.parametrize("zp", ["none", "packed"])
def test_matmul_nbits_ragged_k_bias_3d(zp):
    inputs = _nbits(M=2, K=40, N=7, block=16, zp=zp, lead=(2,), bias=True)
    attrs = {"K": 40, "N": 7, "bits": 4, "block_size": 16, "accuracy_level": 1}
    check("MatMulNBits", inputs, attrs, inits=("b", "scales", "zp", "bias"), atol=1e-4)


def test_matmul_nbits_flat_scales_runtime_weights():
    inputs = _nbits(K=64, block=32)
    inputs["scales"] = inputs["scales"].reshape(-1)
    check("MatMulNBits", inputs, {"K": 64, "N": 5, "bits": 4, "block_size": 32}, atol=1e-4)


def test_matmul_nbits_fp16():
    inputs = _nbits(zp="packed", dtype=np.float16)
    attrs = {"K": 64, "N": 5, "bits": 4, "block_size": 16}
    check("MatMulNBits", inputs, attrs, inits=("b", "scales", "zp"), atol=3e-2, rtol=1e-2)


@pytest.mark.parametrize("zp", ["none", "float"])
def test_matmul_nbits_g_idx(zp):
    """Act-order group indices (onnxruntime agrees for default and float zero points only)."""
    g = rng.permutation(np.repeat(np.arange(4), 16)).astype(np.int32)
    inputs = _nbits(zp=zp, g_idx=g)
    attrs = {"K": 64, "N": 5, "bits": 4, "block_size": 16}
    check("MatMulNBits", inputs, attrs, inits=("b", "scales", "zp", "g_idx"), atol=1e-4)


def test_matmul_nbits_empty_weight():
    inputs = {"a": rng.standard_normal((3, 64)).astype(f32), "b": np.zeros((5, 0, 8), np.uint8)}
    inputs.update(scales=np.zeros((5, 0), f32), zp=None, g_idx=None, bias=rng.standard_normal(5).astype(f32))
    check("MatMulNBits", inputs, {"K": 64, "N": 5, "bits": 4, "block_size": 16})


def test_matmul_nbits_caches_dequantized_weight():
    inputs = _nbits(zp="packed")
    attrs = {"K": 64, "N": 5, "bits": 4, "block_size": 16}
    raw = _model("MatMulNBits", inputs, attrs, ("y",), ("b", "scales", "zp")).SerializeToString()
    sess = onnxlite.InferenceSession(raw)
    y1 = sess.run(None, {"a": inputs["a"]})[0]
    y2 = sess.run(None, {"a": inputs["a"] * 2})[0]
    np.testing.assert_allclose(y2, 2 * y1, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- integer GEMMs


@pytest.mark.parametrize("adt,bdt", [(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.int8)])
@pytest.mark.parametrize("per_column", [False, True])
def test_matmul_integer_to_float(adt, bdt, per_column):
    n = 5
    inputs = {
        "a": _q(adt, 2, 3, 8),
        "b": _q(bdt, 8, n),
        "a_scale": f32(0.02),
        "b_scale": (rng.random(n) * 0.1).astype(f32) if per_column else f32(0.03),
        "a_zp": _q(adt),
        "b_zp": _q(bdt, n) if per_column else _q(bdt),
        "bias": rng.standard_normal(n).astype(f32),
    }
    check("MatMulIntegerToFloat", inputs)


def test_matmul_integer_to_float_no_zero_points():
    inputs = {"a": _q(np.uint8, 4, 8), "b": _q(np.int8, 8, 3), "a_scale": f32(0.1), "b_scale": f32(0.2)}
    check("MatMulIntegerToFloat", inputs)


@pytest.mark.parametrize("bdt", [np.int8, np.uint8])
@pytest.mark.parametrize("per_column", [False, True])
def test_dynamic_quantize_matmul(bdt, per_column):
    n = 6
    inputs = {
        "a": rng.standard_normal((2, 3, 16)).astype(f32),
        "b": _q(bdt, 16, n),
        "b_scale": (rng.random(n) * 0.1).astype(f32) if per_column else f32(0.05),
        "b_zp": _q(bdt, n) if per_column else _q(bdt),
        "bias": rng.standard_normal(n).astype(f32),
    }
    check("DynamicQuantizeMatMul", inputs)


def test_dynamic_quantize_matmul_positive_input():
    inputs = {"a": rng.random((5, 8)).astype(f32) + 1, "b": _q(np.int8, 8, 3), "b_scale": f32(0.05)}
    check("DynamicQuantizeMatMul", inputs)


@pytest.mark.parametrize("transA,transB", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("quantized_out", [False, True])
def test_qgemm(transA, transB, quantized_out):
    m, k, n = 4, 8, 5
    a = _q(np.uint8, m, k)
    b = _q(np.int8, k, n)
    inputs = {
        "a": a.T.copy() if transA else a,
        "a_scale": f32(0.02),
        "a_zp": np.uint8(120),
        "b": b.T.copy() if transB else b,
        "b_scale": (rng.random(n) * 0.1).astype(f32),
        "b_zp": np.zeros(n, np.int8),
        "c": rng.integers(-1000, 1000, n).astype(np.int32),
        "y_scale": f32(0.1) if quantized_out else None,
        "y_zp": np.uint8(128) if quantized_out else None,
    }
    check("QGemm", inputs, {"alpha": 0.7, "transA": transA, "transB": transB}, atol=1e-5)


def test_qgemm_int8_no_c():
    inputs = {
        "a": _q(np.int8, 3, 8),
        "a_scale": f32(0.02),
        "a_zp": np.int8(-3),
        "b": _q(np.int8, 8, 4),
        "b_scale": f32(0.05),
        "b_zp": np.int8(0),
        "c": None,
        "y_scale": f32(0.05),
        "y_zp": np.int8(4),
    }
    check("QGemm", inputs)


# --------------------------------------------------------------------------- QLinear elementwise


def _binary(dtype, shape_a, shape_b, zp_c=True):
    return {
        "a": _q(dtype, *shape_a),
        "a_scale": f32(0.05),
        "a_zp": _q(dtype),
        "b": _q(dtype, *shape_b),
        "b_scale": f32(0.03),
        "b_zp": _q(dtype),
        "c_scale": f32(0.07),
        "c_zp": _q(dtype) if zp_c else None,
    }


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("shapes", [((4, 64), (4, 64)), ((2, 3, 8), (8,)), ((3, 1), (1, 5))])
def test_qlinear_binary(op, dtype, shapes):
    check(op, _binary(dtype, *shapes), quant_tol=0)


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
def test_qlinear_binary_default_output_zero_point(op):
    check(op, _binary(np.uint8, (3, 7), (3, 7), zp_c=False))


def _unary(dtype, zx, zy, sx=0.1, sy=1 / 256):
    info = np.iinfo(dtype)
    x = np.arange(info.min, info.max + 1).astype(dtype).reshape(16, 16)
    return {"x": x, "x_scale": f32(sx), "x_zp": dtype(zx), "y_scale": f32(sy), "y_zp": dtype(zy)}


@pytest.mark.parametrize("dtype,zx,zy", [(np.uint8, 128, 0), (np.int8, 0, -128), (np.uint8, 30, 10)])
def test_qlinear_sigmoid(dtype, zx, zy):
    check("QLinearSigmoid", _unary(dtype, zx, zy))


@pytest.mark.parametrize("dtype,zx,zy", [(np.uint8, 128, 100), (np.int8, -5, 3)])
@pytest.mark.parametrize("alpha", [0.01, 0.3])
def test_qlinear_leaky_relu(dtype, zx, zy, alpha):
    check("QLinearLeakyRelu", _unary(dtype, zx, zy, sy=0.05), {"alpha": alpha})


# --------------------------------------------------------------------------- pooling / concat


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("channels_last", [0, 1])
def test_qlinear_global_average_pool(dtype, channels_last):
    inputs = {"x": _q(dtype, 2, 3, 5, 5), "xs": f32(0.05), "xz": _q(dtype), "ys": f32(0.02), "yz": _q(dtype)}
    check("QLinearGlobalAveragePool", inputs, {"channels_last": channels_last})


@pytest.mark.parametrize(
    "attrs",
    [
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
        {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER"},
        {"kernel_shape": [2, 2], "channels_last": 1, "pads": [0, 0, 1, 1]},
    ],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_average_pool(attrs, dtype):
    """Within one unit: onnxruntime sums each window in its own order, which decides ties."""
    inputs = {"x": _q(dtype, 2, 3, 7, 7), "xs": f32(0.05), "xz": _q(dtype), "ys": f32(0.03), "yz": _q(dtype)}
    check("QLinearAveragePool", inputs, attrs, quant_tol=1)


def test_qlinear_average_pool_1d():
    inputs = {
        "x": _q(np.uint8, 1, 2, 9),
        "xs": f32(0.05),
        "xz": np.uint8(128),
        "ys": f32(0.05),
        "yz": np.uint8(128),
    }
    check("QLinearAveragePool", inputs, {"kernel_shape": [3], "strides": [2]}, quant_tol=1)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_concat(dtype):
    yz = _q(dtype)
    inputs = {
        "ys": f32(0.05),
        "yz": yz,
        "a": _q(dtype, 2, 3, 2),
        "as": f32(0.05),
        "az": yz,  # same parameters as the output: copied as is
        "b": _q(dtype, 2, 1, 2),
        "bs": f32(0.03),
        "bz": _q(dtype),
        "c": _q(dtype, 2, 4, 2),
        "cs": f32(0.11),
        "cz": _q(dtype),
    }
    check("QLinearConcat", inputs, {"axis": 1})


# --------------------------------------------------------------------------- QAttention

QB, QS, QDIN, QN, QH = 2, 4, 8, 2, 4


def _qattn(wdt=np.int8, per_column=False, mask=None, past=None, zps=True):
    d3 = 3 * QN * QH
    return {
        "x": _q(np.uint8, QB, QS, QDIN),
        "w": _q(wdt, QDIN, d3),
        "bias": rng.standard_normal(d3).astype(f32),
        "xs": f32(0.02),
        "ws": (rng.random(d3) * 0.02).astype(f32) if per_column else f32(0.01),
        "mask": mask,
        "xz": np.uint8(128) if zps else None,
        "wz": (_q(wdt, d3) if per_column else _q(wdt)) if zps else None,
        "past": past,
    }


@pytest.mark.parametrize("wdt", [np.int8, np.uint8])
@pytest.mark.parametrize("per_column", [False, True])
def test_qattention(wdt, per_column):
    check("QAttention", _qattn(wdt, per_column), {"num_heads": QN})


@pytest.mark.parametrize(
    "mask",
    [np.array([2, 4], np.int32), np.array([[1, 1, 0, 1], [1, 1, 1, 1]], np.int32)],
)
@pytest.mark.parametrize("unidirectional", [0, 1])
def test_qattention_masks(mask, unidirectional):
    check("QAttention", _qattn(mask=mask), {"num_heads": QN, "unidirectional": unidirectional})


def test_qattention_past_present_no_zero_points():
    inputs = _qattn(past=rng.standard_normal((2, QB, QN, 3, QH)).astype(f32), zps=False)
    check("QAttention", inputs, {"num_heads": QN, "unidirectional": 1}, outputs=("y", "present"))


# --------------------------------------------------------------------------- DynamicQuantizeLSTM

SEQ, BT, IN, HID = 5, 3, 6, 4
LSTM_OUT = ("y", "y_h", "y_c")


def _lstm(nd=1, wdt=np.int8, per_channel=False, lens=None, init=False, peephole=False):
    shape = (nd, 4 * HID) if per_channel else (nd,)
    # onnxruntime requires int8 weights to be symmetric (zero point 0) and one uint8 zero point
    # per direction even with per-channel scales
    zero = 0 if wdt == np.int8 else 128
    jitter = 0 if wdt == np.int8 or per_channel else rng.integers(-4, 5, shape)
    return {
        "x": rng.standard_normal((SEQ, BT, IN)).astype(f32),
        "w": _q(wdt, nd, IN, 4 * HID),
        "r": _q(wdt, nd, HID, 4 * HID),
        "b": rng.standard_normal((nd, 8 * HID)).astype(f32),
        "lens": None if lens is None else np.asarray(lens, np.int32),
        "h0": rng.standard_normal((nd, BT, HID)).astype(f32) if init else None,
        "c0": rng.standard_normal((nd, BT, HID)).astype(f32) if init else None,
        "p": rng.standard_normal((nd, 3 * HID)).astype(f32) if peephole else None,
        "w_scale": (rng.random(shape) * 0.02).astype(f32),
        "w_zp": (np.full(shape, zero) + jitter).astype(wdt),
        "r_scale": (rng.random(shape) * 0.02).astype(f32),
        "r_zp": (np.full(shape, zero) + jitter).astype(wdt),
    }


LSTM_INITS = ("w", "r", "w_zp", "r_zp")  # onnxruntime needs constant weights and zero points


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("lens", [None, [5, 3, 2]])
def test_dynamic_quantize_lstm_directions(direction, lens):
    nd = 2 if direction == "bidirectional" else 1
    inputs = _lstm(nd=nd, lens=lens, init=True)
    check("DynamicQuantizeLSTM", inputs, {"hidden_size": HID, "direction": direction}, LSTM_OUT, LSTM_INITS)


@pytest.mark.parametrize("wdt", [np.int8, np.uint8])
def test_dynamic_quantize_lstm_per_channel_peephole(wdt):
    inputs = _lstm(wdt=wdt, per_channel=True, peephole=True, init=True)
    check("DynamicQuantizeLSTM", inputs, {"hidden_size": HID}, LSTM_OUT, LSTM_INITS)


def test_dynamic_quantize_lstm_input_forget_clip():
    attrs = {"hidden_size": HID, "input_forget": 1, "clip": 0.5}
    check("DynamicQuantizeLSTM", _lstm(), attrs, LSTM_OUT, LSTM_INITS)


def test_dynamic_quantize_lstm_activations():
    attrs = {
        "hidden_size": HID,
        "activations": ["HardSigmoid", "Tanh", "Relu"],
        "activation_alpha": [0.3],
        "activation_beta": [0.4],
    }
    check("DynamicQuantizeLSTM", _lstm(lens=[2, 5, 4]), attrs, LSTM_OUT, LSTM_INITS)
