"""Small models built in code for the API and loader tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp(opset: int = 17, ir_version: int = 8, batch: str | int = "N") -> onnx.ModelProto:
    """x[N,4] -> MatMul(W) -> Add(b) -> Relu -> y[N,3], plus a second output z = Sigmoid(h)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h0"], name="matmul"),
        helper.make_node("Add", ["h0", "b"], ["h"], name="add"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
        helper.make_node("Sigmoid", ["h"], ["z"], name="sigmoid"),
    ]
    g = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 3]),
        ],
        [w, b],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    m.producer_name = "onnxlite-tests"
    m.doc_string = "a tiny MLP"
    m.model_version = 3
    helper.set_model_props(m, {"author": "tests"})
    return m


def mlp_reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = mlp()
    w = numpy_helper.to_array(m.graph.initializer[0])
    b = numpy_helper.to_array(m.graph.initializer[1])
    h = x @ w + b
    return np.maximum(h, 0), 1 / (1 + np.exp(-h))


def single(
    op: str, inputs: list[str], outputs: list[str], opset: int = 17, **attrs: object
) -> onnx.ModelProto:
    node = helper.make_node(op, inputs, outputs, name=f"{op.lower()}_node", **attrs)
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(i, TensorProto.FLOAT, None) for i in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
