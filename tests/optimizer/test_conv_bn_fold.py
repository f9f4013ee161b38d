"""conv_bn_fold: BatchNormalization after a Conv folds into the Conv's weights and bias."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


def _bn_inits(c: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "scale": rng.uniform(0.5, 1.5, c).astype(F32),
        "bias": rng.uniform(-0.5, 0.5, c).astype(F32),
        "mean": rng.uniform(-0.5, 0.5, c).astype(F32),
        "var": rng.uniform(0.2, 2.0, c).astype(F32),
    }


@pytest.mark.parametrize("conv_bias", [True, False])
@pytest.mark.parametrize("group", [1, 2])
def test_conv_bn_folds(conv_bias: bool, group: int) -> None:
    inits = {"w": rand(6, 4 // group, 3, 3, seed=1), **_bn_inits(6)}
    conv_in = ["x", "w"]
    if conv_bias:
        inits["b"] = rand(6, seed=2)
        conv_in.append("b")
    nodes = [
        mk("Conv", conv_in, ["c"], pads=[1, 1, 1, 1], group=group),
        mk("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"], epsilon=1e-3),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 4, 8, 8])}, ["y"], inits)
    m, changed = run(proto, "conv_bn_fold", "dead_code")
    assert changed[0] == "conv_bn_fold" and ops(m) == ["Conv"]
    assert m.graph.nodes[0].outputs == ["y"]
    feeds = {"x": rand(2, 4, 8, 8, seed=3)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_conv_output_read_elsewhere_or_training_bn_is_left_alone() -> None:
    inits = {"w": rand(6, 4, 3, 3, seed=1), **_bn_inits(6)}
    nodes = [
        mk("Conv", ["x", "w"], ["c"]),
        mk("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"]),
        mk("Relu", ["c"], ["z"]),
        mk("Conv", ["x", "w"], ["c2"]),
        mk("BatchNormalization", ["c2", "scale", "bias", "mean", "var"], ["y2", "rm", "rv"], training_mode=1),
    ]
    proto = make_model(nodes, {"x": (F32, [1, 4, 6, 6])}, ["y", "z", "y2"], inits, opset=15)
    m, changed = run(proto, "conv_bn_fold")
    assert changed == [] and ops(m).count("BatchNormalization") == 2


def test_bn_statistics_not_constant_are_left_alone() -> None:
    inits = {"w": rand(6, 4, 3, 3, seed=1), **_bn_inits(6)}
    inits.pop("var")
    nodes = [
        mk("Conv", ["x", "w"], ["c"]),
        mk("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [1, 4, 6, 6]), "var": (F32, [6])}, ["y"], inits)
    _m, changed = run(proto, "conv_bn_fold")
    assert changed == []


@pytest.mark.parametrize("ir_version", [3, 8])
def test_replaced_weights_are_dropped_by_the_fold_itself(ir_version: int) -> None:
    """Each fold frees the weights it replaced at once: folding a deep network would otherwise
    hold every layer's old weights beside the new ones until dead-code removal."""
    inits = {"w": rand(6, 4, 3, 3, seed=1), "shared": rand(6, 4, 3, 3, seed=5), **_bn_inits(6)}
    nodes = [
        mk("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        mk("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["y"]),
        mk("Conv", ["x", "shared"], ["c2"], pads=[1, 1, 1, 1]),
        mk("BatchNormalization", ["c2", "scale", "bias", "mean", "var"], ["y2"]),
        mk("Conv", ["x", "shared"], ["y3"], pads=[1, 1, 1, 1]),  # keeps "shared" in use
    ]
    outs = {n: (F32, [1, 6, 5, 5]) for n in ("y", "y2", "y3")}
    proto = make_model(nodes, {"x": (F32, [1, 4, 5, 5])}, outs, inits, ir_version=ir_version)
    if ir_version == 3:  # IR 3 lists every initializer as a graph input
        for name, v in inits.items():
            proto.graph.input.append(helper.make_tensor_value_info(name, 1, list(v.shape)))
    m, changed = run(proto, "conv_bn_fold")  # no dead_code
    assert changed == ["conv_bn_fold"] and ops(m) == ["Conv", "Conv", "Conv"]
    assert "w" not in m.graph.initializers and "shared" in m.graph.initializers
    assert "w" not in [v.name for v in m.graph.inputs]
    assert "x" in [v.name for v in m.graph.inputs]
    feeds = {"x": rand(1, 4, 5, 5, seed=3)}
    check_same(proto, m, feeds)


def test_layers_sharing_weights_and_statistics_fold_to_one_shared_array() -> None:
    inits = {"w": rand(6, 4, 3, 3, seed=1), **_bn_inits(6)}
    nodes = [
        mk("Conv", ["x", "w"], ["c1"], pads=[1, 1, 1, 1]),
        mk("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["y1"]),
        mk("Conv", ["x2", "w"], ["c2"], pads=[1, 1, 1, 1]),
        mk("BatchNormalization", ["c2", "scale", "bias", "mean", "var"], ["y2"]),
    ]
    proto = make_model(nodes, {"x": (F32, [1, 4, 8, 8]), "x2": (F32, [1, 4, 8, 8])}, ["y1", "y2"], inits)
    m, _ = run(proto, "conv_bn_fold", "dead_code")
    w1, w2 = (m.graph.initializers[n.inputs[1]] for n in m.graph.nodes)
    assert w1 is w2  # one fold computed, one array under both names
    m, _ = run(proto, "conv_bn_fold", "dead_code", "cse")
    assert m.graph.nodes[0].inputs[1] == m.graph.nodes[1].inputs[1]  # merged by name too
    feeds = {"x": rand(1, 4, 8, 8, seed=3), "x2": rand(1, 4, 8, 8, seed=4)}
    check_same(proto, m, feeds)
