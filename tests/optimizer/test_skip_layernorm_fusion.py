"""skip_layernorm_fusion: Add + LayerNormalization -> com.microsoft SkipLayerNormalization."""

from __future__ import annotations

from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node
INITS = {"g": rand(16, seed=1), "b": rand(16, seed=2), "w": rand(16, 16, seed=3), "bias": rand(16, seed=4)}


def test_add_layernorm_with_bias_absorbed() -> None:
    nodes = [
        mk("MatMul", ["x", "w"], ["h"]),
        mk("Add", ["bias", "h"], ["hb"]),
        mk("Add", ["hb", "res"], ["s"]),
        mk("LayerNormalization", ["s", "g", "b"], ["y"], epsilon=1e-6),
    ]
    proto = make_model(nodes, {"x": (F32, ["B", 4, 16]), "res": (F32, ["B", 4, 16])}, ["y"], INITS)
    m, changed = run(proto, "skip_layernorm_fusion")
    assert changed and ops(m) == ["MatMul", "SkipLayerNormalization"]
    sln = m.graph.nodes[1]
    assert sln.inputs == ["h", "res", "g", "b", "bias"]
    feeds = {"x": rand(2, 4, 16, seed=5), "res": rand(2, 4, 16, seed=6, scale=3)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_sum_read_elsewhere_comes_from_the_fourth_output() -> None:
    nodes = [
        mk("Add", ["a", "c"], ["s"]),
        mk("LayerNormalization", ["s", "g"], ["n"]),
        mk("Add", ["n", "s"], ["y"]),
    ]
    proto = make_model(nodes, {"a": (F32, [2, 4, 16]), "c": (F32, [2, 4, 16])}, ["y"], INITS)
    m, _ = run(proto, "skip_layernorm_fusion")
    assert ops(m) == ["SkipLayerNormalization", "Add"]
    assert m.graph.nodes[0].outputs == ["n", "", "", "s"]
    feeds = {"a": rand(2, 4, 16, seed=5), "c": rand(2, 4, 16, seed=6)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_broadcasting_or_unprovable_shapes_are_left_alone() -> None:
    for a, c in (([2, 4, 16], [1, 4, 16]), (["B", 4, 16], ["C", 4, 16]), ([8, 16], [8, 16])):
        nodes = [mk("Add", ["a", "c"], ["s"]), mk("LayerNormalization", ["s", "g", "b"], ["y"])]
        proto = make_model(nodes, {"a": (F32, a), "c": (F32, c)}, ["y"], INITS)
        assert run(proto, "skip_layernorm_fusion")[1] == [], (a, c)
