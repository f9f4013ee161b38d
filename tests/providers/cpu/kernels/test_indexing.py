"""Gather/Scatter family, TopK and Unique against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

I64 = np.int64
rng = np.random.default_rng(0)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_negative_indices(axis):
    x = f32(4, 5, 3)
    idx = np.array([[0, -1], [2, -2]], I64)
    check_node("Gather", {"x": x, "i": idx}, {"axis": axis})


def test_gather_scalar_index_and_int32():
    x = f32(4, 5)
    check_node("Gather", {"x": x, "i": np.array(-1, I64)}, {"axis": 1})
    check_node("Gather", {"x": x[0], "i": np.array(2, np.int32)})
    check_node("Gather", {"x": x, "i": np.zeros((0,), I64)})


def test_gather_out_of_range_raises():
    x, idx = f32(3), np.array([3], I64)
    with pytest.raises(Exception, match="out of"):
        run_onnxlite(node_model("Gather", {"x": x, "i": idx}), {"x": x, "i": idx})


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_elements(axis):
    x = f32(3, 4)
    idx = rng.integers(-3, 3, size=(2, 4)) if axis == 0 else rng.integers(-4, 4, size=(3, 2))
    check_node("GatherElements", {"x": x, "i": idx.astype(I64)}, {"axis": axis})


def test_gather_elements_negative_axis():
    x = f32(3, 4)
    idx = np.array([[0, -1], [3, 1], [-4, 2]], I64)
    ins = {"x": x, "i": idx}
    (y,) = run_onnxlite(node_model("GatherElements", ins, {"axis": -1}), ins)
    np.testing.assert_array_equal(y, np.take_along_axis(x, idx % 4, axis=1))


@pytest.mark.parametrize(
    ("shape", "idx", "batch_dims"),
    [
        ((2, 3, 4), [[0, 1], [-1, 2]], 0),
        ((2, 3, 4), [[[1], [0]], [[-2], [-1]]], 0),
        ((2, 3, 4), [[1], [2]], 1),
        ((2, 3, 4, 2), [[[1, 0], [2, 3]], [[0, 1], [-1, -1]]], 1),
        ((2, 3, 4), [[[1], [0]], [[2], [3]]], 2),
    ],
)
def test_gather_nd(shape, idx, batch_dims):
    x = f32(*shape)
    i = np.array(idx, I64)
    if batch_dims == 2:
        i = np.array([[[1], [0], [2]], [[3], [0], [1]]], I64)
    check_node("GatherND", {"x": x, "i": i}, {"batch_dims": batch_dims})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_nd(reduction):
    x = f32(4, 4, 2)
    idx = np.array([[0], [2], [-1]], I64) if reduction == "none" else np.array([[0], [2], [0]], I64)
    upd = f32(3, 4, 2)
    check_node("ScatterND", {"x": x, "i": idx, "u": upd}, {"reduction": reduction}, opset=18)
    check_node("ScatterND", {"x": x, "i": np.array([[1, 1], [-1, 0]], I64), "u": f32(2, 2)})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("axis", [0, -1])
def test_scatter_elements(reduction, axis):
    x = f32(3, 4)
    idx = np.array([[1, 0, -1], [0, 2, 1]], I64)
    upd = f32(2, 3)
    attrs = {"axis": axis, "reduction": reduction}
    check_node("ScatterElements", {"x": x, "i": idx, "u": upd}, attrs, opset=18)


def test_scatter_v9_matches_scatter_elements():
    ins = {"x": np.zeros((3, 3), np.float32), "i": np.array([[1, 0, -1], [0, 2, 1]], I64)}
    ins["u"] = f32(2, 3)
    (got,) = run_onnxlite(node_model("Scatter", ins, {"axis": 1}, opset=9), ins)
    (want,) = check_node("ScatterElements", ins, {"axis": 1}, opset=11)
    np.testing.assert_array_equal(got, want)


def test_scatter_does_not_mutate_input():
    x = f32(3)
    keep = x.copy()
    ins = {"x": x, "i": np.array([[0]], I64), "u": np.array([5.0], np.float32)}
    run_onnxlite(node_model("ScatterND", ins), ins)
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [0, -1])
def test_topk_ties_lower_index_first(largest, axis):
    x = np.array([[3, 1, 3, 2, 1], [5, 5, 5, 0, 5], [0, 1, 1, 1, 0]], np.float32)
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    (_, idx) = check_node(
        "TopK",
        {"x": x, "k": np.array([3], I64)},
        {"axis": axis, "largest": largest},
        outputs=("v", "i"),
    )
    assert idx.dtype == np.int64


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_partial_selection_path_with_ties(largest):
    # k much smaller than the axis takes the partition path; many ties sit at the k-th value.
    x = rng.integers(0, 20, size=(3, 1000)).astype(np.float32)
    ins = {"x": x, "k": np.array([40], I64)}
    check_node("TopK", ins, {"largest": largest}, outputs=("v", "i"))


def test_topk_unsigned_and_v1():
    x = np.array([[0, 255, 7, 255], [1, 2, 3, 4]], np.uint8)
    check_node("TopK", {"x": x, "k": np.array([2], I64)}, outputs=("v", "i"))
    check_node("TopK", {"x": f32(3, 6)}, {"k": 2}, opset=9, outputs=("v", "i"))


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("axis", [None, 0, -1])
def test_unique(sorted_, axis):
    x = np.array([[2, 1, 1], [3, 4, 3], [2, 1, 1]], np.int64)
    attrs = {"sorted": sorted_}
    if axis is None and not sorted_:
        x = x.reshape(-1)  # onnx.reference mis-handles unsorted unique of a 2-D input
    if axis is not None:
        attrs["axis"] = axis
    check_node("Unique", {"x": x}, attrs, outputs=("y", "i", "inv", "c"))


def test_unique_spec_example_unsorted():
    x = np.array([2, 1, 1, 3, 4, 3], np.float32)
    ins = {"x": x}
    model = node_model("Unique", ins, {"sorted": 0}, outputs=("y", "i", "inv", "c"))
    y, i, inv, c = run_onnxlite(model, ins)
    np.testing.assert_array_equal(y, [2, 1, 3, 4])
    np.testing.assert_array_equal(i, [0, 1, 3, 4])
    np.testing.assert_array_equal(inv, [0, 1, 1, 2, 3, 2])
    np.testing.assert_array_equal(c, [1, 2, 2, 1])


def test_tensor_scatter():
    past = f32(2, 3, 5, 4)
    upd = f32(2, 3, 2, 4)
    w = np.array([1, 3], I64)
    check_node("TensorScatter", {"p": past, "u": upd, "w": w}, {"mode": "linear"}, opset=24)
    w = np.array([4, 0], I64)
    check_node("TensorScatter", {"p": past, "u": upd, "w": w}, {"mode": "circular"}, opset=24)
    check_node("TensorScatter", {"p": past, "u": upd}, opset=24)
