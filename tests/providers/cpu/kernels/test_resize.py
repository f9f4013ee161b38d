"""Resize / Upsample / GridSample / AffineGrid against onnx.reference (and hand-worked values
for the versions the reference does not implement)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

rng = np.random.default_rng(0)
X = rng.standard_normal((1, 2, 5, 7)).astype(np.float32)
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _resize(attrs, scales=None, sizes=None, roi=None, x=X, opset=19, **kw):
    ins = {"X": x}
    names = ["X", ""]
    if roi is not None:
        ins["roi"] = np.asarray(roi, np.float32)
        names[1] = "roi"
    if scales is not None:
        ins["scales"] = np.asarray(scales, np.float32)
        names.append("scales")
    else:
        ins["sizes"] = np.asarray(sizes, np.int64)
        names += ["", "sizes"]
    if opset < 13:  # roi and scales are required inputs before opset 13: empty tensors stand for none
        for i, name in ((1, "roi"), (2, "scales")):
            if names[i] == "":
                ins[name] = np.zeros(0, np.float32)
                names[i] = name
    return check_node("Resize", ins, attrs, opset=opset, input_names=names, **{**TOL, **kw})[0]


CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("scales", [[1, 1, 2.0, 1.5], [1, 1, 0.6, 0.5], [1, 1, 1.3, 0.75]])
def test_resize_scales(mode, ctm, scales):
    if ctm == "half_pixel_symmetric":
        # The shared sets land source coordinates on integers up to float noise (2 + 4e-16), where
        # onnx.reference picks its tap window and its weights inconsistently.
        scales = [1, 1, 1.6, 0.7]
    _resize({"mode": mode, "coordinate_transformation_mode": ctm}, scales=scales)


def test_resize_half_pixel_symmetric_integer_hits():
    x = np.arange(35, dtype=np.float32).reshape(1, 1, 5, 7)
    s = np.array([1, 1, 1, 0.5], np.float32)
    attrs = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel_symmetric"}
    out = run_onnxlite(
        node_model("Resize", {"X": x, "s": s}, attrs, opset=19, input_names=["X", "", "s"]),
        {"X": x, "s": s},
    )[0]
    # out width 3 of a 3.5 target: offset 0.5, so sources are exactly 1, 3, 5.
    np.testing.assert_array_equal(out, x[..., [1, 3, 5]])


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("sizes", [[1, 2, 9, 4], [1, 2, 2, 11]])
@pytest.mark.parametrize("opset", [11, 13, 18])
def test_resize_sizes(mode, sizes, opset):
    _resize({"mode": mode}, sizes=sizes, opset=opset)


@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("ctm", ["half_pixel", "asymmetric", "align_corners"])
def test_resize_nearest_modes(nearest_mode, ctm):
    attrs = {"mode": "nearest", "nearest_mode": nearest_mode, "coordinate_transformation_mode": ctm}
    _resize(attrs, sizes=[1, 2, 8, 12])


@pytest.mark.parametrize("a", [-0.5, -0.75])
@pytest.mark.parametrize("scales", [[1, 1, 0.8, 0.6], [1, 1, 1.7, 2.0]])
def test_resize_cubic_exclude_outside(a, scales):
    _resize({"mode": "cubic", "cubic_coeff_a": a, "exclude_outside": 1}, scales=scales)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 0.5, 0.3], [1, 1, 0.8, 0.45], [1, 1, 1.5, 0.7]])
def test_resize_antialias(mode, scales):
    _resize({"mode": mode, "antialias": 1}, scales=scales)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_tf_crop_and_resize(mode):
    attrs = {
        "mode": mode,
        "coordinate_transformation_mode": "tf_crop_and_resize",
        "extrapolation_value": 7.0,
    }
    _resize(attrs, sizes=[1, 2, 6, 4], roi=[0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2])


def test_resize_axes_and_keep_aspect_ratio():
    for policy in ["stretch", "not_larger", "not_smaller"]:
        attrs = {"mode": "linear", "axes": [3, 2], "keep_aspect_ratio_policy": policy}
        _resize(attrs, sizes=[4, 9])
    want = _resize({"mode": "cubic", "axes": [3]}, scales=[1.6])
    s = np.array([1.6], np.float32)
    model = node_model(
        "Resize",
        {"X": X, "s": s},
        {"mode": "cubic", "axes": [-1]},
        opset=19,
        input_names=["X", "", "s"],
    )
    np.testing.assert_array_equal(run_onnxlite(model, {"X": X, "s": s})[0], want)
    attrs = {
        "mode": "linear",
        "axes": [2, 3],
        "coordinate_transformation_mode": "tf_crop_and_resize",
    }
    _resize(attrs, sizes=[3, 3], roi=[0.1, 0.2, 0.7, 0.9])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_integer_input(dtype, mode):
    x = rng.integers(0, 100, (1, 1, 4, 5)).astype(dtype)
    out = _resize({"mode": mode}, scales=[1, 1, 1.5, 0.7], x=x, rtol=0, atol=1)
    assert out.dtype == dtype


def test_resize_float16_and_double():
    for dt in (np.float16, np.float64):
        out = _resize({"mode": "cubic"}, scales=[1, 1, 1.4, 0.8], x=X.astype(dt), rtol=2e-3)
        assert out.dtype == dt


def test_resize_empty_batch():
    x = np.zeros((0, 2, 3, 3), np.float32)
    s = np.array([1, 1, 2, 2], np.float32)
    model = node_model("Resize", {"X": x, "s": s}, {"mode": "linear"}, opset=19, input_names=["X", "", "s"])
    assert run_onnxlite(model, {"X": x, "s": s})[0].shape == (0, 2, 6, 6)


def _run(op, ins, attrs, opset, names=None):
    return run_onnxlite(node_model(op, ins, attrs, opset=opset, input_names=names), ins)[0]


SMALL = np.array([[[[1, 2], [3, 4]]]], np.float32)
LINEAR_2X = np.array([[[[1, 1.5, 2, 2], [2, 2.5, 3, 3], [3, 3.5, 4, 4], [3, 3.5, 4, 4]]]], np.float32)


def test_resize_10_asymmetric():
    s = np.array([1, 1, 2, 2], np.float32)
    out = _run("Resize", {"X": SMALL, "s": s}, {"mode": "linear"}, 10)
    np.testing.assert_allclose(out, LINEAR_2X)
    x = np.arange(35, dtype=np.float32).reshape(1, 1, 5, 7)
    s = np.array([1, 1, 0.6, 0.5], np.float32)
    out = _run("Resize", {"X": x, "s": s}, {"mode": "nearest"}, 10)
    # Downsampling nearest picks ceil(y / scale) (onnxruntime's Resize-10 rule).
    np.testing.assert_array_equal(out, x[:, :, [0, 2, 4]][:, :, :, [0, 2, 4]])


def test_upsample_versions():
    s = np.array([1, 1, 2, 3], np.float32)
    check_node("Upsample", {"X": SMALL, "s": s}, {"mode": "nearest"}, opset=9)
    want = SMALL.repeat(2, axis=2).repeat(3, axis=3)
    np.testing.assert_array_equal(_run("Upsample", {"X": SMALL}, {"scales": list(s)}, 7), want)
    out = _run("Upsample", {"X": SMALL}, {"mode": "linear", "scales": [1.0, 1.0, 2.0, 2.0]}, 7)
    np.testing.assert_allclose(out, LINEAR_2X)


def _grid(shape, lo=-1.3, hi=1.3):
    g = rng.uniform(lo, hi, shape).astype(np.float32)
    g.reshape(-1)[:6] = [-1, 1, 0, -0.5, 0.5, 1.25]  # borders and rounding ties
    return g


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_2d(mode, padding_mode, align_corners):
    ins = {"X": rng.standard_normal((2, 3, 4, 5)).astype(np.float32), "G": _grid((2, 3, 4, 2))}
    attrs = {"mode": mode, "padding_mode": padding_mode, "align_corners": align_corners}
    check_node("GridSample", ins, attrs, opset=20, **TOL)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflection"])
def test_grid_sample_3d(mode, padding_mode):
    ins = {
        "X": rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float32),
        "G": _grid((1, 2, 3, 2, 3)),
    }
    check_node("GridSample", ins, {"mode": mode, "padding_mode": padding_mode}, opset=22, **TOL)


def test_grid_sample_16_mode_names():
    ins = {"X": rng.standard_normal((1, 2, 4, 4)).astype(np.float32), "G": _grid((1, 3, 3, 2))}
    for old, new in [("bilinear", "linear"), ("bicubic", "cubic"), ("nearest", "nearest")]:
        got = _run("GridSample", ins, {"mode": old}, 16)
        want = check_node("GridSample", ins, {"mode": new}, opset=20)[0]
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("dims", [(4, 5), (2, 3, 4)])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid(dims, align_corners):
    k = len(dims)
    ins = {
        "theta": rng.standard_normal((2, k, k + 1)).astype(np.float32),
        "size": np.array([2, 3, *dims], np.int64),
    }
    check_node("AffineGrid", ins, {"align_corners": align_corners}, opset=20, **TOL)


def test_crop_and_resize_coordinates_in_float32():
    # the ROI's float32 values give exact coordinates (1.0, 2.0, ...) in float32 arithmetic, as
    # onnxruntime and onnx.reference compute them; in float64 they came out 1.000000015 and
    # nearest_mode "ceil" took the next element
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 1, 6)
    roi = [0, 0, 0, 0.2, 1, 1, 1, 0.8]
    attrs = {"mode": "nearest", "nearest_mode": "ceil"}
    attrs["coordinate_transformation_mode"] = "tf_crop_and_resize"
    out = _resize(attrs, scales=[1, 1, 1, 1.3], roi=roi, x=x, opset=13)
    np.testing.assert_array_equal(out.ravel(), [1, 2, 2, 3, 3, 4, 4])
