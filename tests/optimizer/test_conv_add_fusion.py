"""conv_add_fusion: act(Conv(x) + z) -> com.microsoft FusedConv(x, W, B, Z=z, activation)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node
INITS = {"w": rand(4, 3, 3, 3, seed=1), "b": rand(4, seed=2), "w2": rand(4, 4, 1, 1, seed=4)}


def _feeds() -> dict[str, np.ndarray]:
    return {"x": rand(1, 3, 6, 6, seed=3), "r": rand(1, 4, 6, 6, seed=5)}


@pytest.mark.parametrize("op", ["Add", "Sum"])
@pytest.mark.parametrize("conv_first", [True, False])
@pytest.mark.parametrize("act", ["", "Relu", "LeakyRelu"])
def test_residual_add_and_activation_fuse(op: str, conv_first: bool, act: str) -> None:
    ins = ["c", "r"] if conv_first else ["r", "c"]
    nodes = [mk("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), mk(op, ins, ["s" if act else "y"])]
    if act:
        nodes.append(mk(act, ["s"], ["y"], **({"alpha": 0.2} if act == "LeakyRelu" else {})))
    proto = make_model(nodes, {"x": (F32, [1, 3, 6, 6]), "r": (F32, [1, 4, 6, 6])}, ["y"], INITS)
    m, changed = run(proto, "conv_add_fusion")
    assert changed == ["conv_add_fusion"] and ops(m) == ["FusedConv"]
    node = m.graph.nodes[0]
    assert node.inputs == ["x", "w", "b", "r"] and node.attrs.get("activation", "") == act
    check_same(proto, m, _feeds())
    check_ort(m, _feeds(), run_lite(proto, _feeds()))


def test_z_computed_after_the_convolution_keeps_the_order() -> None:
    nodes = [
        mk("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        mk("Conv", ["r", "w2"], ["z"]),  # the shortcut, after the main branch's Conv
        mk("Add", ["c", "z"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [1, 3, 6, 6]), "r": (F32, [1, 4, 6, 6])}, ["y"], INITS)
    m, _ = run(proto, "conv_add_fusion")
    assert ops(m) == ["Conv", "FusedConv"]
    check_same(proto, m, _feeds())


@pytest.mark.parametrize(
    "case",
    ["broadcast", "conv_read_twice", "conv_is_output", "activation_already", "integer"],
)
def test_not_fused(case: str) -> None:
    r_shape = [1, 4, 1, 1] if case == "broadcast" else [1, 4, 6, 6]
    conv = mk("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])
    if case == "activation_already":
        conv = mk(
            "FusedConv", ["x", "w", "b"], ["c"], domain="com.microsoft", pads=[1, 1, 1, 1], activation="Relu"
        )
    nodes = [conv, mk("Add", ["c", "r"], ["y"])]
    outputs = ["y"]
    if case == "conv_read_twice":
        nodes.append(mk("Neg", ["c"], ["n"]))
        outputs.append("n")
    if case == "conv_is_output":
        outputs.append("c")
    if case == "integer":
        nodes = [mk("Add", ["i", "j"], ["y"])]
    inputs = {"x": (F32, [1, 3, 6, 6]), "r": (F32, r_shape)}
    if case == "integer":
        inputs = {"i": (np.int64, [2]), "j": (np.int64, [2])}
    proto = make_model(nodes, inputs, outputs, INITS, ms=case == "activation_already")
    _, changed = run(proto, "conv_add_fusion")
    assert changed == []
