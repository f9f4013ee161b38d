"""Function-body fallback: an op with no kernel runs by expanding its schema's function body."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnxlite.compile import BuildContext, compile_graph
from onnxlite.ir.load import load_model
from onnxlite.providers.cpu.provider import CPUExecutionProvider


class _WithoutOps(CPUExecutionProvider):
    """The CPU provider with some kernels hidden, to force the fallback."""

    def __init__(self, hidden: set[str]) -> None:
        super().__init__()
        self.hidden = hidden

    def supports(self, node, graph, opsets):  # type: ignore[no-untyped-def]
        return node.op_type not in self.hidden and super().supports(node, graph, opsets)


def _run(
    op: str, attrs: dict, x: np.ndarray, opset: int, hidden: set[str], consts: dict | None = None
) -> tuple[np.ndarray, list[str]]:
    consts = consts or {}
    g = helper.make_graph(
        [helper.make_node(op, ["x", *consts], ["y"], name="n", **attrs)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    model = load_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]))
    cpu = _WithoutOps(hidden)
    plan = compile_graph(model.graph, BuildContext(model.opsets, [cpu], cpu))
    vals = plan.template.copy()
    vals[plan.input_slots[0]] = x
    (y,) = plan.execute(vals, plan.full)
    return y, [st.node.op_type for st in plan.steps]


def test_schema_function_body_runs_when_no_kernel() -> None:
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    y, ops = _run("Softsign", {}, x, 18, {"Softsign"})
    assert "Softsign" not in ops and len(ops) > 1
    np.testing.assert_allclose(y, x / (1 + np.abs(x)), rtol=1e-6)


def test_context_dependent_function_body() -> None:
    # LayerNormalization's body is built from the node and its input types.
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    scale = np.full(5, 2.0, np.float32)
    attrs = {"axis": -1, "epsilon": 1e-5}
    y, ops = _run("LayerNormalization", attrs, x, 18, {"LayerNormalization"}, {"scale": scale})
    assert "LayerNormalization" not in ops
    mean = x.mean(-1, keepdims=True)
    want = 2 * (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_kernel_preferred_over_function_body() -> None:
    x = np.ones((2, 2), np.float32)
    _, ops = _run("Softsign", {}, x, 18, set())
    assert ops == ["Softsign"]
