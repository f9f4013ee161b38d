"""transpose_fold: Transpose pairs, constants, and Transposes absorbed by Gemm / FusedMatMul."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .helpers import F32, check_ort, check_same, make_model, ops, rand, run, run_lite

mk = helper.make_node


def test_pairs_cancel_or_compose() -> None:
    nodes = [
        mk("Transpose", ["x"], ["a"], perm=[0, 2, 3, 1]),
        mk("Transpose", ["a"], ["b"], perm=[0, 3, 1, 2]),  # cancels
        mk("Transpose", ["x"], ["c"], perm=[1, 0, 2, 3]),
        mk("Transpose", ["c"], ["d"], perm=[0, 1, 3, 2]),  # composes
        mk("Relu", ["b"], ["y"]),
        mk("Relu", ["d"], ["z"]),
    ]
    proto = make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, ["y", "z"])
    m, _ = run(proto, "transpose_fold", "dead_code")
    assert sorted(ops(m)) == ["Relu", "Relu", "Transpose"]
    assert next(n for n in m.graph.nodes if n.op_type == "Transpose").attrs["perm"] == [1, 0, 3, 2]
    check_same(proto, m, {"x": rand(2, 3, 4, 5)})


def test_transpose_of_a_constant_and_into_gemm() -> None:
    nodes = [
        mk("Transpose", ["w"], ["wt"], perm=[1, 0]),
        mk("Transpose", ["x"], ["xt"], perm=[1, 0]),
        mk("Gemm", ["xt", "wt", "c"], ["y"], transA=1),
    ]
    proto = make_model(nodes, {"x": (F32, [4, 3])}, ["y"], {"w": rand(5, 3, seed=1), "c": rand(5, seed=2)})
    m, _ = run(proto, "transpose_fold", "dead_code")
    assert ops(m) == ["Gemm"]
    gemm = m.graph.nodes[0]
    assert gemm.inputs[0] == "x" and gemm.attrs["transA"] == 0
    check_same(proto, m, {"x": rand(4, 3)})


@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_matmul_becomes_fused_matmul(which: str) -> None:
    nodes = [
        mk("Transpose", ["a"], ["at"], perm=[0, 2, 1]),
        mk("Transpose", ["b"], ["bt"], perm=[0, 2, 1]),
        mk(
            "MatMul",
            ["at" if which in ("a", "both") else "a2", "bt" if which in ("b", "both") else "b2"],
            ["y"],
        ),
    ]
    a_shape = [2, 4, 3] if which in ("a", "both") else [2, 3, 4]
    b_shape = [2, 5, 4] if which in ("b", "both") else [2, 4, 5]
    inputs = {"a": (F32, a_shape), "b": (F32, b_shape), "a2": (F32, [2, 3, 4]), "b2": (F32, [2, 4, 5])}
    proto = make_model(nodes, inputs, ["y"])
    m, _ = run(proto, "transpose_fold", "dead_code")
    assert ops(m) == ["FusedMatMul"] and m.opsets["com.microsoft"] == 1
    feeds = {"a": rand(*a_shape), "b": rand(*b_shape, seed=1), "a2": rand(2, 3, 4), "b2": rand(2, 4, 5)}
    check_same(proto, m, feeds)
    check_ort(m, feeds, run_lite(proto, feeds))


def test_batch_permutations_stay_transposes() -> None:
    nodes = [mk("Transpose", ["a"], ["at"], perm=[1, 0, 2]), mk("MatMul", ["at", "b"], ["y"])]
    proto = make_model(nodes, {"a": (F32, [3, 2, 4]), "b": (F32, [2, 4, 5])}, ["y"])
    m, changed = run(proto, "transpose_fold")
    assert changed == [] and ops(m) == ["Transpose", "MatMul"]


def test_batched_transpose_through_reshapes_becomes_one_transpose() -> None:
    # torch's decomposition of k.transpose(-1, -2) on [B, N, S, D]: merge, transpose, split
    nodes = [
        mk("Reshape", ["x", "merge"], ["m"]),
        mk("Transpose", ["m"], ["t"], perm=[0, 2, 1]),
        mk("Reshape", ["t", "split"], ["y"]),
    ]
    inits = {"merge": np.array([-1, 6, 8]), "split": np.array([-1, 4, 8, 6])}
    proto = make_model(nodes, {"x": (F32, ["B", 4, 6, 8])}, {"y": (F32, ["B", 4, 8, 6])}, inits)
    m, _ = run(proto, "transpose_fold", "dead_code")
    assert ops(m) == ["Transpose"] and m.graph.nodes[0].attrs["perm"] == [0, 1, 3, 2]
    check_same(proto, m, {"x": rand(3, 4, 6, 8)})


def test_reshapes_that_move_data_are_not_a_transpose() -> None:
    nodes = [
        mk("Reshape", ["x", "merge"], ["m"]),
        mk("Transpose", ["m"], ["t"], perm=[0, 2, 1]),
        mk("Reshape", ["t", "split"], ["y"]),
    ]
    inits = {"merge": np.array([-1, 6, 8]), "split": np.array([-1, 2, 8, 12])}
    proto = make_model(nodes, {"x": (F32, ["B", 4, 6, 8])}, {"y": (F32, None)}, inits)
    assert run(proto, "transpose_fold")[1] == []
