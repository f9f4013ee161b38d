import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.quantization import QuantFormat
from onnxlite.quantization.nbits import MatMul4BitsQuantizer, quantize_blockwise_4bits, quantize_matmul_nbits


def _model(k=96, n=40, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((k, n)).astype(np.float32) * 0.1
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", n])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m, w


@pytest.mark.parametrize("sym", [True, False])
def test_blockwise_error_bound(sym):
    w = np.random.default_rng(0).standard_normal((100, 7)).astype(np.float32)
    q, s, z = quantize_blockwise_4bits(w, 32, sym)
    assert q.shape == (7, 4, 32) and q.max() <= 15
    back = ((q.astype(np.float32) - z[..., None]) * s[..., None]).reshape(7, -1)[:, :100].T
    step = np.abs(s).max()
    assert np.abs(back - w).max() <= step * (1.0 if sym else 0.51)


@pytest.mark.parametrize("fmt", list(QuantFormat))
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("block", [16, 32, 64])
def test_matmul_nbits_matches_dequantized_weight(tmp_path, fmt, sym, block):
    ort = pytest.importorskip("onnxruntime")
    m, w = _model()
    src, out = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(m, src)
    rep = quantize_matmul_nbits(src, out, block_size=block, is_symmetric=sym, quant_format=fmt)
    assert rep.quantized == {"MatMul": 1}
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops == (["MatMulNBits"] if fmt is QuantFormat.QOperator else ["DequantizeLinear", "MatMul"])
    x = np.random.default_rng(1).standard_normal((3, 96)).astype(np.float32)
    q, s, z = quantize_blockwise_4bits(w, block, sym)
    wd = ((q.astype(np.float32) - z[..., None]) * s[..., None]).reshape(40, -1)[:, :96].T
    expect = x @ wd
    got = onnxlite.InferenceSession(str(out)).run(None, {"x": x})[0]
    theirs = ort.InferenceSession(str(out)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expect, atol=1e-4)
    # onnxruntime may fuse DQ + MatMul into MatMulNBits with int8 activations: a looser bound
    assert np.abs(theirs - expect).max() < 0.02 * np.abs(expect).max()
    assert np.abs(got - x @ w).max() < 0.15 * np.abs(x @ w).max()


def test_class_api_and_size(tmp_path):
    m, _ = _model(k=256, n=256)
    src, out = tmp_path / "m.onnx", tmp_path / "q.onnx"
    onnx.save(m, src)
    q = MatMul4BitsQuantizer(str(src), block_size=32, is_symmetric=True)
    q.process()
    q.save(out)
    assert out.stat().st_size < 0.2 * src.stat().st_size
