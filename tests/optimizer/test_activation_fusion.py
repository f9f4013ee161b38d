"""activation_fusion: Conv/Gemm + activation -> com.microsoft FusedConv / FusedGemm."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node

ACTS = [
    ("Relu", {}, []),
    ("Sigmoid", {}, []),
    ("Tanh", {}, []),
    ("LeakyRelu", {"alpha": 0.2}, []),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, []),
    ("Clip", {}, ["lo", "hi"]),
    ("Clip", {}, ["lo"]),
]


@pytest.mark.parametrize(("act", "attrs", "extra"), ACTS)
def test_conv_activation(act: str, attrs: dict, extra: list[str]) -> None:  # type: ignore[type-arg]
    nodes = [mk("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), mk(act, ["c", *extra], ["y"], **attrs)]
    inits = {
        "w": rand(4, 3, 3, 3, seed=1),
        "b": rand(4, seed=2),
        "lo": np.array(-0.5, F32),
        "hi": np.array(0.7, F32),
    }
    proto = make_model(nodes, {"x": (F32, [1, 3, 6, 6])}, ["y"], inits)
    m, changed = run(proto, "activation_fusion")
    assert changed == ["activation_fusion"] and ops(m) == ["FusedConv"]
    assert m.graph.nodes[0].attrs["activation"] == act
    feeds = {"x": rand(1, 3, 6, 6, seed=3)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


@pytest.mark.parametrize(
    ("act", "attrs"),
    [
        ("Relu", {}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("LeakyRelu", {"alpha": 0.2}),
        ("HardSigmoid", {}),
        ("Elu", {"alpha": 0.7}),
    ],
)
def test_gemm_activation(act: str, attrs: dict) -> None:  # type: ignore[type-arg]
    nodes = [mk("Gemm", ["x", "w", "b"], ["g"], transB=1), mk(act, ["g"], ["y"], **attrs)]
    proto = make_model(nodes, {"x": (F32, [3, 8])}, ["y"], {"w": rand(5, 8, seed=1), "b": rand(5, seed=2)})
    m, _ = run(proto, "activation_fusion")
    assert ops(m) == ["FusedGemm"]
    feeds = {"x": rand(3, 8, seed=3, scale=2)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_left_alone() -> None:
    # conv output read twice; double precision; Gemm + Clip (FusedGemm has no Clip)
    nodes = [
        mk("Conv", ["x", "w"], ["c"]),
        mk("Relu", ["c"], ["y"]),
        mk("Neg", ["c"], ["z"]),
        mk("Gemm", ["a", "m"], ["g"]),
        mk("Clip", ["g", "lo"], ["q"]),
        mk("Conv", ["xd", "wd"], ["cd"]),
        mk("Relu", ["cd"], ["yd"]),
    ]
    inits = {
        "w": rand(4, 3, 1, 1),
        "m": rand(2, 2),
        "lo": np.array(0.0, F32),
        "wd": rand(4, 3, 1, 1).astype(np.float64),
    }
    inputs = {"x": (F32, [1, 3, 4, 4]), "a": (F32, [2, 2]), "xd": (np.float64, [1, 3, 4, 4])}
    proto = make_model(nodes, inputs, ["y", "z", "q", "yd"], inits)
    assert run(proto, "activation_fusion")[1] == []


def test_qdq_units_are_left_alone() -> None:
    nodes = [
        mk("DequantizeLinear", ["xq", "s", "z"], ["x"]),
        mk("Conv", ["x", "w"], ["c"]),
        mk("Relu", ["c"], ["r"]),
        mk("QuantizeLinear", ["r", "s", "z"], ["y"]),
    ]
    inits = {"w": rand(4, 3, 1, 1), "s": np.array(0.05, F32), "z": np.array(0, np.uint8)}
    proto = make_model(nodes, {"xq": (np.uint8, [1, 3, 4, 4])}, ["y"], inits)
    assert run(proto, "activation_fusion")[1] == []
