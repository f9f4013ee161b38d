"""matmul_add_to_gemm: 2-D MatMul + Add (and Gemm + Add) become one Gemm."""

from __future__ import annotations

import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


@pytest.mark.parametrize("bias", [(5,), (1, 5), (3, 5), (3, 1), (1,)])
def test_matmul_add_becomes_gemm(bias: tuple[int, ...]) -> None:
    nodes = [mk("MatMul", ["x", "w"], ["h"]), mk("Add", ["c", "h"], ["y"])]
    proto = make_model(
        nodes, {"x": (F32, [3, 4])}, ["y"], {"w": rand(4, 5, seed=1), "c": rand(*bias, seed=2)}
    )
    m, _ = run(proto, "matmul_add_to_gemm")
    assert ops(m) == ["Gemm"] and m.graph.nodes[0].outputs == ["y"]
    feeds = {"x": rand(3, 4)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_gemm_without_c_absorbs_the_add() -> None:
    nodes = [mk("Gemm", ["x", "w"], ["h"], transB=1, alpha=0.5), mk("Add", ["h", "c"], ["y"])]
    proto = make_model(nodes, {"x": (F32, [3, 4])}, ["y"], {"w": rand(5, 4, seed=1), "c": rand(5, seed=2)})
    m, _ = run(proto, "matmul_add_to_gemm")
    assert ops(m) == ["Gemm"]
    check_same(proto, m, {"x": rand(3, 4)})


@pytest.mark.parametrize(
    ("x", "c"),
    [
        ([2, 3, 4], (5,)),  # 3-D MatMul: Gemm is 2-D only
        ([3, 4], (2, 3, 5)),  # the Add grows the result
        ([3, 4], (4, 5)),  # does not broadcast
        (["M", 4], ("M", 5)),  # cannot check the bias against a run-time dim
    ],
)
def test_left_alone(x: list, c: tuple) -> None:  # type: ignore[type-arg]
    nodes = [mk("MatMul", ["x", "w"], ["h"]), mk("Add", ["h", "c"], ["y"])]
    inputs = {"x": (F32, x)}
    inits = {"w": rand(4, 5)}
    if "M" in c:
        inputs["c"] = (F32, list(c))
    else:
        inits["c"] = rand(*c)
    proto = make_model(nodes, inputs, {"y": (F32, None)}, inits)
    assert run(proto, "matmul_add_to_gemm")[1] == []


def test_matmul_output_read_elsewhere_is_left_alone() -> None:
    nodes = [mk("MatMul", ["x", "w"], ["h"]), mk("Add", ["h", "c"], ["y"]), mk("Relu", ["h"], ["z"])]
    proto = make_model(nodes, {"x": (F32, [3, 4])}, ["y", "z"], {"w": rand(4, 5), "c": rand(5)})
    assert run(proto, "matmul_add_to_gemm")[1] == []
