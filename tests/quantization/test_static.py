import numpy as np
import onnx
import pytest

import onnxlite
from onnxlite.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    StaticQuantConfig,
    quantize,
    quantize_static,
)

from ._models import conv_feeds, convnet, mlp, mlp_feeds


def _run(path, feeds, lib=onnxlite):
    s = lib.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [s.run(None, f)[0] for f in feeds]


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.fixture
def conv_path(tmp_path):
    p = tmp_path / "conv.onnx"
    onnx.save(convnet(), p)
    return p


@pytest.mark.parametrize("fmt", list(QuantFormat))
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("act", [QuantType.QInt8, QuantType.QUInt8])
def test_convnet_static_close_and_runs_in_onnxruntime(conv_path, tmp_path, fmt, per_channel, act):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    rep = quantize_static(
        conv_path, out, conv_feeds(8), quant_format=fmt, per_channel=per_channel, activation_type=act
    )
    assert rep.quantized["Conv"] == 2 and rep.quantized["Gemm"] == 1
    ops = _ops(out)
    if fmt is QuantFormat.QOperator:
        assert ops.count("QLinearConv") == 2
    else:
        assert ops.count("Conv") == 2 and "QuantizeLinear" in ops
    feeds = conv_feeds(2, seed=7)
    for r, g, t in zip(_run(conv_path, feeds), _run(out, feeds), _run(out, feeds, ort)):
        scale = np.abs(r).max()
        assert np.abs(g - r).max() < 0.08 * scale
        # onnxruntime runs QDQ groups as fused integer kernels: rounding differs by a step or so
        assert np.abs(g - t).max() < 0.03 * scale


@pytest.mark.parametrize("method", list(CalibrationMethod))
def test_calibration_methods(conv_path, tmp_path, method):
    out = tmp_path / "q.onnx"
    rep = quantize_static(conv_path, out, conv_feeds(4), calibrate_method=method, per_channel=True)
    assert rep.ranges and all(lo <= 0 <= hi or lo <= hi for lo, hi in rep.ranges.values())
    feeds = conv_feeds(1, seed=3)
    r, g = _run(conv_path, feeds)[0], _run(out, feeds)[0]
    assert np.abs(g - r).max() < 0.15 * np.abs(r).max()


def test_qdq_structure_bias_int32_and_shared_direct_params(conv_path, tmp_path):
    out = tmp_path / "q.onnx"
    quantize_static(conv_path, out, conv_feeds(4), per_channel=True)
    m = onnx.load(str(out))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    assert inits["b1_quantized"].dtype == np.int32
    assert inits["w1_quantized"].dtype == np.int8 and inits["w1_scale"].shape == (8,)
    # MaxPool output reuses its input's parameters
    q_in = {n.input[0]: n for n in m.graph.node if n.op_type == "QuantizeLinear"}
    assert q_in["p1"].input[1:] == q_in["r1"].input[1:] or (
        np.allclose(inits[q_in["p1"].input[1]], inits[q_in["r1"].input[1]])
    )
    assert "w1" not in inits  # float weights dropped


def test_options_exclusion_overrides_and_weight_qdq(conv_path, tmp_path):
    out = tmp_path / "q.onnx"
    cfg = StaticQuantConfig(
        conv_feeds(4),
        nodes_to_exclude=["fc"],
        op_types_to_quantize=["Conv", "Relu", "MaxPool", "Gemm"],
        extra_options={
            "AddQDQPairToWeight": True,
            "ActivationSymmetric": True,
            "TensorQuantOverrides": {"x": [{"scale": 1 / 127.0, "zero_point": 0}]},
        },
    )
    rep = quantize(conv_path, out, cfg)
    assert "Gemm" not in rep.quantized
    m = onnx.load(str(out))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    assert "w1" in inits and inits["w1"].dtype == np.float32  # float weight kept, Q/DQ pair added
    qx = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    assert np.isclose(inits[qx.input[1]], 1 / 127.0)
    zps = [
        inits[n.input[2]]
        for n in m.graph.node
        if n.op_type == "QuantizeLinear"
        and n.input[0] != "w1"
        and n.input[2] in inits
        and inits[n.input[2]].dtype == np.int8
    ]
    assert zps and all(int(z) == 0 for z in zps)


def test_static_transformer_like_matmuls(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    src, out = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(mlp(), src)
    rep = quantize_static(src, out, mlp_feeds(6), per_channel=True, extra_options={"MatMulConstBOnly": True})
    assert rep.quantized["MatMul"] == 2
    feeds = mlp_feeds(2, seed=9)
    for r, g, t in zip(_run(src, feeds), _run(out, feeds), _run(out, feeds, ort)):
        scale = np.abs(r).max()
        assert np.abs(g - r).max() < 0.1 * scale
        assert np.abs(g - t).max() < 0.03 * scale


@pytest.mark.parametrize("qtype", [QuantType.QInt16, QuantType.QUInt16])
def test_16bit_activations_need_opset21(conv_path, tmp_path, qtype):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    quantize_static(conv_path, out, conv_feeds(4), activation_type=qtype, weight_type=QuantType.QInt8)
    m = onnx.load(str(out))
    assert {o.domain: o.version for o in m.opset_import}[""] >= 21
    feeds = conv_feeds(1, seed=5)
    r, g, t = _run(conv_path, feeds)[0], _run(out, feeds)[0], _run(out, feeds, ort)[0]
    assert np.abs(t - r).max() < 0.05 * np.abs(r).max()
    assert np.abs(g - t).max() < 0.01 * np.abs(r).max()


def test_no_calibration_data_is_an_error(conv_path, tmp_path):
    with pytest.raises(ValueError, match="no feeds"):
        quantize_static(conv_path, tmp_path / "q.onnx", [])


def test_qoperator_graph_is_integer_end_to_end(conv_path, tmp_path):
    out = tmp_path / "q.onnx"
    quantize_static(conv_path, out, conv_feeds(4), quant_format=QuantFormat.QOperator, per_channel=True)
    ops = _ops(out)
    # Relu folded into the convolutions (the Q clamps at zero), MaxPool and Flatten on int8
    assert "Relu" not in ops and "MaxPool" in ops
    assert ops.count("QLinearConv") == 2 and "QLinearGlobalAveragePool" in ops
    qdq = tmp_path / "qdq.onnx"
    quantize_static(
        conv_path,
        qdq,
        conv_feeds(4),
        quant_format=QuantFormat.QOperator,
        per_channel=True,
        extra_options={"QOperatorStandardOnly": True},
    )
    ops = _ops(qdq)
    assert not any(o.startswith("QLinear") and o not in ("QLinearConv", "QLinearMatMul") for o in ops)
    assert "QGemm" not in ops


def test_qoperator_contrib_add_concat_in_both_runtimes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    src, out = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(mlp(), src)
    quantize_static(
        src,
        out,
        mlp_feeds(6),
        quant_format=QuantFormat.QOperator,
        per_channel=True,
        activation_type=QuantType.QUInt8,
    )
    ops = _ops(out)
    assert "QLinearAdd" in ops and "QLinearMatMul" in ops
    feeds = mlp_feeds(2, seed=9)
    for r, g, t in zip(_run(src, feeds), _run(out, feeds), _run(out, feeds, ort)):
        scale = np.abs(r).max()
        assert np.abs(g - r).max() < 0.1 * scale
        assert np.abs(g - t).max() < 0.03 * scale


def test_direct_ops_need_a_quantized_producer(conv_path, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize_static(conv_path, out, conv_feeds(2), op_types_to_quantize=["MaxPool", "Flatten"])
    assert rep.quantized == {}
    rep = quantize_static(
        conv_path,
        out,
        conv_feeds(2),
        op_types_to_quantize=["MaxPool", "Flatten"],
        extra_options={"ForceQuantizeNoInputCheck": True},
    )
    assert rep.quantized == {"MaxPool": 1, "Flatten": 1}


@pytest.mark.parametrize(
    ("act", "weight"),
    [
        (QuantType.QFLOAT8E4M3FN, QuantType.QFLOAT8E4M3FN),
        (QuantType.QUInt8, QuantType.QInt4),
        (QuantType.QInt4, QuantType.QInt4),
        (QuantType.QUInt16, QuantType.QUInt4),
    ],
)
def test_float8_and_4bit_types(conv_path, tmp_path, act, weight):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    method = CalibrationMethod.Distribution if act.is_float8 else CalibrationMethod.MinMax
    quantize_static(
        conv_path,
        out,
        conv_feeds(4),
        activation_type=act,
        weight_type=weight,
        per_channel=not act.is_float8,
        calibrate_method=method,
    )
    feeds = conv_feeds(1, seed=5)
    r, g = _run(conv_path, feeds)[0], _run(out, feeds)[0]
    so = ort.SessionOptions()
    # onnxruntime 1.32's graph optimizer mis-fuses float8 QDQ groups on CPU (outputs off by 130%),
    # and its QDQ propagation moves int4 Q/DQ around MaxPool, which has no int4 kernel
    if act.is_float8 or act is QuantType.QInt4:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    t = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"]).run(None, feeds[0])[0]
    scale = np.abs(r).max()
    tol = 0.35 if act in (QuantType.QInt4, QuantType.QUInt4) else 0.2
    assert np.abs(g - r).max() < tol * scale
    assert np.abs(g - t).max() < 0.02 * scale


def test_dedicated_pairs_keep_relu_and_grouped_calibration(conv_path, tmp_path):
    out = tmp_path / "q.onnx"
    feeds = conv_feeds(3)
    quantize_static(
        conv_path,
        out,
        feeds,
        extra_options={
            "DedicatedQDQPair": True,
            "QDQKeepRemovableActivations": True,
            "CalibMaxIntermediateOutputs": 2,
        },
    )
    ops = _ops(out)
    assert ops.count("Relu") == 2
    r, g = _run(conv_path, feeds[:1])[0], _run(out, feeds[:1])[0]
    assert np.abs(g - r).max() < 0.1 * np.abs(r).max()
    with pytest.raises(ValueError, match="re-iterable"):
        quantize_static(conv_path, out, iter(feeds), extra_options={"CalibMaxIntermediateOutputs": 2})


def test_unimplemented_options_warn(conv_path, tmp_path):
    with pytest.warns(UserWarning, match="EnableSubgraph"):
        quantize_static(conv_path, tmp_path / "q.onnx", conv_feeds(1), extra_options={"EnableSubgraph": True})


def test_tensor_override_range(conv_path, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize_static(
        conv_path,
        out,
        conv_feeds(2),
        activation_type=QuantType.QUInt8,
        extra_options={"TensorQuantOverrides": {"x": [{"rmin": 0.0, "rmax": 2.55}]}},
    )
    assert "x" in rep.ranges
    m = onnx.load(str(out))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    qx = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    assert np.isclose(inits[qx.input[1]], 0.01) and int(inits[qx.input[2]]) == 0


@pytest.mark.parametrize("dedicated", [False, True])
def test_dedicated_qdq_pair_per_consumer(tmp_path, dedicated):
    src, out = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(mlp(), src)
    quantize_static(src, out, mlp_feeds(2), extra_options={"DedicatedQDQPair": dedicated})
    m = onnx.load(str(out))
    n_q = sum(1 for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "h2")
    assert n_q == (3 if dedicated else 1)  # h2 feeds Transpose and two MatMuls
    r, g = _run(src, mlp_feeds(1))[0], _run(out, mlp_feeds(1))[0]
    assert np.abs(g - r).max() < 0.1 * np.abs(r).max()


def test_exclude_output_quantization(conv_path, tmp_path):
    out = tmp_path / "q.onnx"
    quantize_static(
        conv_path,
        out,
        conv_feeds(2),
        extra_options={"OpTypesToExcludeOutputQuantization": ["Conv"], "QDQKeepRemovableActivations": True},
    )
    m = onnx.load(str(out))
    assert not any(n.op_type == "QuantizeLinear" and n.input[0] in ("c1", "c2") for n in m.graph.node)


def test_masks_with_infinities_stay_float(tmp_path):
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [
            helper.make_node("Add", ["x", "mask"], ["s"], name="add_mask"),
            helper.make_node("Softmax", ["s"], ["y"], axis=-1, name="softmax"),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, [2, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    )
    src, out = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), src)
    mask = np.array([[0, 0, -np.inf, -np.inf], [0, 0, 0, -np.inf]], dtype=np.float32)
    feeds = [
        {"x": np.random.default_rng(i).standard_normal((2, 4)).astype(np.float32), "mask": mask}
        for i in range(3)
    ]
    for method in (CalibrationMethod.MinMax, CalibrationMethod.Percentile):
        rep = quantize_static(src, out, feeds, calibrate_method=method)
        assert "Add" not in rep.quantized
        y = _run(out, feeds[:1])[0]
        assert np.all(y[mask == -np.inf] == 0)


def test_old_opset_models_are_converted_not_just_relabelled(tmp_path):
    # opset 9: Dropout still has its ratio attribute, which opset 12 turned into an input
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Dropout", ["c"], ["d"], ratio=0.5),
            helper.make_node("Relu", ["d"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w],
    )
    src, out = tmp_path / "old.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)], ir_version=4), src)
    feeds = [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    quantize_static(src, out, _Reader(feeds), per_channel=True)
    assert onnx.load(str(out)).opset_import[0].version == 13
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    for a, b in zip(_run(out, feeds), _run(out, feeds, ort)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


class _Reader:
    def __init__(self, feeds):  # type: ignore[no-untyped-def]
        self._it = iter(list(feeds))

    def get_next(self):  # type: ignore[no-untyped-def]
        return next(self._it, None)


@pytest.mark.parametrize("act", ["QInt16", "QUInt16", "QInt8"])
def test_models_quantized_by_onnxruntime_with_contrib_qdq_ops_run(conv_path, tmp_path, act):
    # onnxruntime's quantizer writes com.microsoft QuantizeLinear/DequantizeLinear for 16-bit
    # QDQ below opset 21 (and for any type with UseQDQContribOps)
    ort = pytest.importorskip("onnxruntime")
    oq = pytest.importorskip("onnxruntime.quantization")

    class Reader(oq.CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(conv_feeds(4))

        def get_next(self):
            return next(self.feeds, None)

    out = tmp_path / "q.onnx"
    oq.quantize_static(
        str(conv_path),
        str(out),
        Reader(),
        activation_type=getattr(oq.QuantType, act),
        weight_type=oq.QuantType.QInt8,
        extra_options={"UseQDQContribOps": True},
    )
    m = onnx.load(str(out))
    assert {n.domain for n in m.graph.node if n.op_type.endswith("quantizeLinear")} == {"com.microsoft"}
    feeds = conv_feeds(2, seed=3)
    r, g, t = _run(conv_path, feeds), _run(out, feeds), _run(out, feeds, ort)
    for ri, gi, ti in zip(r, g, t):
        scale = np.abs(ri).max()
        assert np.abs(ti - ri).max() < 0.08 * scale  # the quantized model is a fair one
        assert np.abs(gi - ti).max() < 0.01 * scale


@pytest.mark.parametrize("act", [QuantType.QInt16, QuantType.QUInt8])
def test_use_qdq_contrib_ops_writes_com_microsoft_qdq_at_the_models_opset(conv_path, tmp_path, act):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    quantize_static(
        conv_path, out, conv_feeds(4), activation_type=act, extra_options={"UseQDQContribOps": True}
    )
    m = onnx.load(str(out))
    opsets = {o.domain: o.version for o in m.opset_import}
    assert opsets[""] == 17 and opsets["com.microsoft"] == 1  # no opset 21 for 16 bits
    qdq = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and {n.domain for n in qdq} == {"com.microsoft"}
    feeds = conv_feeds(1, seed=5)
    r, g, t = _run(conv_path, feeds)[0], _run(out, feeds)[0], _run(out, feeds, ort)[0]
    assert np.abs(t - r).max() < 0.08 * np.abs(r).max()
    assert np.abs(g - t).max() < 0.03 * np.abs(r).max()
