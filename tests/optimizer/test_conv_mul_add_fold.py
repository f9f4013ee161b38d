"""conv_mul_add_fold: per-channel constant Mul/Add after a Conv fold into weights and bias."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


@pytest.mark.parametrize("shape", [(6, 1, 1), (1, 6, 1, 1), (1,), ()])
def test_mul_then_add_fold(shape: tuple[int, ...]) -> None:
    inits = {
        "w": rand(6, 3, 3, 3, seed=1),
        "b": rand(6, seed=2),
        "m": rand(*shape, seed=3),
        "a": rand(*shape, seed=4),
    }
    nodes = [
        mk("Conv", ["x", "w", "b"], ["c"]),
        mk("Mul", ["m", "c"], ["cm"]),
        mk("Add", ["cm", "a"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 3, 7, 7])}, ["y"], inits)
    m, _ = run(proto, "conv_mul_add_fold", "dead_code")
    assert ops(m) == ["Conv"] and m.graph.nodes[0].outputs == ["y"]
    feeds = {"x": rand(2, 3, 7, 7, seed=5)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


@pytest.mark.parametrize(
    "const",
    [
        rand(1, 6, 5, 5),  # varies over space
        rand(2, 6, 1, 1),  # varies over the batch
        rand(1, 1, 6, 1, 1),  # grows the rank
        rand(6, 1, 1).astype(np.float64),  # another dtype
    ],
)
def test_non_per_channel_constants_are_left_alone(const: np.ndarray) -> None:
    nodes = [mk("Conv", ["x", "w"], ["c"]), mk("Mul", ["c", "k"], ["y"])]
    proto = make_model(nodes, {"x": (F32, [2, 3, 7, 7])}, ["y"], {"w": rand(6, 3, 3, 3), "k": const})
    m, changed = run(proto, "conv_mul_add_fold")
    assert changed == [] and ops(m) == ["Conv", "Mul"]


def test_runtime_multiplier_is_left_alone() -> None:
    nodes = [mk("Conv", ["x", "w"], ["c"]), mk("Mul", ["c", "k"], ["y"])]
    proto = make_model(
        nodes, {"x": (F32, [1, 3, 7, 7]), "k": (F32, [6, 1, 1])}, ["y"], {"w": rand(6, 3, 3, 3)}
    )
    assert run(proto, "conv_mul_add_fold")[1] == []
