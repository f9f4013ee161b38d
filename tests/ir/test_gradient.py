"""Capturing the function a Gradient node differentiates (onnxlite.ir.gradient)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxlite.errors import InvalidGraph
from onnxlite.ir.gradient import FUNCTION_ATTR, TRAINING_DOMAIN, Function
from onnxlite.ir.load import load_model
from onnxlite.ir.save import model_to_proto


def _model(nodes, xs, y, inputs=("a", "b"), zs=(), grad_inputs=None, initializers=()):
    more = {"zs": list(zs)} if zs else {}
    grad = helper.make_node(
        "Gradient",
        list(grad_inputs if grad_inputs is not None else [*xs, *zs]),
        [f"d{i}" for i in range(len(xs))],
        domain=TRAINING_DOMAIN,
        name="grad",
        xs=list(xs),
        y=y,
        **more,
    )
    g = helper.make_graph(
        [*nodes, grad],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [2]) for n in inputs],
        [helper.make_tensor_value_info(f"d{i}", TensorProto.DOUBLE, [2]) for i in range(len(xs))],
        list(initializers),
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(TRAINING_DOMAIN, 1)]
    return helper.make_model(g, opset_imports=opsets, ir_version=8)


def _function(model) -> Function:
    m = load_model(model)
    return next(n for n in m.graph.nodes if n.op_type == "Gradient").attrs[FUNCTION_ATTR]


def test_the_function_holds_copies_of_the_nodes_from_xs_and_zs_to_y_and_its_constants():
    w = numpy_helper.from_array(np.array([2.0, 3.0]), "w")
    nodes = [
        helper.make_node("Add", ["a", "b"], ["h"], name="add"),
        helper.make_node("Mul", ["h", "w"], ["m"], name="mul"),
        helper.make_node("Relu", ["m"], ["y"], name="relu"),
        helper.make_node("Neg", ["a"], ["unrelated"], name="neg"),
    ]
    m = load_model(_model(nodes, ["h"], "y", initializers=[w]))
    fn = next(n for n in m.graph.nodes if n.op_type == "Gradient").attrs[FUNCTION_ATTR]
    # from h (an intermediate, given) on: the Add that computes h is not part of the function
    assert [n.name for n in fn.nodes] == ["mul", "relu"]
    assert list(fn.constants) == ["w"] and fn.xs == ["h"] and fn.zs == [] and fn.y == "y"
    original = next(n for n in m.graph.nodes if n.name == "mul")
    original.inputs[0] = "renamed"  # as optimizer passes do
    assert fn.nodes[0].inputs == ["h", "w"]


def test_saving_leaves_the_captured_function_out():
    nodes = [helper.make_node("Add", ["a", "b"], ["y"])]
    proto = model_to_proto(load_model(_model(nodes, ["a", "b"], "y")))
    grad = next(n for n in proto.graph.node if n.op_type == "Gradient")
    assert sorted(a.name for a in grad.attribute) == ["xs", "y"]


@pytest.mark.parametrize(
    "xs, zs, grad_inputs, match",
    [
        (["a"], [], ["a", "b"], "takes one input per name in xs then zs"),
        (["a"], [], None, "depends on graph input 'b', which is in neither xs nor zs"),
        (["a", "a"], [], None, "xs and zs must name distinct tensors"),
        (["a"], ["a"], None, "xs and zs must name distinct tensors"),
    ],
)
def test_function_errors_name_what_to_fix(xs, zs, grad_inputs, match):
    nodes = [helper.make_node("Add", ["a", "b"], ["y"])]
    with pytest.raises(InvalidGraph, match=match):
        load_model(_model(nodes, xs, "y", zs=zs, grad_inputs=grad_inputs))


def test_y_computed_by_control_flow_is_refused():
    branch = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["t"])],
        "b",
        [],
        [helper.make_tensor_value_info("t", TensorProto.DOUBLE, [2])],
    )
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["c"], ["y"], name="branch", then_branch=branch, else_branch=branch),
    ]
    with pytest.raises(InvalidGraph, match="cannot differentiate through node 'branch' \\(If\\)"):
        load_model(_model(nodes, ["a"], "y", inputs=("a",)))


def test_y_that_is_a_gradient_output_of_the_same_node_is_refused():
    nodes = [helper.make_node("Add", ["a", "b"], ["s"])]
    with pytest.raises(InvalidGraph, match="y 'd0' depends on the Gradient node's own outputs"):
        load_model(_model(nodes, ["a", "b"], "d0"))
