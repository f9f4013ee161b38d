"""identity_elimination: Identity, inference Dropout and no-op Cast/Reshape/Expand/Slice/
Transpose/... disappear; graph output names survive."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, I64, check_same, make_model, ops, rand, run

mk = helper.make_node


def test_identity_and_dropout_chain() -> None:
    nodes = [
        mk("Relu", ["x"], ["a"]),
        mk("Identity", ["a"], ["b"]),
        mk("Dropout", ["b", "r"], ["c", "mask"]),
        mk("Neg", ["c"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 3])}, ["y"], {"r": np.array(0.3, np.float32)})
    m, changed = run(proto, "identity_elimination")
    assert changed and ops(m) == ["Relu", "Neg"]
    check_same(proto, m, {"x": rand(2, 3)})


@pytest.mark.parametrize(
    ("node", "inits", "removed"),
    [
        (mk("Cast", ["x"], ["t"], to=1), {}, True),
        (mk("Cast", ["x"], ["t"], to=11), {}, False),
        (mk("Reshape", ["x", "s"], ["t"]), {"s": np.array([0, -1, 4])}, True),
        (mk("Reshape", ["x", "s"], ["t"]), {"s": np.array([0, 4, -1])}, False),
        (mk("Expand", ["x", "s"], ["t"]), {"s": np.array([1, 4])}, True),
        (mk("Expand", ["x", "s"], ["t"]), {"s": np.array([2, 1, 4])}, False),
        (mk("Slice", ["x", "st", "en"], ["t"]), {"st": np.array([0]), "en": np.array([2**62])}, True),
        (mk("Slice", ["x", "st", "en", "ax"], ["t"]), {"st": [0], "en": [3], "ax": [-1]}, False),
        (mk("Slice", ["x", "st", "en", "ax"], ["t"]), {"st": [0], "en": [4], "ax": [-1]}, True),
        (mk("Transpose", ["x"], ["t"], perm=[0, 1, 2]), {}, True),
        (mk("Transpose", ["x"], ["t"], perm=[0, 2, 1]), {}, False),
        (mk("Tile", ["x", "r"], ["t"]), {"r": np.array([1, 1, 1])}, True),
        (mk("Pad", ["x", "p"], ["t"]), {"p": np.zeros(6, dtype=I64)}, True),
        (mk("Concat", ["x"], ["t"], axis=1), {}, True),
        (
            mk("Dropout", ["x", "r", "train"], ["t"]),
            {"r": np.array(0.5, F32), "train": np.array(True)},
            False,
        ),
    ],
)
def test_noop_detection(node, inits, removed) -> None:  # type: ignore[no-untyped-def]
    inits = {k: np.asarray(v, dtype=I64) if not isinstance(v, np.ndarray) else v for k, v in inits.items()}
    nodes = [mk("Relu", ["x0"], ["x"]), node, mk("Neg", ["t"], ["y"])]
    proto = make_model(nodes, {"x0": (F32, ["N", 3, 4])}, ["y"], inits)
    m, _ = run(proto, "identity_elimination")
    assert (node.op_type not in ops(m)) == removed, ops(m)
    if node.op_type != "Dropout":
        check_same(proto, m, {"x0": rand(2, 3, 4)})


def test_graph_output_name_is_kept_by_renaming_the_producer() -> None:
    nodes = [mk("Relu", ["x"], ["a"]), mk("Neg", ["a"], ["z"]), mk("Identity", ["a"], ["y"])]
    proto = make_model(nodes, {"x": (F32, [3])}, ["y", "z"])
    m, _ = run(proto, "identity_elimination")
    assert ops(m) == ["Relu", "Neg"] and m.graph.nodes[0].outputs == ["y"]
    assert m.graph.nodes[1].inputs == ["y"]
    check_same(proto, m, {"x": rand(3)})


def test_identity_between_input_and_output_stays() -> None:
    nodes = [mk("Identity", ["x"], ["y"]), mk("Identity", ["y"], ["z"])]
    proto = make_model(nodes, {"x": (F32, [3])}, ["y", "z"])
    m, changed = run(proto, "identity_elimination")
    assert ops(m) == ["Identity", "Identity"] and not changed


def test_subgraph_reads_are_renamed() -> None:
    then = helper.make_graph(
        [mk("Identity", ["b"], ["inner"]), mk("Add", ["inner", "x"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", 1, [3])],
    )
    other = helper.make_graph(
        [mk("Neg", ["b"], ["e"])], "else", [], [helper.make_tensor_value_info("e", 1, [3])]
    )
    nodes = [
        mk("Relu", ["x"], ["a"]),
        mk("Identity", ["a"], ["b"]),
        mk("If", ["c"], ["y"], then_branch=then, else_branch=other),
    ]
    proto = make_model(nodes, {"x": (F32, [3]), "c": (bool, [])}, {"y": (F32, [3])})
    m, _ = run(proto, "identity_elimination")
    assert ops(m) == ["Relu", "If"]
    then_ir = m.graph.nodes[1].attrs["then_branch"]
    assert [n.op_type for n in then_ir.nodes] == ["Add"] and then_ir.nodes[0].inputs == ["a", "x"]
    for c in (True, False):
        check_same(proto, m, {"x": rand(3), "c": np.array(c)})
