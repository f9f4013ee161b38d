import numpy as np
import onnx
import pytest

import onnxlite
from onnxlite.quantization import DynamicQuantConfig, QuantType, quantize, quantize_dynamic

from ._models import conv_feeds, convnet, mlp, mlp_feeds


def _run(path, feeds, lib=onnxlite):
    s = lib.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [s.run(None, f)[0] for f in feeds]


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.fixture
def mlp_path(tmp_path):
    p = tmp_path / "mlp.onnx"
    onnx.save(mlp(), p)
    return p


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("weight_type", [QuantType.QInt8, QuantType.QUInt8])
def test_matmul_gather_dynamic_close_to_fp32_and_onnxruntime(mlp_path, tmp_path, per_channel, weight_type):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    extra = {"MatMulConstBOnly": False}  # also the MatMuls between two activations
    rep = quantize_dynamic(
        mlp_path, out, per_channel=per_channel, weight_type=weight_type, extra_options=extra
    )
    assert rep.quantized == {"MatMul": 4, "Gather": 1}
    ops = _ops(out)
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    feeds = mlp_feeds(3)
    ref = _run(mlp_path, feeds)
    got = _run(out, feeds)
    theirs = _run(out, feeds, ort)
    for r, g, t in zip(ref, got, theirs):
        scale = np.abs(r).max()
        assert np.abs(g - r).max() < 0.05 * scale
        assert np.abs(g - t).max() < 1e-3 * scale


def test_default_keeps_activation_matmuls_float_like_onnxruntime(mlp_path, tmp_path):
    ort_q = pytest.importorskip("onnxruntime.quantization")
    ours, theirs = tmp_path / "ours.onnx", tmp_path / "theirs.onnx"
    rep = quantize_dynamic(mlp_path, ours)
    ort_q.quantize_dynamic(str(mlp_path), str(theirs))
    assert rep.quantized == {"MatMul": 2, "Gather": 1}
    assert _ops(ours).count("MatMulInteger") == _ops(theirs).count("MatMulInteger") == 2


@pytest.mark.parametrize("symmetric", [False, True])
def test_per_row_activations_and_const_b_only(mlp_path, tmp_path, symmetric):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    extra = {"MatMulConstBOnly": True, "ActivationPerRow": True, "ActivationSymmetric": symmetric}
    rep = quantize_dynamic(mlp_path, out, per_channel=True, extra_options=extra)
    assert rep.quantized == {"MatMul": 2, "Gather": 1}
    ops = _ops(out)
    assert ops.count("MatMul") == 2 and "DynamicQuantizeLinear" not in ops
    feeds = mlp_feeds(3)
    for r, g, t in zip(_run(mlp_path, feeds), _run(out, feeds), _run(out, feeds, ort)):
        scale = np.abs(r).max()
        assert np.abs(g - r).max() < 0.02 * scale
        assert np.abs(g - t).max() < 1e-3 * scale


def test_node_and_op_filters(mlp_path, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize_dynamic(
        mlp_path,
        out,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=["fc2"],
        extra_options={"MatMulConstBOnly": True},
    )
    assert rep.quantized == {"MatMul": 1}
    names = {n.name for n in onnx.load(str(out)).graph.node}
    assert "fc2" in names and "embed" in names and "fc1" not in names
    rep = quantize(mlp_path, out, DynamicQuantConfig(nodes_to_quantize=["fc2"]))
    assert rep.quantized == {"MatMul": 1}


@pytest.mark.parametrize("per_channel", [False, True])
def test_conv_gemm_dynamic(tmp_path, per_channel):
    ort = pytest.importorskip("onnxruntime")
    src, out = tmp_path / "c.onnx", tmp_path / "q.onnx"
    onnx.save(convnet(), src)
    rep = quantize_dynamic(src, out, per_channel=per_channel)
    assert rep.quantized == {"Conv": 2, "Gemm": 1}
    assert _ops(out).count("ConvInteger") == 2
    feeds = conv_feeds(2)
    for r, g, t in zip(_run(src, feeds), _run(out, feeds), _run(out, feeds, ort)):
        scale = np.abs(r).max()
        assert np.abs(g - r).max() < 0.05 * scale
        assert np.abs(g - t).max() < 1e-3 * scale


def test_contrib_dynamic_quantize_matmul_runs_in_onnxruntime(mlp_path, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    quantize_dynamic(mlp_path, out, extra_options={"UseContribOps": True, "MatMulConstBOnly": True})
    assert "DynamicQuantizeMatMul" in _ops(out)
    feeds = mlp_feeds(2)
    for r, t in zip(_run(mlp_path, feeds), _run(out, feeds, ort)):
        assert np.abs(t - r).max() < 0.05 * np.abs(r).max()


def test_model_size_shrinks(mlp_path, tmp_path):
    out = tmp_path / "q.onnx"
    quantize_dynamic(mlp_path, out, per_channel=True)
    assert out.stat().st_size < 0.45 * mlp_path.stat().st_size  # tiny model: scales weigh in
