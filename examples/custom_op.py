"""Register a Python kernel for a custom op and run a model that uses it.

python examples/custom_op.py
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

import onnxlite as ort


@ort.register_custom_op("ScaledTanh", domain="example.ops")
def scaled_tanh(x, *, alpha=1.0, beta=1.0):
    """y = alpha * tanh(beta * x); attributes arrive as keyword arguments."""
    return (alpha * np.tanh(beta * x)).astype(x.dtype)


def build_model() -> bytes:
    node = helper.make_node("ScaledTanh", ["x"], ["y"], domain="example.ops", alpha=2.0, beta=0.5)
    graph = helper.make_graph(
        [node],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("example.ops", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


if __name__ == "__main__":
    sess = ort.InferenceSession(build_model())
    x = np.linspace(-2, 2, 5, dtype=np.float32)
    print(sess.run(None, {"x": x})[0])
