"""bn_relu_conv_fold: a BatchNormalization with positive scales before Relu -> Conv becomes an Add,
its scale moving into the convolutions' weights."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


def _bn(c: int, negative: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    s = rng.uniform(0.5, 1.5, c).astype(F32)
    if negative:
        s[1] = -s[1]
    return {
        "s": s,
        "b": rng.uniform(-0.5, 0.5, c).astype(F32),
        "mean": rng.uniform(-0.5, 0.5, c).astype(F32),
        "var": rng.uniform(0.2, 2.0, c).astype(F32),
    }


def _model(convs: int = 1, negative: bool = False, extra: list | None = None, outs: tuple = ()):  # type: ignore[no-untyped-def]
    inits = {
        **_bn(4, negative),
        "w0": rand(6, 4, 3, 3, seed=1),
        "w1": rand(5, 4, 1, 1, seed=2),
        "cb": rand(6, seed=3),
    }
    inits["wg"] = rand(4, 2, 1, 1, seed=9)
    nodes = [
        mk("Concat", ["x", "x2"], ["cat"], axis=1),  # what DenseNet normalizes: no Conv before
        mk("BatchNormalization", ["cat", "s", "b", "mean", "var"], ["n"], epsilon=1e-5),
        mk("Relu", ["n"], ["r"]),
        mk("Conv", ["r", "w0", "cb"], ["y0"], pads=[1, 1, 1, 1]),
    ]
    if convs == 2:
        nodes.append(mk("Conv", ["r", "w1"], ["y1"]))
    nodes += extra or []
    outputs = ["y0"] + (["y1"] if convs == 2 else []) + list(outs)
    return make_model(nodes, {"x": (F32, [2, 2, 7, 7]), "x2": (F32, [2, 2, 7, 7])}, outputs, inits)


FEEDS = {"x": rand(2, 2, 7, 7, seed=4) * 2, "x2": rand(2, 2, 7, 7, seed=5) * 2}


@pytest.mark.parametrize("convs", [1, 2])
def test_scale_moves_into_the_convolutions(convs: int) -> None:
    proto = _model(convs)
    m, changed = run(proto, "bn_relu_conv_fold", "dead_code")
    assert changed[0] == "bn_relu_conv_fold"
    assert ops(m) == ["Concat", "Add", "Relu", "Conv"] + ["Conv"] * (convs - 1)
    for name in ("s", "b", "mean", "var", "w0", "w1"):
        assert name not in m.graph.initializers
    check_same(proto, m, FEEDS)
    check_ort(m, FEEDS, run_lite(proto, FEEDS))


def test_a_negative_scale_is_left_alone() -> None:
    m, changed = run(_model(negative=True), "bn_relu_conv_fold")
    assert changed == [] and "BatchNormalization" in ops(m)


@pytest.mark.parametrize(
    ("extra", "outs"),
    [
        ([mk("Sigmoid", ["r"], ["z"])], ("z",)),  # the ReLU's output read by another op
        ([], ("r",)),  # ... or returned
        ([mk("Sigmoid", ["n"], ["z"])], ("z",)),  # the normalized value read besides the ReLU
        ([mk("Conv", ["r", "wg"], ["g"], group=2)], ("g",)),  # a grouped convolution
    ],
)
def test_other_readers_keep_the_batch_normalization(extra: list, outs: tuple) -> None:
    proto = _model(extra=extra, outs=outs)
    m, changed = run(proto, "bn_relu_conv_fold")
    assert changed == [] and "BatchNormalization" in ops(m)
    check_same(proto, m, FEEDS)
