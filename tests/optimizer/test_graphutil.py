"""_graphutil: the use/def index, its edits and the constant view of values."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxlite.ir.graph import Node
from onnxlite.ir.load import load_model
from onnxlite.optimizer._graphutil import GraphIndex
from onnxlite.optimizer.base import PassContext

from .helpers import F32, I64, make_model, rand

mk = helper.make_node


def _index(proto):  # type: ignore[no-untyped-def]
    m = load_model(proto.SerializeToString())
    return m, GraphIndex(m.graph, PassContext.for_model(m))


def test_replace_uses_reaches_subgraphs_and_commit_orders_inserts() -> None:
    then = helper.make_graph(
        [mk("Neg", ["a"], ["t"])], "then", [], [helper.make_tensor_value_info("t", 1, [2])]
    )
    other = helper.make_graph(
        [mk("Abs", ["a"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, [2])]
    )
    nodes = [mk("Relu", ["x"], ["a"]), mk("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    m, idx = _index(make_model(nodes, {"x": (F32, [2]), "c": (bool, [])}, {"y": (F32, [2])}))
    assert idx.pinned("a") and idx.sole_consumer("a") is None
    relu, if_node = m.graph.nodes
    idx.insert(Node("Sigmoid", ["x"], ["b"]), if_node)
    idx.replace_uses("a", "b")
    idx.remove(relu)
    idx.commit()
    assert [n.op_type for n in m.graph.nodes] == ["Sigmoid", "If"]
    assert if_node.attrs["then_branch"].nodes[0].inputs == ["b"]
    assert if_node.attrs["else_branch"].nodes[0].inputs == ["b"]


def test_constants_initializers_constant_nodes_and_constant_of_shape() -> None:
    nodes = [
        mk("Constant", [], ["k"], value_floats=[1.0, 2.0]),
        mk("ConstantOfShape", ["shape"], ["z"], value=helper.make_tensor("v", 1, [1], [0.5])),
        mk("Add", ["k", "o"], ["y"]),
        mk("Add", ["z", "x"], ["y2"]),
    ]
    inits = {"shape": np.array([2, 3], I64), "o": rand(2)}
    proto = make_model(nodes, {"x": (F32, [2, 3]), "o": (F32, [2])}, ["y", "y2"], inits)
    _, idx = _index(proto)
    assert idx.const("k").tolist() == [1.0, 2.0]
    assert idx.const("z").shape == (2, 3) and idx.const("z", limit=4) is None
    assert idx.dims("z") == [2, 3]
    assert idx.const("o") is None  # an initializer that is also an input can be fed
    assert idx.const("x") is None


def test_scaled_rounds_once_and_a_memo_returns_one_result_per_weight_and_factors() -> None:
    from onnxlite.optimizer._graphutil import scaled

    w = rand(4, 3, 3, 3, seed=1)
    f = np.array([0.5, 1 / 3, 2.0, -1.25]).reshape(4, 1, 1, 1)
    want = (w.astype(np.float64) * f).astype(np.float32)
    np.testing.assert_array_equal(scaled(w, f), want)
    memo: dict = {}
    a = scaled(w, f, memo)
    np.testing.assert_array_equal(a, want)
    assert scaled(w, f.copy(), memo) is a  # equal factors, the same weight object
    assert scaled(w.copy(), f, memo) is not a  # equal contents, another object: computed again
    assert scaled(w, f * 2, memo) is not a
    key = next(iter(memo))
    del w  # a weight no longer alive is not matched by a new array at its address
    w2 = rand(4, 3, 3, 3, seed=2)
    got = scaled(w2, f, memo)
    np.testing.assert_array_equal(got, (w2.astype(np.float64) * f).astype(np.float32))
    assert key in memo
