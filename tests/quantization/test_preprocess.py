import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.quantization import quant_pre_process, quantize_dynamic


def test_constants_become_initializers_and_identities_go(tmp_path):
    w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    g = helper.make_graph(
        [
            helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w)),
            helper.make_node("Identity", ["w"], ["w2"]),
            helper.make_node("MatMul", ["x", "w2"], ["y"], name="mm"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    src, pre, out = tmp_path / "m.onnx", tmp_path / "p.onnx", tmp_path / "q.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), src)
    quant_pre_process(src, pre)
    m = onnx.load(str(pre))
    assert [n.op_type for n in m.graph.node] == ["MatMul"]
    assert any(vi.name == "y" for vi in m.graph.output)
    rep = quantize_dynamic(pre, out)
    assert rep.quantized == {"MatMul": 1}
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(onnxlite.InferenceSession(str(out)).run(None, {"x": x})[0], x @ w, atol=0.05)
