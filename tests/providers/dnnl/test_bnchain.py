"""BatchNormalization -> Mul -> Add [-> Relu] folded into one oneDNN batch normalization."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .conftest import DNNL, assert_close, graph_model, run_both, where

rng = np.random.default_rng(11)


def _model(add: bool, relu: bool, c_shape: tuple[int, ...], runtime_c: bool):  # type: ignore[no-untyped-def]
    x = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    inits = {
        "s": rng.random(6).astype(np.float32) + 0.5,
        "b": rng.standard_normal(6).astype(np.float32),
        "m": rng.standard_normal(6).astype(np.float32),
        "v": rng.random(6).astype(np.float32) + 0.1,
        "d": rng.standard_normal((6, 1, 1)).astype(np.float32),
    }
    feeds = {"x": x}
    if runtime_c:  # the scale layer's vector is a graph input, known only at run time
        feeds["c"] = rng.standard_normal(c_shape).astype(np.float32)
    else:
        inits["c"] = rng.standard_normal(c_shape).astype(np.float32)
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"], epsilon=1e-3),
        helper.make_node("Mul", ["c", "bn"], ["mul"]),
    ]
    last = "mul"
    if add:
        nodes.append(helper.make_node("Add", ["mul", "d"], ["add"]))
        last = "add"
    if relu:
        nodes.append(helper.make_node("Relu", [last], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [last], ["y"]))
    return graph_model(nodes, feeds, ["y"], inits), feeds


@pytest.mark.parametrize("add", [False, True])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("c_shape", [(6, 1, 1), (1, 6, 1, 1), (1,)])
@pytest.mark.parametrize("runtime_c", [False, True])
def test_batchnorm_scale_layer_folds(
    add: bool, relu: bool, c_shape: tuple[int, ...], runtime_c: bool
) -> None:
    model, feeds = _model(add, relu, c_shape, runtime_c)
    got, want, sd = run_both(model, feeds)
    assert_close(got[0], want[0], 1e-5)
    placed = where(sd)
    assert placed["bn"] == placed["mul"] == DNNL
    plans = sd._providers[0]._plans
    bn = next(st.node for st in sd._plan.steps if st.node.op_type == "BatchNormalization")
    assert "bn" in plans[id(bn)].extra  # folded, not run node by node
    if relu:
        tail = next(st.node for st in sd._plan.steps if st.node.outputs[0] == ("add" if add else "mul"))
        assert plans[id(tail)].post is not None


def test_not_per_channel_is_not_folded() -> None:
    model, feeds = _model(False, False, (5,), False)  # broadcasts over the width
    got, want, sd = run_both(model, feeds)
    assert_close(got[0], want[0], 1e-5)
    bn = next(st.node for st in sd._plan.steps if st.node.op_type == "BatchNormalization")
    assert "bn" not in sd._providers[0]._plans[id(bn)].extra
