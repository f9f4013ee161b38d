"""constant_folding: constant subgraphs, Shape arithmetic, and what must not fold."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, I64, check_same, make_model, ops, rand, run, to_proto

mk = helper.make_node


def test_constant_inputs_fold_into_an_initializer() -> None:
    nodes = [
        mk("Constant", [], ["c"], value=helper.make_tensor("v", 1, [3], [1.0, 2.0, 3.0])),
        mk("Mul", ["c", "w"], ["cw"]),
        mk("Transpose", ["m"], ["mt"], perm=[1, 0]),
        mk("MatMul", ["x", "mt"], ["xm"]),
        mk("Add", ["xm", "cw"], ["y"]),
    ]
    inits = {"w": rand(3, seed=1), "m": rand(3, 4, seed=2)}
    proto = make_model(nodes, {"x": (F32, [2, 4])}, ["y"], inits)
    m, changed = run(proto, "constant_folding")
    assert changed == ["constant_folding"]
    assert ops(m) == ["MatMul", "Add"]
    np.testing.assert_array_equal(m.graph.initializers["mt"], inits["m"].T)
    check_same(proto, m, {"x": rand(2, 4)})


def test_shape_arithmetic_of_static_dims_folds() -> None:
    # x.view(x.size(0), x.size(1) * x.size(2)) with a dynamic batch: dim 0 stays a run-time value.
    nodes = [
        mk("Shape", ["x"], ["s"]),
        mk("Gather", ["s", "i1"], ["d1"], axis=0),
        mk("Gather", ["s", "i2"], ["d2"], axis=0),
        mk("Mul", ["d1", "d2"], ["d12"]),
        mk("Unsqueeze", ["d12", "ax0"], ["u"]),
        mk("Gather", ["s", "i0"], ["d0"], axis=0),
        mk("Unsqueeze", ["d0", "ax0"], ["u0"]),
        mk("Concat", ["u0", "u"], ["target"], axis=0),
        mk("Reshape", ["x", "target"], ["y"]),
    ]
    inits = {"i0": np.array(0), "i1": np.array(1), "i2": np.array(2), "ax0": np.array([0])}
    proto = make_model(nodes, {"x": (F32, ["N", 3, 4])}, ["y"], inits)
    m, _ = run(proto, "constant_folding", "dead_code")
    assert m.graph.initializers["u"].tolist() == [12]  # static dims folded through Gather and Mul
    assert ops(m) == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"]
    check_same(proto, m, {"x": rand(5, 3, 4)})


def test_fully_static_shape_folds_and_the_chain_dies() -> None:
    nodes = [
        mk("Shape", ["x"], ["s"]),
        mk("Slice", ["s", "st", "en"], ["s2"]),
        mk("ConstantOfShape", ["s2"], ["z"], value=helper.make_tensor("v", 1, [1], [0.5])),
        mk("Add", ["x", "z"], ["y"]),
    ]
    inits = {"st": np.array([1]), "en": np.array([3])}
    proto = make_model(nodes, {"x": (F32, [2, 3, 4])}, ["y"], inits)
    m, _ = run(proto, "constant_folding", "dead_code")
    assert ops(m) == ["Add"]
    assert m.graph.initializers["z"].shape == (3, 4)
    check_same(proto, m, {"x": rand(2, 3, 4)})


def test_torch_expand_guard_where_equal_minus_one() -> None:
    # torch's x.expand(n, -1): Where(Equal(target, -1), 1, target); a run-time dim is never -1.
    nodes = [
        mk("Shape", ["x"], ["s"]),
        mk("Gather", ["s", "i0"], ["n"], axis=0),
        mk("Unsqueeze", ["n", "ax0"], ["un"]),
        mk("Concat", ["un", "minus1"], ["target"], axis=0),
        mk("Equal", ["target", "minus1s"], ["eq"]),
        mk("Where", ["eq", "ones", "target"], ["t2"]),
        mk("Expand", ["row", "t2"], ["y"]),
    ]
    inits = {
        "i0": np.array(0),
        "ax0": np.array([0]),
        "minus1": np.array([-1]),
        "minus1s": np.array([-1, -1]),
        "ones": np.array([1, 1]),
        "row": rand(1, 5),
    }
    proto = make_model(nodes, {"x": (F32, ["N", 7])}, ["y"], inits)
    m, _ = run(proto, "constant_folding", "cse", "dead_code")
    assert "Equal" not in ops(m) and "Where" not in ops(m)
    assert ops(m)[-2:] == ["Concat", "Expand"]
    check_same(proto, m, {"x": rand(3, 7)})


def test_graph_outputs_random_ops_and_overridable_initializers_stay() -> None:
    nodes = [
        mk("Add", ["a", "b"], ["y"]),  # graph output: keeps its node
        mk("RandomNormal", [], ["r"], shape=[2]),
        mk("Add", ["r", "a"], ["z"]),
        mk("Mul", ["o", "o"], ["w"]),  # o is an initializer the caller may feed
        mk("Add", ["w", "x"], ["v"]),
    ]
    proto = make_model(
        nodes,
        {"x": (F32, [2]), "o": (F32, [2])},
        ["y", "z", "v"],
        {"a": rand(2), "b": rand(2, seed=1), "o": rand(2, seed=2)},
        ir_version=8,
    )
    m, changed = run(proto, "constant_folding")
    assert changed == [] and ops(m) == ["Add", "RandomNormal", "Add", "Mul", "Add"]


@pytest.mark.parametrize(("shape", "folded"), [([1024, 1024], True), ([1 << 15, 1 << 14], False)])
def test_constant_of_shape_weights_fold_up_to_the_weight_limit(shape: list[int], folded: bool) -> None:
    nodes = [
        mk("ConstantOfShape", ["shape"], ["big"], value=helper.make_tensor("v", 1, [1], [0.5])),
        mk("ReduceSum", ["big"], ["s"], keepdims=0),
        mk("Add", ["x", "s"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [1])}, ["y"], {"shape": np.array(shape, dtype=I64)})
    m, _ = run(proto, "constant_folding")
    assert ops(m) == (["Add"] if folded else ["ConstantOfShape", "ReduceSum", "Add"])
    if folded:  # the whole weight branch became one value
        (s,) = [v for v in m.graph.initializers.values() if v.shape == ()]
        assert s == 0.5 * 1024 * 1024


def test_legacy_ir3_lists_new_initializers_as_inputs() -> None:
    nodes = [mk("Add", ["a", "b"], ["c"]), mk("Mul", ["x", "c"], ["y"])]
    inits = {"a": rand(2), "b": rand(2, seed=1)}
    proto = make_model(
        nodes,
        {"x": (F32, [2]), "a": (F32, [2]), "b": (F32, [2])},
        ["y"],
        inits,
        ir_version=3,
        opset=9,
    )
    m, _ = run(proto, "constant_folding", "dead_code")
    assert ops(m) == ["Mul"]
    assert [v.name for v in m.graph.inputs] == ["x", "c"]
    to_proto(m)  # onnx.checker: IR 3 initializers must be graph inputs
    check_same(proto, m, {"x": rand(2, seed=3)})


def test_folds_inside_subgraphs() -> None:
    then = helper.make_graph(
        [mk("Add", ["k1", "k2"], ["k"]), mk("Mul", ["x", "k"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", 1, None)],
        [helper.make_tensor("k1", 1, [1], [2.0]), helper.make_tensor("k2", 1, [1], [3.0])],
    )
    other = helper.make_graph(
        [mk("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, None)]
    )
    nodes = [mk("If", ["cond"], ["y"], then_branch=then, else_branch=other)]
    proto = make_model(nodes, {"x": (F32, [2]), "cond": (np.bool_, [])}, ["y"])
    m, changed = run(proto, "constant_folding", "dead_code")
    assert changed
    sub = m.graph.nodes[0].attrs["then_branch"]
    assert [n.op_type for n in sub.nodes] == ["Mul"] and sub.initializers["k"] == 5.0
    for c in (True, False):
        check_same(proto, m, {"x": rand(2), "cond": np.array(c)})


def test_dequantize_of_constant_weights_stays() -> None:
    # DequantizeLinear(int8 weights) is half of a QDQ unit that integer providers run as one op.
    nodes = [
        mk("DequantizeLinear", ["wq", "ws", "wz"], ["w"]),
        mk("MatMul", ["x", "w"], ["y"]),
    ]
    inits = {
        "wq": np.arange(12, dtype=np.int8).reshape(3, 4),
        "ws": np.array(0.1, F32),
        "wz": np.array(0, np.int8),
    }
    proto = make_model(nodes, {"x": (F32, [2, 3])}, ["y"], inits)
    m, changed = run(proto, "constant_folding", "cse")
    assert changed == [] and ops(m) == ["DequantizeLinear", "MatMul"]


def test_equal_constant_of_shape_weights_fold_to_one_array() -> None:
    def fill(shape_name: str, out: str, v: float):  # type: ignore[no-untyped-def]
        return mk("ConstantOfShape", [shape_name], [out], value=helper.make_tensor("v", 1, [1], [v]))

    nodes = [
        fill("s4", "w1", 0.02),
        fill("s4", "w2", 0.02),  # equal to w1
        fill("s4b", "w3", 0.02),  # equal shape from another shape initializer
        fill("s4", "w4", 0.03),  # another value
        fill("s3", "w5", 0.02),  # another shape
        mk("Mul", ["x", "w1"], ["a"]),
        mk("Mul", ["a", "w2"], ["b"]),
        mk("Mul", ["b", "w3"], ["c"]),
        mk("Mul", ["c", "w4"], ["d"]),
        mk("Mul", ["d", "w5"], ["y"]),
    ]
    inits = {"s4": np.array([2, 4], I64), "s4b": np.array([2, 4], I64), "s3": np.array([1, 4], I64)}
    proto = make_model(nodes, {"x": (F32, [2, 4])}, ["y"], inits)
    m, _ = run(proto, "constant_folding")
    w = m.graph.initializers
    assert w["w1"] is w["w2"] is w["w3"]
    assert w["w4"] is not w["w1"] and w["w5"] is not w["w1"]
    np.testing.assert_array_equal(w["w4"], np.full((2, 4), 0.03, np.float32))
    m, _ = run(proto, "constant_folding", "cse", "dead_code")
    reads = [n.inputs[1] for n in m.graph.nodes]
    assert reads[0] == reads[1] == reads[2] and len(set(reads)) == 3  # merged by name too
    check_same(proto, m, {"x": rand(2, 4)})
