"""Pooling kernels against onnx.reference (and hand-computed values where it has none)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

RNG = np.random.default_rng(1)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


POOL_CASES = [
    {"kernel_shape": [3, 3]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [0, 1, 1, 0]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "dilations": [2, 2], "strides": [1, 1]},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"},
    {"kernel_shape": [2, 2], "auto_pad": "VALID", "strides": [2, 2]},
]


@pytest.mark.parametrize("attrs", POOL_CASES)
def test_max_pool(attrs):
    check_node("MaxPool", {"x": rand(2, 3, 7, 8)}, attrs)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("attrs", [a for a in POOL_CASES[:6] if "strides" in a or "dilations" in a])
def test_max_pool_indices(attrs, storage_order):
    # (the reference computes indices only for non-unit strides or dilations)
    x = rand(2, 3, 7, 8)
    attrs = {**attrs, "storage_order": storage_order}
    check_node("MaxPool", {"x": x}, attrs, outputs=("y", "i"))


@pytest.mark.parametrize("shape", [(2, 3, 9), (2, 3, 7, 8), (1, 2, 5, 6, 4)])
@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_indices_address_the_maxima(shape, storage_order):
    x = rand(*shape)
    nd = len(shape) - 2
    attrs = {"kernel_shape": [2] * nd, "pads": [1] * nd + [0] * nd, "storage_order": storage_order}
    y, i = run_onnxlite(node_model("MaxPool", {"x": x}, attrs, outputs=("y", "i")), {"x": x})
    assert i.dtype == np.int64 and i.shape == y.shape
    flat = x if not storage_order else np.ascontiguousarray(x.transpose(0, 1, *range(x.ndim - 1, 1, -1)))
    np.testing.assert_array_equal(flat.reshape(-1)[i], y)


def test_max_pool_same_lower_and_1d_3d():
    attrs = {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER"}
    check_node("MaxPool", {"x": rand(1, 2, 6, 6)}, attrs)
    check_node("MaxPool", {"x": rand(2, 3, 9)}, {"kernel_shape": [3], "strides": [2]})
    check_node("MaxPool", {"x": rand(1, 2, 5, 6, 4)}, {"kernel_shape": [2, 2, 2]})


def test_max_pool_int8_and_opset8():
    x = RNG.integers(-128, 128, (1, 2, 5, 5)).astype(np.int8)
    check_node("MaxPool", {"x": x}, {"kernel_shape": [2, 2], "strides": [2, 1]})
    # padding never wins, also for integers (the reference cannot pad integers)
    attrs = {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]}
    (y,) = run_onnxlite(node_model("MaxPool", {"x": x}, attrs), {"x": x})
    want = check_node("MaxPool", {"x": x.astype(np.float32)}, attrs)[0]
    np.testing.assert_array_equal(y, want.astype(np.int8))
    check_node("MaxPool", {"x": rand(1, 2, 5, 5)}, {"kernel_shape": [2, 2]}, opset=8)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("attrs", POOL_CASES)
def test_average_pool(attrs, count_include_pad):
    attrs = {**attrs, "count_include_pad": count_include_pad}
    check_node("AveragePool", {"x": rand(2, 3, 7, 8)}, attrs, opset=19)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pools_over_many_maps_in_blocks(op):
    # 2x45 maps of 40x40: blocks of some 80 maps, the last one partial, whose edge rows and
    # columns are each recomputed from the block's own maps
    from onnxlite.providers.cpu.kernels import pool

    per_map = 40 * 40
    assert pool._POOL_BLOCK // per_map < 90 and 90 % (pool._POOL_BLOCK // per_map)
    x = rand(2, 45, 40, 40)
    check_node(op, {"x": x}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1]})
    check_node(op, {"x": x}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (1, 3, 4, 6), (1, 2, 3, 4, 5), (2, 3, 9)])
def test_pools_whose_window_covers_the_map(op, shape):
    x = rand(*shape)
    check_node(op, {"x": x}, {"kernel_shape": list(shape[2:])}, rtol=1e-5, atol=1e-6)
    if op != "LpPool":
        check_node(op, {"x": x}, {"kernel_shape": list(shape[2:]), "strides": [3] * (len(shape) - 2)})
    if len(shape) == 4:  # (onnx.reference's MaxPool fails on padded 1-D and 3-D windows)
        # a whole-map window that also reaches into padding is not a plain reduction
        attrs = {"kernel_shape": list(shape[2:]), "pads": [1, 1, 1, 1]}
        check_node(op, {"x": x}, attrs if op != "AveragePool" else {**attrs, "count_include_pad": 1})


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(
    ("shape", "k"),
    [
        ((2, 3, 9, 8), (3, 3)),
        ((1, 4, 7, 11), (5, 3)),
        ((1, 2, 6, 5), (1, 5)),
        ((1, 3, 2, 3), (5, 5)),  # every position an edge: no tap combines whole runs
        ((1, 1, 1, 1), (3, 3)),
    ],
)
def test_size_keeping_pools(monkeypatch, op, shape, k):
    from onnxlite.providers.cpu.kernels import pool

    monkeypatch.setattr(pool, "_POOL_BLOCK", 2 * shape[2] * shape[3])  # blocks of two maps
    pads = [k[0] // 2, k[1] // 2] * 2
    attrs = {"kernel_shape": list(k), "pads": pads}
    if op == "AveragePool":
        x = rand(*shape)
        check_node(op, {"x": x}, attrs, rtol=1e-5, atol=1e-6)
        check_node(op, {"x": x}, {**attrs, "count_include_pad": 1}, rtol=1e-5, atol=1e-6)
        return
    # by hand: onnx.reference's MaxPool mis-sizes non-square windows and pads integers with NaN
    for x, low in ((rand(*shape), -np.inf), (RNG.integers(-128, 127, shape).astype(np.int8), -128)):
        (got,) = run_onnxlite(node_model(op, {"x": x}, attrs, opset=12), {"x": x})
        padded = np.pad(x, ((0, 0), (0, 0), (k[0] // 2,) * 2, (k[1] // 2,) * 2), constant_values=low)
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, _max_pool_by_hand(padded, k))


def test_average_pool_float16_and_3d():
    x = rand(1, 2, 6, 6).astype(np.float16)
    check_node("AveragePool", {"x": x}, {"kernel_shape": [3, 3]}, rtol=1e-3, atol=1e-3)
    x3 = rand(1, 2, 4, 5, 6)
    attrs = {"kernel_shape": [2, 2, 2], "pads": [1, 0, 1, 1, 1, 0], "count_include_pad": 1}
    check_node("AveragePool", {"x": x3}, attrs, opset=11)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(p):
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "p": p}
    check_node("LpPool", {"x": rand(1, 3, 7, 7)}, attrs, opset=18, rtol=1e-4)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 2)])
def test_global_pools(shape):
    x = rand(*shape)
    check_node("GlobalAveragePool", {"x": x}, rtol=1e-5)
    axes = tuple(range(2, x.ndim))
    for op, want in [
        ("GlobalMaxPool", x.max(axis=axes, keepdims=True)),
        ("GlobalLpPool", np.sqrt((x.astype(np.float64) ** 2).sum(axis=axes, keepdims=True))),
    ]:
        (y,) = run_onnxlite(node_model(op, {"x": x}), {"x": x})
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, want, rtol=1e-5)


def test_global_lp_pool_p1():
    x = rand(2, 3, 4)
    (y,) = run_onnxlite(node_model("GlobalLpPool", {"x": x}, {"p": 1}), {"x": x})
    np.testing.assert_allclose(y, np.abs(x).sum(axis=2, keepdims=True), rtol=1e-5)


def test_max_unpool_roundtrip():
    x = rand(1, 2, 4, 4)
    model = node_model("MaxPool", {"x": x}, {"kernel_shape": [2, 2], "strides": [2, 2]}, outputs=("y", "i"))
    y, i = run_onnxlite(model, {"x": x})
    inputs = {"y": y, "i": i}
    u = check_node("MaxUnpool", inputs, {"kernel_shape": [2, 2], "strides": [2, 2]})[0]
    assert u.shape == x.shape
    np.testing.assert_array_equal(
        u[u != 0], x[x == x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)).repeat(2, 2).repeat(2, 3)]
    )


def test_max_unpool_output_shape_of_original_input():
    # pooling a 5x5 input loses a row and column; indices still address the 5x5 input
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    model = node_model("MaxPool", {"x": x}, {"kernel_shape": [2, 2], "strides": [2, 2]}, outputs=("y", "i"))
    y, i = run_onnxlite(model, {"x": x})
    shape = np.array([1, 1, 5, 5], np.int64)
    um = node_model("MaxUnpool", {"y": y, "i": i, "s": shape}, {"kernel_shape": [2, 2], "strides": [2, 2]})
    (u,) = run_onnxlite(um, {"y": y, "i": i, "s": shape})
    want = np.zeros(25, np.float32)
    want[[6, 8, 16, 18]] = [6, 8, 16, 18]
    np.testing.assert_array_equal(u.reshape(-1), want)


def test_max_roi_pool():
    x = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6)
    rois = np.array([[0, 0, 0, 3, 3], [1, 2, 2, 5, 5], [0, 0, 0, 0, 0]], np.float32)
    model = node_model("MaxRoiPool", {"x": x, "rois": rois}, {"pooled_shape": [2, 2]})
    (y,) = run_onnxlite(model, {"x": x, "rois": rois})
    assert y.shape == (3, 1, 2, 2) and y.dtype == np.float32
    np.testing.assert_array_equal(y[0, 0], [[7, 9], [19, 21]])
    np.testing.assert_array_equal(y[1, 0], x[1, 0, [3, 5]][:, [3, 5]])
    np.testing.assert_array_equal(y[2, 0], [[0, 0], [0, 0]])


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("ctm", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align(mode, ctm, sampling_ratio):
    x = rand(2, 3, 10, 9)
    rois = np.array([[0, 0, 9, 9], [0.5, 1.2, 6.3, 4.1], [-2, -1, 3, 12], [4, 4, 4.2, 5]], np.float32)
    bi = np.array([0, 1, 1, 0], np.int64)
    attrs = {
        "mode": mode,
        "coordinate_transformation_mode": ctm,
        "output_height": 3,
        "output_width": 4,
        "sampling_ratio": sampling_ratio,
        "spatial_scale": 0.8,
    }
    check_node("RoiAlign", {"x": x, "rois": rois, "bi": bi}, attrs, opset=16, rtol=1e-4)


def test_roi_align_v10_uses_output_half_pixel():
    # v10 predates the attribute and behaves as the legacy output_half_pixel mode (the
    # reference applies v16's half_pixel default to it)
    inputs = {
        "x": rand(1, 2, 8, 8),
        "rois": np.array([[1, 1, 6, 5]], np.float32),
        "bi": np.zeros(1, np.int64),
    }
    (got,) = run_onnxlite(node_model("RoiAlign", inputs, {"output_height": 2}, opset=10), inputs)
    attrs = {"output_height": 2, "coordinate_transformation_mode": "output_half_pixel"}
    want = check_node("RoiAlign", inputs, attrs, opset=16)[0]
    np.testing.assert_array_equal(got, want)


def test_negative_begin_pads_crop() -> None:
    x = rand(1, 2, 9, 8)
    attrs = {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [-1, -2, 1, 0]}
    (got,) = run_onnxlite(node_model("MaxPool", {"x": x}, attrs), {"x": x})
    crop = np.pad(x[:, :, 1:, 2:], ((0, 0), (0, 0), (0, 1), (0, 0)), constant_values=-np.inf)
    np.testing.assert_array_equal(got, _max_pool_by_hand(crop, (3, 2), (2, 1)))


def _max_pool_by_hand(padded, k, s=(1, 1)):
    """The 2-D max pool of maps already padded: every window's maximum, every s-th window."""
    windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=(2, 3))
    return windows[:, :, :: s[0], :: s[1]].max(axis=(4, 5))


def test_begin_pad_wider_than_every_window() -> None:
    # a dilated window whose begin pad covers more than the single output's start (once an
    # IndexError): every output is an edge output
    x = rand(2, 3, 8, 5)
    attrs = {"kernel_shape": [4, 4], "strides": [3, 1], "pads": [1, 2, 3, 0], "dilations": [2, 2]}
    attrs["ceil_mode"] = 1
    (y,) = check_node("MaxPool", {"x": x}, attrs)
    assert y.shape == (2, 3, 3, 1)
