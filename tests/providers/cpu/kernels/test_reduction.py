"""Reduce*, ArgMax/ArgMin and CumSum/CumProd against onnx.reference (and numpy for empty sets)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import assert_refused_at_build, check_node, node_model, run_onnxlite, spec_allows

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 4)).astype(np.float32)
POS = (np.abs(X) + 0.5).astype(np.float32)

REDUCE_OPS = [
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
]  # fmt: skip


def input_since(op):
    return 13 if op == "ReduceSum" else 18


def data_for(op):
    return POS if op == "ReduceLogSum" else X


def run(op, inputs, attrs=None, opset=21, **kw):
    return run_onnxlite(node_model(op, inputs, attrs, opset=opset, **kw), inputs)[0]


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("axes", [None, [1], [0, 2], [-1], [-3, -1]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_attribute(op, axes, keepdims):
    attrs = {"keepdims": keepdims}
    if axes is not None:
        attrs["axes"] = axes
    check_node(op, {"x": data_for(op)}, attrs, opset=input_since(op) - 1)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("axes", [[1], [0, 2], [-1], [2, 0]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_input(op, axes, keepdims):
    inputs = {"x": data_for(op), "axes": np.array(axes, np.int64)}
    check_node(op, inputs, {"keepdims": keepdims}, opset=input_since(op))


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("noop", [0, 1])
def test_reduce_no_axes(op, noop):
    x = data_for(op)
    attrs = {"noop_with_empty_axes": noop}
    y = check_node(op, {"x": x}, attrs, opset=input_since(op))[0]
    assert y.shape == (x.shape if noop else (1, 1, 1))
    empty_axes = {"x": x, "axes": np.array([], np.int64)}
    y = check_node(op, empty_axes, {**attrs, "keepdims": 0}, opset=input_since(op))[0]
    assert y.shape == (x.shape if noop else ())


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.float16, np.float64])
def test_reduce_keeps_dtype(op, dtype):
    x = rng.integers(0, 5, (3, 4)).astype(dtype)
    feeds = {"x": x, "axes": np.array([1], np.int64)}
    if not spec_allows(op, dtype, 18):
        assert_refused_at_build(node_model(op, feeds, opset=18))
        return
    y = check_node(op, feeds, opset=18)[0]
    assert y.dtype == dtype


def test_reduce_sum_int32_wraps_like_the_type():
    x = np.full((4,), 2**30, np.int32)
    y = run("ReduceSum", {"x": x, "axes": np.array([0], np.int64)}, {"keepdims": 0})
    assert y.dtype == np.int32 and y == 0


def test_reduce_mean_int_truncates():
    x = np.array([[1, 2], [-3, -4], [-1, 2]], np.int32)
    y = run("ReduceMean", {"x": x, "axes": np.array([1], np.int64)}, {"keepdims": 0})
    np.testing.assert_array_equal(y, [1, -3, 0])
    assert y.dtype == np.int32


def test_reduce_max_min_bool():
    x = np.array([[True, False], [False, False]])
    for op in ("ReduceMax", "ReduceMin"):
        check_node(op, {"x": x, "axes": np.array([1], np.int64)}, opset=20)


EMPTY_IDENTITY = {
    "ReduceSum": 0.0,
    "ReduceMean": np.nan,
    "ReduceMax": -np.inf,
    "ReduceMin": np.inf,
    "ReduceProd": 1.0,
    "ReduceL1": 0.0,
    "ReduceL2": 0.0,
    "ReduceLogSum": -np.inf,
    "ReduceLogSumExp": -np.inf,
    "ReduceSumSquare": 0.0,
}


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_empty_set_gives_identity(op, keepdims):
    x = np.zeros((2, 0, 4), np.float32)
    y = run(op, {"x": x, "axes": np.array([1], np.int64)}, {"keepdims": keepdims}, opset=18)
    assert y.shape == ((2, 1, 4) if keepdims else (2, 4)) and y.dtype == np.float32
    np.testing.assert_array_equal(y, np.full(y.shape, EMPTY_IDENTITY[op], np.float32))
    # reducing over a non-empty axis of an empty tensor stays empty
    y = run(op, {"x": x, "axes": np.array([2], np.int64)}, {"keepdims": keepdims}, opset=18)
    assert y.shape == ((2, 0, 1) if keepdims else (2, 0))


def test_reduce_empty_ints_and_bool():
    axes = np.array([0], np.int64)
    y = run("ReduceMax", {"x": np.zeros((0, 2), np.int32), "axes": axes}, opset=20)
    np.testing.assert_array_equal(y, [[np.iinfo(np.int32).min] * 2])
    y = run("ReduceMin", {"x": np.zeros((0, 2), np.uint8), "axes": axes}, opset=20)
    np.testing.assert_array_equal(y, [[255, 255]])
    y = run("ReduceMax", {"x": np.zeros((0, 2), bool), "axes": axes}, opset=20)
    np.testing.assert_array_equal(y, [[False, False]])


def test_reduce_log_sum_exp_infinities():
    x = np.array([[np.inf, 1.0], [-np.inf, -np.inf], [1000.0, 1000.0]], np.float32)
    y = run("ReduceLogSumExp", {"x": x, "axes": np.array([1], np.int64)}, {"keepdims": 0})
    np.testing.assert_allclose(y, [np.inf, -np.inf, 1000 + np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_reduce(op, axis, keepdims, last):
    x = rng.integers(0, 3, (3, 4)).astype(np.float32)  # many ties
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": last}
    y = check_node(op, {"x": x}, attrs, opset=13)[0]
    assert y.dtype == np.int64


def test_arg_reduce_default_axis_opset11():
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    check_node("ArgMax", {"x": x}, opset=11)
    check_node("ArgMin", {"x": x.astype(np.int32)}, {"keepdims": 0}, opset=11)


def test_arg_select_last_index_ties():
    x = np.array([[2, 1, 2, 1]], np.float32)
    y = run("ArgMax", {"x": x}, {"axis": 1, "select_last_index": 1})
    np.testing.assert_array_equal(y, [[2]])
    y = run("ArgMin", {"x": x}, {"axis": 1, "select_last_index": 1, "keepdims": 0})
    np.testing.assert_array_equal(y, [3])


@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_cumulative(op, axis, exclusive, reverse, dtype):
    x = rng.integers(1, 4, (3, 4)).astype(dtype)
    attrs = {"exclusive": exclusive, "reverse": reverse}
    opset = 26 if op == "CumProd" else 14
    y = check_node(op, {"x": x, "axis": np.array(axis, np.int32)}, attrs, opset=opset)[0]
    assert y.dtype == dtype and y.flags.c_contiguous


def test_cumsum_exclusive_reverse_values():
    x = np.array([1, 2, 3, 4], np.float64)
    axis = np.array(0, np.int64)
    y = run("CumSum", {"x": x, "axis": axis}, {"exclusive": 1, "reverse": 1}, opset=14)
    np.testing.assert_array_equal(y, [9, 7, 4, 0])
    y = run("CumProd", {"x": x, "axis": axis}, {"exclusive": 1}, opset=26)
    np.testing.assert_array_equal(y, [1, 1, 2, 6])


def test_cumsum_one_element_axis_and_empty():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = run("CumSum", {"x": x, "axis": np.array([1], np.int64)}, opset=11)
    np.testing.assert_array_equal(y, np.cumsum(x, axis=1))
    e = np.zeros((0, 3), np.float32)
    y = run("CumSum", {"x": e, "axis": np.array(0, np.int64)}, {"exclusive": 1}, opset=14)
    assert y.shape == (0, 3)
