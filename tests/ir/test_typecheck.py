"""Types outside an op's schema are refused at session creation, naming op, domain, opset and type."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxlite


def _model(op: str, elem: int, opset: int, n_inputs: int = 1, elems: list[int] | None = None):  # type: ignore[no-untyped-def]
    names = [f"x{i}" for i in range(n_inputs)]
    elems = elems or [elem] * n_inputs
    g = helper.make_graph(
        [helper.make_node(op, names, ["y"], name="node0")],
        "g",
        [helper.make_tensor_value_info(n, e, [2]) for n, e in zip(names, elems)],
        [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_type_outside_schema_fails_at_creation() -> None:
    with pytest.raises(onnxlite.NotImplemented) as ei:
        onnxlite.InferenceSession(_model("Celu", TensorProto.DOUBLE, 12))
    msg = str(ei.value)
    for part in ("Celu", "node0", "ai.onnx", "12", "tensor(double)", "tensor(float)"):
        assert part in msg, part


def test_type_parameter_must_bind_one_type() -> None:
    m = _model("Add", 0, 17, 2, [TensorProto.FLOAT, TensorProto.DOUBLE])
    with pytest.raises(onnxlite.NotImplemented, match="disagree"):
        onnxlite.InferenceSession(m)


def test_allowed_types_run() -> None:
    s = onnxlite.InferenceSession(_model("Relu", TensorProto.INT8, 14))
    np.testing.assert_array_equal(s.run(None, {"x0": np.array([-1, 2], np.int8)})[0], [0, 2])
