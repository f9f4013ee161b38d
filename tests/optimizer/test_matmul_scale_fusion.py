"""matmul_scale_fusion: MatMul(a * s, b / t) -> com.microsoft FusedMatMul(a, b, alpha=s/t)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node
SCALES = {"s": np.array(0.35, F32), "t": np.array([2.5], F32), "v": rand(8, seed=9)}


def _feeds() -> dict[str, np.ndarray]:
    return {"q": rand(2, 3, 4, 8, seed=1), "k": rand(2, 3, 8, 5, seed=2)}


@pytest.mark.parametrize(
    ("scale_q", "scale_k", "alpha"),
    [
        (("Mul", ["q", "s"]), None, 0.35),
        (("Mul", ["s", "q"]), ("Div", ["k", "t"]), 0.35 / 2.5),
        (None, ("Mul", ["k", "t"]), 2.5),
    ],
)
def test_scalar_scales_become_alpha(scale_q, scale_k, alpha: float) -> None:  # type: ignore[no-untyped-def]
    nodes, a, b = [], "q", "k"
    if scale_q:
        nodes.append(mk(scale_q[0], scale_q[1], ["qs"]))
        a = "qs"
    if scale_k:
        nodes.append(mk(scale_k[0], scale_k[1], ["ks"]))
        b = "ks"
    nodes.append(mk("MatMul", [a, b], ["y"]))
    proto = make_model(nodes, {"q": (F32, [2, 3, 4, 8]), "k": (F32, [2, 3, 8, 5])}, ["y"], SCALES)
    m, changed = run(proto, "matmul_scale_fusion")
    assert changed == ["matmul_scale_fusion"] and ops(m) == ["FusedMatMul"]
    node = m.graph.nodes[0]
    assert node.inputs == ["q", "k"] and node.attrs["alpha"] == pytest.approx(alpha, rel=1e-6)
    check_same(proto, m, _feeds())
    check_ort(m, _feeds(), run_lite(proto, _feeds()))


@pytest.mark.parametrize("case", ["vector_scale", "scale_read_twice", "divided_constant", "rank1"])
def test_not_fused(case: str) -> None:
    if case == "vector_scale":
        nodes = [mk("Mul", ["k", "v"], ["ks"]), mk("MatMul", ["q", "ks"], ["y"])]  # per-column
        shapes = {"q": (F32, [2, 3, 4, 8]), "k": (F32, [2, 3, 8, 8])}
        outputs = ["y"]
    elif case == "scale_read_twice":
        nodes = [mk("Mul", ["q", "s"], ["qs"]), mk("MatMul", ["qs", "k"], ["y"])]
        shapes = {"q": (F32, [2, 3, 4, 8]), "k": (F32, [2, 3, 8, 5])}
        outputs = ["y", "qs"]
    elif case == "divided_constant":
        nodes = [mk("Div", ["s", "q"], ["qs"]), mk("MatMul", ["qs", "k"], ["y"])]  # s / q
        shapes = {"q": (F32, [2, 3, 4, 8]), "k": (F32, [2, 3, 8, 5])}
        outputs = ["y"]
    else:
        nodes = [mk("Mul", ["q", "s"], ["qs"]), mk("MatMul", ["qs", "k"], ["y"])]
        shapes = {"q": (F32, [8]), "k": (F32, [8, 5])}
        outputs = ["y"]
    proto = make_model(nodes, shapes, outputs, SCALES)
    _, changed = run(proto, "matmul_scale_fusion")
    assert changed == []
