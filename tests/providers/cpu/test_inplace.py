"""Element-wise steps write into inputs only they can see, and only those."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite as ort
from onnxlite.providers.cpu.inplace import _zero_row, relu_into, relu_to

mk = helper.make_node


def _model(nodes, outputs, inits=None, x_shape=(2, 3, 5, 5)):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    inits = inits or {"w": rng.standard_normal((3, 3, 1, 1)).astype(np.float32)}
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _in_place(sess: ort.InferenceSession) -> list[str]:
    names = [
        (st.node.op_type, getattr(st.fn, "__qualname__", ""), getattr(st.fn, "__module__", ""))
        for st in sess._plan.steps
    ]
    variants = ("_unary", "_binary", "_where_into_y")
    return [op for op, q, mod in names if mod.endswith("cpu.inplace") and q.split(".")[0] in variants]


def _both(model, feeds):  # type: ignore[no-untyped-def]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    fast = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    import onnx.reference

    want = onnx.reference.ReferenceEvaluator(model).run(None, feeds)
    got = fast.run(None, feeds)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    return fast


X = {"x": np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)}


def test_relu_after_conv_writes_in_place() -> None:
    m = _model([mk("Conv", ["x", "w"], ["c"]), mk("Relu", ["c"], ["y"])], ["y"])
    assert _in_place(_both(m, X)) == ["Relu"]


def test_value_with_another_reader_is_not_overwritten() -> None:
    nodes = [mk("Conv", ["x", "w"], ["c"]), mk("Relu", ["c"], ["r"]), mk("Add", ["r", "c"], ["y"])]
    m = _model(nodes, ["y"])
    assert "Relu" not in _in_place(_both(m, X))


def test_graph_output_is_not_overwritten() -> None:
    m = _model([mk("Conv", ["x", "w"], ["c"]), mk("Relu", ["c"], ["y"])], ["y", "c"])
    assert _in_place(_both(m, X)) == []


def test_views_and_inputs_are_not_overwritten() -> None:
    nodes = [
        mk("Relu", ["x"], ["r0"]),  # a graph input: never owned
        mk("Reshape", ["r0", "shape"], ["v"]),  # a view
        mk("Relu", ["v"], ["y"]),
    ]
    inits = {"shape": np.array([2, 75], np.int64)}
    m = _model(nodes, ["y"], inits)
    assert _in_place(_both(m, X)) == []


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_binary_into_the_fresh_operand_even_on_the_right(op: str) -> None:
    nodes = [mk("Conv", ["x", "w"], ["c"]), mk(op, ["k", "c"], ["y"])]
    inits = {"w": np.ones((3, 3, 1, 1), np.float32), "k": np.arange(5, dtype=np.float32)}
    m = _model(nodes, ["y"], inits)
    assert _in_place(_both(m, X)) == [op]


def test_broadcast_beyond_the_buffer_falls_back() -> None:
    # the fresh value (1, 3, 1, 1) broadcasts up to the other operand's shape: no room in place
    nodes = [
        mk("ReduceMean", ["x"], ["r"], axes=[0, 2, 3]),
        mk("Relu", ["r"], ["rr"]),
        mk("Add", ["rr", "x"], ["y"]),
    ]
    m = _model(nodes, ["y"], {"unused": np.zeros(1, np.float32)})
    assert _in_place(_both(m, X)) == ["Add"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [10, 5000, 8192, 3 * 8192 + 5, 3_000_000])
def test_relu_matches_maximum_at_every_size(n: int, dtype) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    x[:3] = [np.nan, -0.0, -np.inf]
    want = np.maximum(x, 0)
    got = relu_to(x, np.empty_like(x))
    np.testing.assert_array_equal(got, want)  # NaN propagates as in np.maximum
    y = x.copy()
    assert relu_into(y) is y
    np.testing.assert_array_equal(y, want)


def test_relu_of_a_strided_view_and_the_shared_zeros_stay_intact() -> None:
    x = np.random.default_rng(1).standard_normal((64, 200)).astype(np.float32)
    v = x[:, ::2]  # not contiguous: the scalar form
    want = np.maximum(v, 0)
    relu_into(v)
    np.testing.assert_array_equal(x[:, ::2], want)
    relu_into(np.full(1 << 16, -1.0, np.float32))
    z = _zero_row(np.dtype(np.float32))
    assert not z.flags.writeable and not z.any()


def test_where_writes_into_a_fresh_full_shape_y() -> None:
    nodes = [
        mk("Relu", ["x"], ["n"]),
        mk("Less", ["x", "zero"], ["c"]),
        mk("Where", ["c", "k", "n"], ["y"]),  # n: fresh, read only here
        mk("Where", ["c", "n2", "k"], ["y2"]),  # y is the scalar: no room in place
        mk("Relu", ["x"], ["n2"]),
    ]
    nodes = [nodes[0], nodes[1], nodes[2], nodes[4], nodes[3]]
    inits = {"zero": np.zeros(1, np.float32), "k": np.full((1,), 7.0, np.float32)}
    m = _model(nodes, ["y", "y2"], inits)
    assert _in_place(_both(m, X)) == ["Where"]
