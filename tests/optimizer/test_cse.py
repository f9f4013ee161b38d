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


def _two_convs(w1: np.ndarray, w2: np.ndarray, **kw) -> tuple:
    nodes = [
        mk("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        mk("Conv", ["x", "w2"], ["b"], pads=[1, 1, 1, 1]),
        mk("Add", ["a", "b"], ["y"]),
    ]
    return make_model(nodes, {"x": (F32, [1, 4, 6, 6])}, ["y"], {"w1": w1, "w2": w2}, **kw)


def test_equal_large_weights_are_shared_and_their_convolutions_merge() -> None:
    w = rand(8, 4, 3, 3)
    proto = _two_convs(w, w.copy())
    m, changed = run(proto, "cse", "dead_code")
    assert "cse" in changed and ops(m) == ["Conv", "Add"]
    assert len(m.graph.initializers) == 1
    check_same(proto, m, {"x": rand(1, 4, 6, 6)})


def test_large_weights_differing_anywhere_are_kept_apart() -> None:
    w = rand(8, 4, 3, 3)
    for i in (0, 100, w.size - 1):  # a sampled element and unsampled ones
        w2 = w.copy()
        w2.reshape(-1)[i] += 1e-7 if w2.reshape(-1)[i] else 1.0
        m, changed = run(_two_convs(w, w2), "cse")
        assert changed == [] and ops(m) == ["Conv", "Conv", "Add"], i
    zeros = np.zeros((8, 4, 3, 3), F32)
    m, changed = run(_two_convs(zeros, -zeros), "cse")  # 0.0 and -0.0: equal, not the same bytes
    assert changed == []


def test_overridable_initializers_are_not_shared_but_ir3_constants_are() -> None:
    w = rand(8, 4, 3, 3)
    proto = _two_convs(w, w.copy())
    for name in ("w1", "w2"):  # IR >= 4: an initializer that is also an input may be fed
        proto.graph.input.append(helper.make_tensor_value_info(name, 1, [8, 4, 3, 3]))
    m, changed = run(proto, "cse")
    assert changed == []
    proto.ir_version = 3  # IR 3 lists every initializer as an input: constants still
    m, changed = run(proto, "cse", "dead_code")
    assert ops(m) == ["Conv", "Add"] and len(m.graph.initializers) == 1
    assert sorted(v.name for v in m.graph.inputs) == sorted(["x", *m.graph.initializers])
