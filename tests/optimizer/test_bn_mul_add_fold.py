"""bn_mul_add_fold: per-channel constant Mul/Add after an inference BatchNormalization fold into
its scale and bias."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


def _bn_inits() -> dict[str, np.ndarray]:
    return {
        "s": rand(6, seed=1),
        "b": rand(6, seed=2),
        "mean": rand(6, seed=3),
        "var": np.abs(rand(6, seed=4)) + 0.5,
    }


@pytest.mark.parametrize("shape", [(6, 1, 1), (1, 6, 1, 1), (1,), ()])
def test_mul_then_add_fold_into_bn(shape: tuple[int, ...]) -> None:
    inits = {**_bn_inits(), "m": rand(*shape, seed=5), "a": rand(*shape, seed=6)}
    nodes = [
        mk("Relu", ["x"], ["r"]),  # not a Conv: conv_bn_fold cannot take the BatchNormalization
        mk("BatchNormalization", ["r", "s", "b", "mean", "var"], ["n"], epsilon=1e-5),
        mk("Mul", ["n", "m"], ["nm"]),
        mk("Add", ["a", "nm"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 6, 5, 5])}, ["y"], inits)
    m, changed = run(proto, "bn_mul_add_fold", "dead_code")
    assert changed[0] == "bn_mul_add_fold"
    assert ops(m) == ["Relu", "BatchNormalization"] and m.graph.nodes[1].outputs == ["y"]
    feeds = {"x": rand(2, 6, 5, 5, seed=7)}
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
    nodes = [
        mk("BatchNormalization", ["x", "s", "b", "mean", "var"], ["n"]),
        mk("Mul", ["n", "k"], ["y"]),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 6, 5, 5])}, ["y"], {**_bn_inits(), "k": const})
    m, changed = run(proto, "bn_mul_add_fold")
    assert changed == [] and ops(m) == ["BatchNormalization", "Mul"]


def test_bn_output_used_elsewhere_is_left_alone() -> None:
    nodes = [
        mk("BatchNormalization", ["x", "s", "b", "mean", "var"], ["n"]),
        mk("Mul", ["n", "k"], ["y"]),
        mk("Relu", ["n"], ["z"]),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 6, 5, 5])}, ["y", "z"], {**_bn_inits(), "k": rand(6, 1, 1)})
    m, changed = run(proto, "bn_mul_add_fold")
    assert changed == [] and ops(m) == ["BatchNormalization", "Mul", "Relu"]
