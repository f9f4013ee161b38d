"""cse: equal nodes computed once, equal small constants shared; random ops never merged."""

from __future__ import annotations

import numpy as np
from onnx import helper

from .helpers import F32, check_same, make_model, ops, rand, run

mk = helper.make_node


def test_equal_nodes_merge_in_chains() -> None:
    nodes = [
        mk("Relu", ["x"], ["a1"]),
        mk("Relu", ["x"], ["a2"]),
        mk("Mul", ["a1", "c1"], ["b1"]),
        mk("Mul", ["a2", "c2"], ["b2"]),  # equal constants by value: shared first
        mk("Add", ["b1", "b2"], ["y"]),
    ]
    proto = make_model(
        nodes, {"x": (F32, [4])}, ["y"], {"c1": np.array([0.5], F32), "c2": np.array([0.5], F32)}
    )
    m, changed = run(proto, "cse", "dead_code")
    assert "cse" in changed and ops(m) == ["Relu", "Mul", "Add"]
    assert m.graph.nodes[-1].inputs[0] == m.graph.nodes[-1].inputs[1]
    check_same(proto, m, {"x": rand(4)})


def test_different_attributes_random_ops_and_outputs_are_kept() -> None:
    nodes = [
        mk("LeakyRelu", ["x"], ["a"], alpha=0.1),
        mk("LeakyRelu", ["x"], ["b"], alpha=0.2),
        mk("RandomUniformLike", ["x"], ["r1"]),
        mk("RandomUniformLike", ["x"], ["r2"]),
        mk("Neg", ["x"], ["y"]),
        mk("Neg", ["x"], ["z"]),  # both graph outputs: each keeps its producer
        mk("Sum", ["a", "b", "r1", "r2"], ["s"]),
    ]
    proto = make_model(nodes, {"x": (F32, [4])}, ["y", "z", "s"])
    m, changed = run(proto, "cse")
    assert changed == [] and len(ops(m)) == 7
