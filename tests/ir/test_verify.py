"""Nodes are checked against their op schemas at load, as onnxruntime's graph resolution does."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.capi.onnxruntime_pybind11_state import InvalidGraph, NotImplemented

from .test_load import _graph_model

mk = helper.make_node


def _load(model):  # type: ignore[no-untyped-def]
    return onnxlite.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (mk("Add", [], ["y"]), r"'Add_0' \(Add\): .*input size 0 not in range \[min=2, max=2\]"),
        (mk("Relu", ["x", "x"], ["y"]), r"input size 2 not in range \[min=1, max=1\]"),
        # once ran, handing back a row of the result as its first output
        (mk("Relu", ["x"], ["y", "z"], name="r"), r"'r' \(Relu\): .*output size 2 not in range"),
        (mk("Relu", ["x"], ["y"], foo=1), "Unrecognized attribute: foo for operator Relu"),
        (mk("Softmax", ["x"], ["y"], axis="a"), "Mismatched attribute type .*axis.*Expected: 'INT'"),
        (mk("Add", ["", "x"], ["y"]), "input 0 is marked single but has an empty string"),
        (mk("Concat", ["x"], ["y"]), "Required attribute 'axis' is missing"),
    ],
)
def test_a_node_its_schema_rejects_fails_at_load(node, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidGraph, match=message):
        _load(_graph_model([node]))


def test_subgraph_nodes_are_checked_with_their_outer_scope() -> None:
    def branch(node):  # type: ignore[no-untyped-def]
        out = helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, [2])
        return helper.make_graph([node], "b", [], [out])

    cond = numpy_helper.from_array(np.array(True), "c")
    good = mk(
        "If",
        ["c"],
        ["y"],
        then_branch=branch(mk("Relu", ["x"], ["t"])),
        else_branch=branch(mk("Neg", ["x"], ["e"])),
    )
    (y,) = _load(_graph_model([good], inits=[cond])).run(None, {"x": np.array([-1, 2], np.float32)})
    np.testing.assert_array_equal(y, [0, 2])
    bad = mk(
        "If",
        ["c"],
        ["y"],
        then_branch=branch(mk("Relu", ["x"], ["t"], alpha=1.0)),
        else_branch=branch(mk("Neg", ["x"], ["e"])),
    )
    with pytest.raises(InvalidGraph, match="Unrecognized attribute: alpha for operator Relu"):
        _load(_graph_model([bad], inits=[cond]))
    with pytest.raises(InvalidGraph, match="Required attribute 'else_branch' is missing"):
        _load(
            _graph_model([mk("If", ["c"], ["y"], then_branch=branch(mk("Relu", ["x"], ["t"])))], inits=[cond])
        )


def test_ops_without_a_schema_are_left_to_the_kernel_lookup() -> None:
    with pytest.raises(NotImplemented, match="Frobnicate"):
        _load(_graph_model([mk("Frobnicate", ["x"], ["y"])]))
    custom = _graph_model(
        [mk("Foo", ["x"], ["y"], domain="my.ops", anything=3)], opsets=(("", 17), ("my.ops", 1))
    )
    with pytest.raises(NotImplemented, match="Foo"):
        _load(custom)
