import numpy as np
import onnx
import pytest
from onnx import TensorProto

import onnxlite
from onnxlite.quantization import convert_float_to_float16, convert_model_float16

from ._models import conv_feeds, convnet, mlp, mlp_feeds


def _types(path):
    m = onnx.load(str(path))
    return (
        {v.name: v.type.tensor_type.elem_type for v in m.graph.input},
        {v.name: v.type.tensor_type.elem_type for v in m.graph.output},
        m,
    )


@pytest.mark.parametrize("keep_io", [False, True])
def test_convnet_fp16_close(tmp_path, keep_io):
    ort = pytest.importorskip("onnxruntime")
    src, out = tmp_path / "c.onnx", tmp_path / "h.onnx"
    onnx.save(convnet(), src)
    rep = convert_model_float16(src, out, keep_io_types=keep_io)
    assert rep.quantized["Conv"] == 2
    ins, outs, m = _types(out)
    want = TensorProto.FLOAT if keep_io else TensorProto.FLOAT16
    assert ins["x"] == want and outs["y"] == want
    assert all(t.data_type != TensorProto.FLOAT for t in m.graph.initializer)
    f = conv_feeds(1)[0]
    feed = f if keep_io else {"x": f["x"].astype(np.float16)}
    ref = onnxlite.InferenceSession(str(src)).run(None, f)[0]
    got = onnxlite.InferenceSession(str(out)).run(None, feed)[0]
    theirs = ort.InferenceSession(str(out)).run(None, feed)[0]
    assert got.dtype == (np.float32 if keep_io else np.float16)
    scale = np.abs(ref).max()
    assert np.abs(got.astype(np.float32) - ref).max() < 5e-3 * scale + 1e-3
    assert np.abs(theirs.astype(np.float32) - ref).max() < 5e-3 * scale + 1e-3


def test_block_lists_keep_float32_with_casts(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    src, out = tmp_path / "m.onnx", tmp_path / "h.onnx"
    onnx.save(mlp(), src)
    rep = convert_model_float16(src, out, keep_io_types=True, op_block_list=["Relu"], node_block_list=["fc2"])
    assert "Relu" not in rep.quantized and rep.quantized["MatMul"] == 3
    m = onnx.load(str(out))
    inits = {t.name: t.data_type for t in m.graph.initializer}
    assert inits["w2"] == TensorProto.FLOAT and inits["w1"] == TensorProto.FLOAT16
    assert sum(n.op_type == "Cast" for n in m.graph.node) >= 3
    f = mlp_feeds(1)[0]
    ref = onnxlite.InferenceSession(str(src)).run(None, f)[0]
    for lib in (onnxlite, ort):
        got = lib.InferenceSession(str(out)).run(None, f)[0]
        assert got.dtype == np.float32
        assert np.abs(got - ref).max() < 1e-2 * np.abs(ref).max()


def test_modelproto_api():
    m = convert_float_to_float16(convnet(), keep_io_types=True)
    assert isinstance(m, onnx.ModelProto)
