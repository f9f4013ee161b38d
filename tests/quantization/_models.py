"""Small float models built with onnx.helper for the quantizer tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, outputs, inits, opset=17) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "g", inputs, outputs, initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()]
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def mlp(seed: int = 0, k: int = 32, h: int = 64, n: int = 10) -> onnx.ModelProto:
    """x[B, S, K] -> MatMul -> Add -> Relu -> Gemm-free MatMul -> Add, plus an attention-like
    MatMul of two activations and an embedding Gather."""
    rng = np.random.default_rng(seed)
    inits = {
        "w1": rng.standard_normal((k, h)).astype(np.float32) * 0.2,
        "b1": rng.standard_normal(h).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((h, n)).astype(np.float32) * 0.2,
        "emb": rng.standard_normal((50, k)).astype(np.float32),
        "perm": np.array([0, 2, 1], dtype=np.int64),
    }
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], name="embed"),
        helper.make_node("Add", ["x", "e"], ["xe"], name="add_embed"),
        helper.make_node("MatMul", ["xe", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_bias"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("Transpose", ["h2"], ["h2t"], perm=[0, 2, 1], name="tr"),
        helper.make_node("MatMul", ["h2", "h2t"], ["att"], name="att"),
        helper.make_node("MatMul", ["att", "h2"], ["ctx"], name="ctx"),
        helper.make_node("MatMul", ["ctx", "w2"], ["y"], name="fc2"),
    ]
    del inits["perm"]
    return _model(
        nodes,
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "S", k]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", "S"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "S", n])],
        inits,
    )


def mlp_feeds(n: int, seed: int = 1, k: int = 32) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "x": rng.standard_normal((2, 5, k)).astype(np.float32) * 0.1,
            "ids": rng.integers(0, 50, (2, 5)).astype(np.int64),
        }
        for _ in range(n)
    ]


def convnet(seed: int = 0) -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> Conv(+bias) -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)
    inits = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
        "b1": rng.standard_normal(8).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2,
        "b2": rng.standard_normal(16).astype(np.float32) * 0.1,
        "wf": rng.standard_normal((10, 16)).astype(np.float32) * 0.3,
        "bf": rng.standard_normal(10).astype(np.float32) * 0.1,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc"),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )


def conv_feeds(n: int, seed: int = 1, batch: int = 4) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.random((batch, 3, 16, 16), dtype=np.float32)} for _ in range(n)]
