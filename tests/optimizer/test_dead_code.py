"""dead_code: unused nodes and initializers go; outputs, inputs and subgraph reads stay."""

from __future__ import annotations

from onnx import helper

from .helpers import F32, check_same, make_model, ops, rand, run, to_proto

mk = helper.make_node


def test_unused_nodes_and_initializers_are_removed() -> None:
    nodes = [
        mk("Relu", ["x"], ["a"]),
        mk("Neg", ["a"], ["unused"]),
        mk("Mul", ["unused", "w_dead"], ["unused2"]),
        mk("Add", ["a", "w"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [3])}, ["y"], {"w": rand(3), "w_dead": rand(3)})
    m, changed = run(proto, "dead_code")
    assert changed == ["dead_code"]
    assert ops(m) == ["Relu", "Add"] and set(m.graph.initializers) == {"w"}
    check_same(proto, m, {"x": rand(3, seed=1)})


def test_outputs_and_overridable_initializers_are_kept() -> None:
    nodes = [mk("Relu", ["x"], ["y"]), mk("Neg", ["x"], ["z"])]
    proto = make_model(nodes, {"x": (F32, [3]), "o": (F32, [3])}, ["y", "z"], {"o": rand(3)})
    m, changed = run(proto, "dead_code")
    assert changed == [] and ops(m) == ["Relu", "Neg"] and "o" in m.graph.initializers


def test_legacy_ir3_removes_the_initializer_and_its_input() -> None:
    nodes = [mk("Relu", ["x"], ["y"])]
    proto = make_model(
        nodes, {"x": (F32, [3]), "o": (F32, [3])}, ["y"], {"o": rand(3)}, ir_version=3, opset=9
    )
    m, _ = run(proto, "dead_code")
    assert not m.graph.initializers and [v.name for v in m.graph.inputs] == ["x"]
    to_proto(m)


def test_values_read_only_by_a_subgraph_stay() -> None:
    body = helper.make_graph(
        [mk("Add", ["x", "outer"], ["t"])], "then", [], [helper.make_tensor_value_info("t", 1, [3])]
    )
    other = helper.make_graph(
        [mk("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, [3])]
    )
    nodes = [
        mk("Sigmoid", ["x"], ["outer"]),
        mk("Tanh", ["x"], ["dead"]),
        mk("If", ["c"], ["y"], then_branch=body, else_branch=other),
    ]
    proto = make_model(nodes, {"x": (F32, [3]), "c": (bool, [])}, {"y": (F32, [3])})
    m, _ = run(proto, "dead_code")
    assert ops(m) == ["Sigmoid", "If"]
    check_same(proto, m, {"x": rand(3), "c": __import__("numpy").array(True)})
