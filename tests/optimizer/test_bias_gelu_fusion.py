"""bias_gelu_fusion: Add(bias) + Gelu -> BiasGelu; Add(bias) + FastGelu -> FastGelu(x, bias)."""

from __future__ import annotations

import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


@pytest.mark.parametrize(
    ("gelu", "domain", "attrs", "fused", "opset"),
    [
        ("Gelu", "com.microsoft", {}, "BiasGelu", 17),
        ("FastGelu", "com.microsoft", {}, "FastGelu", 17),
        ("Gelu", "", {}, "BiasGelu", 20),
        ("Gelu", "", {"approximate": "tanh"}, "FastGelu", 20),
    ],
)
def test_bias_add_is_absorbed(gelu: str, domain: str, attrs: dict, fused: str, opset: int) -> None:  # type: ignore[type-arg]
    nodes = [
        mk("MatMul", ["x", "w"], ["h"]),
        mk("Add", ["h", "bias"], ["hb"]),
        mk(gelu, ["hb"], ["y"], domain=domain or None, **attrs),
    ]
    proto = make_model(
        nodes,
        {"x": (F32, ["B", 8])},
        {"y": (F32, ["B", 16])},
        {"w": rand(8, 16), "bias": rand(16, seed=1)},
        opset=opset,
        ms=True,
    )
    m, _ = run(proto, "bias_gelu_fusion")
    assert ops(m) == ["MatMul", fused] and m.graph.nodes[1].inputs == ["h", "bias"]
    feeds = {"x": rand(3, 8, seed=2, scale=2)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_broadcasting_bias_is_left_alone() -> None:
    nodes = [mk("Add", ["x", "bias"], ["hb"]), mk("Gelu", ["hb"], ["y"], domain="com.microsoft")]
    for x_shape, bias in (([3, 1], rand(16)), ([3, 16], rand(1, 16))):
        proto = make_model(nodes, {"x": (F32, x_shape)}, {"y": (F32, [3, 16])}, {"bias": bias}, ms=True)
        assert run(proto, "bias_gelu_fusion")[1] == []
