"""The CPU provider's weight-layout rewrite (providers.cpu.layout): which MatMul nodes become
FusedMatMul over transposed weights, which keep their products feature-major, and that the
outputs stay those of the model as written."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.providers.cpu import layout

rng = np.random.default_rng(0)
D, H = 384, 512  # the smallest weights the rewrite takes


def _w(*shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)


def _mlp_block(extra_nodes=(), extra_inits=(), w1_shape=(D, H)) -> onnx.ModelProto:
    """x -> MatMul(w1) -> Add(b1) -> Relu -> MatMul(w2) -> Add(x): the first product feeds only
    layout-free consumers, the second a sum with another computed value."""
    w1 = _w(*w1_shape)
    h = w1_shape[1]
    inits = [
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(_w(h), "b1"),
        numpy_helper.from_array(_w(h, D), "w2"),
        *extra_inits,
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2"),
        helper.make_node("Add", ["h3", "x"], ["y"]),
        *extra_nodes,
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    outputs += [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in extra_nodes]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", D])], outputs, inits
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _numpy_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    return list(ReferenceEvaluator(model).run(None, feeds))


def _session(model: onnx.ModelProto) -> onnxlite.InferenceSession:
    return onnxlite.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("lead", [(1, 1), (2, 64), (1, 700)])  # the last: past feature-major rows
def test_rewrite_keeps_outputs_and_marks_feature_major(lead) -> None:
    model = _mlp_block()
    x = rng.standard_normal((*lead, D)).astype(np.float32)
    sess = _session(model)
    g = sess._model.graph
    fused = {n.name: n for n in g.nodes if n.op_type == "FusedMatMul"}
    assert set(fused) == {"fc1", "fc2"}
    assert all(n.attrs == {"transB": 1} and n.domain == "com.microsoft" for n in fused.values())
    assert "w1" not in g.initializers and "w2" not in g.initializers
    assert g.initializers[fused["fc1"].inputs[1]].shape == (H, D)
    wt = g.initializers[fused["fc1"].inputs[1]]
    assert wt.T.flags.c_contiguous  # a view of the weights as loaded: nothing copied at build
    fm = sess._cpu._feature_major
    assert id(fused["fc1"]) in fm  # Add(bias) -> Relu -> MatMul take a transposed view
    assert id(fused["fc2"]) not in fm  # Add with x would copy it back to row-major
    (y,) = sess.run(None, {"x": x})
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, _numpy_run(model, {"x": x})[0], rtol=1e-4, atol=1e-4)


def test_feature_major_output_of_the_graph_is_row_major() -> None:
    # fc1's product is also a graph output: not feature-major, and the caller gets row-major
    model = _mlp_block(extra_nodes=[helper.make_node("Identity", ["h0"], ["h0_out"])])
    sess = _session(model)
    x = rng.standard_normal((1, 16, D)).astype(np.float32)
    y, h0 = sess.run(None, {"x": x})
    want = _numpy_run(model, {"x": x})
    assert y.flags.c_contiguous and h0.flags.c_contiguous
    np.testing.assert_allclose(h0, want[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, want[0], rtol=1e-4, atol=1e-4)


def test_weights_other_nodes_read_or_small_stay_as_they_are() -> None:
    # w1 also read by an Add: kept, and its MatMul with it
    shared = _mlp_block(
        extra_nodes=[helper.make_node("Add", ["w1", "w1"], ["w1x2"])],
    )
    g = _session(shared)._model.graph
    assert {n.name for n in g.nodes if n.op_type == "FusedMatMul"} == {"fc2"}
    assert "w1" in g.initializers
    small = _mlp_block(w1_shape=(D, 256))
    g = _session(small)._model.graph
    assert [n.name for n in g.nodes if n.op_type == "FusedMatMul"] == []  # w2 is 256 x 384 here too


def test_weights_that_are_graph_inputs_stay_overridable() -> None:
    model = _mlp_block()
    model.graph.input.append(helper.make_tensor_value_info("w1", TensorProto.FLOAT, [D, H]))
    sess = _session(model)
    g = sess._model.graph
    assert "w1" in g.initializers
    x = rng.standard_normal((1, 4, D)).astype(np.float32)
    w1 = _w(D, H)
    (y,) = sess.run(None, {"x": x, "w1": w1})
    want = np.maximum(x @ w1 + numpy_helper.to_array(model.graph.initializer[1]), 0)
    want = want @ numpy_helper.to_array(model.graph.initializer[2]) + x
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_feature_major_ok_follows_views_and_stops_at_mixing() -> None:
    model = _mlp_block()
    sess = _session(model)
    g = sess._model.graph
    consumers = layout._consumers(g)
    assert layout.feature_major_ok(g, "h0", consumers)
    assert not layout.feature_major_ok(g, "h3", consumers)
    assert not layout.feature_major_ok(g, "y", consumers)  # a graph output
