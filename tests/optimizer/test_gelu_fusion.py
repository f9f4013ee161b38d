"""gelu_fusion: erf GELU -> com.microsoft Gelu, tanh approximation -> FastGelu."""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node
SQRT2 = np.array(math.sqrt(2.0), F32)


def _erf_gelu(order: str, div: bool = True, half: float = 0.5) -> list:  # type: ignore[type-arg]
    pre = [
        mk("Identity", ["x0"], ["x"]),
        mk("Div", ["x", "sqrt2"], ["d"]) if div else mk("Mul", ["x", "isqrt2"], ["d"]),
        mk("Erf", ["d"], ["e"]),
        mk("Add", ["one", "e"], ["p"]),
    ]
    if order == "x*p*half":
        tail = [mk("Mul", ["x", "p"], ["m"]), mk("Mul", ["m", "half"], ["y"])]
    elif order == "x*half*p":
        tail = [mk("Mul", ["half", "x"], ["h"]), mk("Mul", ["h", "p"], ["y"])]
    else:  # x*(p*half)
        tail = [mk("Mul", ["p", "half"], ["ph"]), mk("Mul", ["x", "ph"], ["y"])]
    return pre + tail


def _consts(half: float = 0.5) -> dict[str, np.ndarray]:
    return {
        "sqrt2": SQRT2,
        "isqrt2": np.array(1 / math.sqrt(2.0), F32),
        "one": np.array(1.0, F32),
        "half": np.array([half], F32),
    }


@pytest.mark.parametrize("order", ["x*p*half", "x*half*p", "x*(p*half)"])
@pytest.mark.parametrize("div", [True, False])
def test_erf_gelu_orderings(order: str, div: bool) -> None:
    proto = make_model(_erf_gelu(order, div), {"x0": (F32, [2, 16])}, ["y"], _consts())
    m, changed = run(proto, "gelu_fusion")
    assert changed == ["gelu_fusion"] and ops(m) == ["Identity", "Gelu"]
    feeds = {"x0": rand(2, 16, scale=3)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_wrong_constant_or_shared_intermediate_is_left_alone() -> None:
    proto = make_model(_erf_gelu("x*p*half"), {"x0": (F32, [2, 16])}, ["y"], _consts(half=0.4))
    assert run(proto, "gelu_fusion")[1] == []
    nodes = [*_erf_gelu("x*p*half"), mk("Neg", ["e"], ["z"])]
    proto = make_model(nodes, {"x0": (F32, [2, 16])}, ["y", "z"], _consts())
    assert run(proto, "gelu_fusion")[1] == []


@pytest.mark.parametrize("cube", ["pow", "mul3", "factored"])
def test_tanh_gelu_becomes_fast_gelu(cube: str) -> None:
    if cube == "factored":  # x * (1 + 0.044715 * x * x)
        poly = [
            mk("Mul", ["x", "x"], ["x2"]),
            mk("Mul", ["k", "x2"], ["kx2"]),
            mk("Add", ["kx2", "one"], ["q"]),
            mk("Mul", ["x", "q"], ["inner"]),
        ]
    else:
        cube_nodes = (
            [mk("Pow", ["x", "three"], ["x3"])]
            if cube == "pow"
            else [mk("Mul", ["x", "x"], ["x2"]), mk("Mul", ["x2", "x"], ["x3"])]
        )
        poly = [*cube_nodes, mk("Mul", ["x3", "k"], ["kx3"]), mk("Add", ["x", "kx3"], ["inner"])]
    nodes = [
        mk("Identity", ["x0"], ["x"]),
        *poly,
        mk("Mul", ["inner", "c"], ["s"]),
        mk("Tanh", ["s"], ["t"]),
        mk("Add", ["t", "one"], ["p"]),
        mk("Mul", ["x", "half"], ["h"]),
        mk("Mul", ["h", "p"], ["y"]),
    ]
    inits = {
        "three": np.array(3.0, F32),
        "k": np.array(0.044715, F32),
        "c": np.array(math.sqrt(2 / math.pi), F32),
        "one": np.array(1.0, F32),
        "half": np.array(0.5, F32),
    }
    proto = make_model(nodes, {"x0": (F32, [4, 8])}, ["y"], inits)
    m, _ = run(proto, "gelu_fusion")
    assert ops(m) == ["Identity", "FastGelu"]
    feeds = {"x0": rand(4, 8, scale=3)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))
