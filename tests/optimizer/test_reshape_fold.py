"""reshape_fold: Reshape chains, and run-time targets computed from Shape become constants."""

from __future__ import annotations

import numpy as np
from onnx import helper

from .helpers import F32, I64, check_same, make_model, ops, rand, run

mk = helper.make_node


def test_reshape_chain_reads_the_original_input() -> None:
    nodes = [
        mk("Flatten", ["x"], ["f"], axis=1),
        mk("Reshape", ["f", "s1"], ["r1"]),
        mk("Reshape", ["r1", "s2"], ["y"]),
    ]
    inits = {"s1": np.array([2, 12, 5], I64), "s2": np.array([4, -1], I64)}
    proto = make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, ["y"], inits)
    m, _ = run(proto, "reshape_fold", "dead_code")
    assert ops(m) == ["Reshape"] and m.graph.nodes[0].inputs == ["x", "s2"]
    check_same(proto, m, {"x": rand(2, 3, 4, 5)})


def test_copy_dims_keep_the_chain() -> None:
    nodes = [mk("Reshape", ["x", "s1"], ["r1"]), mk("Reshape", ["r1", "s2"], ["y"])]
    inits = {"s1": np.array([6, 20], I64), "s2": np.array([0, 4, 5], I64)}
    proto = make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, ["y"], inits)
    assert run(proto, "reshape_fold")[1] == []


def test_head_split_target_from_shape_becomes_constant() -> None:
    # x.view(x.size(0), x.size(1), 4, -1) with dynamic batch and sequence.
    nodes = [
        mk("MatMul", ["x", "w"], ["h"]),
        mk("Shape", ["x"], ["s"]),
        mk("Gather", ["s", "i0"], ["b"], axis=0),
        mk("Gather", ["s", "i1"], ["t"], axis=0),
        mk("Unsqueeze", ["b", "ax"], ["ub"]),
        mk("Unsqueeze", ["t", "ax"], ["ut"]),
        mk("Concat", ["ub", "ut", "heads"], ["target"], axis=0),
        mk("Reshape", ["h", "target"], ["y"]),
    ]
    inits = {
        "w": rand(8, 8),
        "i0": np.array(0),
        "i1": np.array(1),
        "ax": np.array([0]),
        "heads": np.array([4, -1]),
    }
    proto = make_model(nodes, {"x": (F32, ["B", "S", 8])}, {"y": (F32, ["B", "S", 4, 2])}, inits)
    m, _ = run(proto, "reshape_fold", "dead_code")
    assert ops(m) == ["MatMul", "Reshape"]
    assert m.graph.initializers[m.graph.nodes[1].inputs[1]].tolist() == [0, 0, 4, -1]
    check_same(proto, m, {"x": rand(3, 5, 8)})


def test_unprovable_dims_leave_the_target_alone() -> None:
    # dim 0 of another input y may differ from dim 0 of x, and there is already a -1.
    nodes = [
        mk("Shape", ["y"], ["s"]),
        mk("Gather", ["s", "i0"], ["b"], axis=0),
        mk("Unsqueeze", ["b", "ax"], ["ub"]),
        mk("Concat", ["ub", "rest"], ["target"], axis=0),
        mk("Reshape", ["x", "target"], ["z"]),
    ]
    inits = {"i0": np.array(0), "ax": np.array([0]), "rest": np.array([-1])}
    proto = make_model(nodes, {"x": (F32, ["B", 6]), "y": (F32, ["C", 2])}, ["z"], inits)
    assert run(proto, "reshape_fold")[1] == []
