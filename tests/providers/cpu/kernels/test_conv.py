"""Conv family kernels against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

from onnxlite.providers.cpu import cblas

RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"pads": [1, 1, 1, 1]},
        {"pads": [0, 1, 2, 1], "strides": [2, 1]},
        {"strides": [2, 2], "dilations": [2, 1], "pads": [2, 1, 2, 1]},
        {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        {"auto_pad": "SAME_LOWER", "strides": [2, 3]},
        {"auto_pad": "VALID", "strides": [2, 2]},
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
    ],
)
def test_conv_2d(attrs):
    x, w, b = rand(2, 4, 9, 8), rand(6, 4, 3, 3), rand(6)
    check_node("Conv", {"x": x, "w": w, "b": b}, attrs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("c", "m", "group"), [(4, 6, 2), (6, 6, 6), (4, 8, 4), (8, 4, 2)])
def test_conv_grouped_and_depthwise(c, m, group):
    x, w = rand(2, c, 7, 7), rand(m, c // group, 3, 3)
    attrs = {"group": group, "pads": [1, 1, 1, 1], "strides": [2, 1]}
    check_node("Conv", {"x": x, "w": w}, attrs, rtol=1e-4, atol=1e-5)


def test_conv_1x1_is_gemm():
    x, w = rand(1, 16, 5, 6), rand(8, 16, 1, 1)
    check_node("Conv", {"x": x, "w": w}, {}, rtol=1e-4, atol=1e-5)
    check_node("Conv", {"x": x, "w": w}, {"strides": [2, 2]}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 11), (1, 2, 5, 6, 7)])
def test_conv_1d_3d(shape):
    nd = len(shape) - 2
    x, w = rand(*shape), rand(4, shape[1], *([3] * nd))
    attrs = {"pads": [1] * (2 * nd), "strides": [2] * nd, "dilations": [1] * nd}
    check_node("Conv", {"x": x, "w": w}, attrs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [7, 11, 22])
def test_conv_versions_and_dtypes(opset):
    x, w = rand(1, 2, 6, 6, dtype=np.float64), rand(3, 2, 2, 2, dtype=np.float64)
    check_node("Conv", {"x": x, "w": w}, {}, opset=opset)


def test_conv_float16_keeps_dtype():
    x, w = rand(1, 3, 8, 8, dtype=np.float16), rand(4, 3, 3, 3, dtype=np.float16)
    check_node("Conv", {"x": x, "w": w}, {"pads": [1, 1, 1, 1]}, rtol=1e-2, atol=1e-2)


def test_conv_empty_batch():
    x, w = np.zeros((0, 3, 5, 5), np.float32), rand(2, 3, 3, 3)
    (y,) = run_onnxlite(node_model("Conv", {"x": x, "w": w}), {"x": x, "w": w})
    assert y.shape == (0, 2, 3, 3) and y.dtype == np.float32


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"strides": [2, 2]},
        {"strides": [3, 2], "output_padding": [1, 1]},
        {"strides": [2, 2], "pads": [1, 0, 1, 2]},
        {"strides": [2, 2], "dilations": [2, 2]},
        {"strides": [3, 2], "output_shape": [10, 9]},
        {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
        {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
        {"group": 4, "strides": [2, 1]},
    ],
)
def test_conv_transpose(attrs):
    g = attrs.get("group", 1)
    # (the reference handles groups only with one output channel per group)
    mg = 4 // g if g > 1 else 3
    inputs = {"x": rand(2, 4, 3, 4), "w": rand(4, mg, 3, 3)}
    if g == 1:  # (and adds only the first bias value to every group)
        inputs["b"] = rand(mg)
    check_node("ConvTranspose", inputs, attrs, rtol=1e-4, atol=1e-5)


def test_conv_transpose_groups_match_split_groups():
    x, w, b = rand(2, 4, 3, 4), rand(4, 3, 2, 2), rand(6)
    attrs = {"group": 2, "strides": [2, 1], "dilations": [1, 2]}
    model = node_model("ConvTranspose", {"x": x, "w": w, "b": b}, attrs)
    (y,) = run_onnxlite(model, {"x": x, "w": w, "b": b})
    for g in range(2):
        xs, ws, bs = x[:, 2 * g : 2 * g + 2], w[2 * g : 2 * g + 2], b[3 * g : 3 * g + 3]
        attrs1 = {"strides": [2, 1], "dilations": [1, 2]}
        want = check_node("ConvTranspose", {"x": xs, "w": ws, "b": bs}, attrs1, rtol=1e-4)[0]
        np.testing.assert_allclose(y[:, 3 * g : 3 * g + 3], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 2, 5), (1, 2, 3, 4, 3)])
def test_conv_transpose_1d_3d(shape):
    nd = len(shape) - 2
    x, w = rand(*shape), rand(2, 3, *([2] * nd))
    check_node("ConvTranspose", {"x": x, "w": w}, {"strides": [2] * nd}, rtol=1e-4, atol=1e-5)


def test_conv_integer_per_channel_zero_points():
    x = RNG.integers(0, 256, (1, 3, 6, 6), dtype=np.uint8)
    w = RNG.integers(-128, 128, (4, 3, 3, 3), dtype=np.int8)
    xz, wz = np.array(7, np.uint8), np.array([1, -2, 0, 3], np.int8)
    inputs = {"x": x, "w": w, "xz": xz, "wz": wz}
    check_node("ConvInteger", inputs, {"pads": [1, 1, 1, 1]})


def test_qlinear_conv_per_channel():
    x = RNG.integers(0, 256, (1, 3, 6, 6), dtype=np.uint8)
    w = RNG.integers(-128, 128, (4, 3, 3, 3), dtype=np.int8)
    inputs = {
        "x": x,
        "xs": np.array(0.02, np.float32),
        "xz": np.array(128, np.uint8),
        "w": w,
        "ws": np.array([0.01, 0.02, 0.005, 0.03], np.float32),
        "wz": np.zeros(4, np.int8),
        "ys": np.array(0.5, np.float32),
        "yz": np.array(100, np.uint8),
        "b": RNG.integers(-500, 500, 4).astype(np.int32),
    }
    check_node("QLinearConv", inputs, {"pads": [1, 1, 1, 1], "strides": [2, 2]})


@pytest.mark.parametrize(("group", "offset_group", "with_mask"), [(1, 1, False), (2, 2, True), (1, 2, True)])
def test_deform_conv(group, offset_group, with_mask):
    x, w = rand(1, 4, 5, 5), rand(2, 4 // group, 2, 2)
    offset = rand(1, offset_group * 2 * 4, 5, 5) * 0.7
    inputs = {"x": x, "w": w, "offset": offset, "b": rand(2)}
    if with_mask:
        inputs["mask"] = RNG.random((1, offset_group * 4, 5, 5)).astype(np.float32)
    attrs = {"group": group, "offset_group": offset_group, "pads": [1, 1, 0, 0]}
    check_node("DeformConv", inputs, attrs, opset=19, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("attrs", [{}, {"strides": [2, 1]}, {"pads": [1, 0, 1, 2], "dilations": [1, 2]}])
def test_col2im(attrs):
    image, block = np.array([5, 6], np.int64), np.array([2, 3], np.int64)
    p = attrs.get("pads", [0, 0, 0, 0])
    d, s = attrs.get("dilations", [1, 1]), attrs.get("strides", [1, 1])
    nb = [(image[i] + p[i] + p[i + 2] - d[i] * (block[i] - 1) - 1) // s[i] + 1 for i in range(2)]
    x = rand(2, 3 * 6, int(nb[0] * nb[1]))
    check_node("Col2Im", {"x": x, "image_shape": image, "block_shape": block}, attrs, opset=18)


def test_conv_in_bands_of_rows_matches(monkeypatch):
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    monkeypatch.setattr(conv_mod, "_IM2COL_BYTES", 1)  # one output row per band
    x, w = rand(2, 4, 9, 7), rand(6, 2, 3, 2)
    attrs = {"group": 2, "strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [2, 1]}
    check_node("Conv", {"x": x, "w": w}, attrs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("group", [1, 2])
def test_conv_bands_on_workers_match_one_thread(monkeypatch, group):
    from onnxlite.providers.cpu import blas, workers
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    monkeypatch.setattr(blas, "MIN_SPLIT_MACS", 1)
    x, w = rand(1, 4, 11, 9), rand(6, 4 // group, 3, 3)
    args = (x, w, None, group, (1, 2), (1, 1), (1, 1), (1, 0), [11, 4])
    prev = workers.set_workers(1)
    try:
        one = conv_mod.conv_core(*args)
        workers.set_workers(3)
        three = conv_mod.conv_core(*args)
    finally:
        workers.set_workers(prev)
    np.testing.assert_array_equal(one, three)


@pytest.mark.parametrize(
    ("k", "stride", "dil", "pads", "hw"),
    [
        ((3, 3), (1, 1), (1, 1), (1, 1, 1, 1), (11, 10)),
        ((3, 3), (1, 1), (2, 1), (2, 0, 1, 2), (11, 10)),
        ((3, 3), (2, 2), (1, 1), (0, 0, 1, 1), (11, 10)),
        ((5, 3), (2, 1), (1, 2), (2, 1, 1, 2), (11, 10)),
        ((3, 3), (1, 1), (1, 1), (1, 1, 1, 1), (70, 66)),  # more than 4096 outputs per map
    ],
)
def test_depthwise_2d(k, stride, dil, pads, hw):
    x, w, b = rand(2, 5, *hw), rand(5, 1, *k), rand(5)
    attrs = {"group": 5, "strides": list(stride), "dilations": list(dil), "pads": list(pads)}
    check_node("Conv", {"x": x, "w": w, "b": b}, attrs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 4, 5000), (1, 3, 17, 16, 16)])
def test_depthwise_large_1d_3d(shape):
    nd = len(shape) - 2
    x, w = rand(*shape), rand(shape[1] * 2, 1, *([3] * nd))
    attrs = {"group": shape[1], "pads": [1] * (2 * nd)}
    check_node("Conv", {"x": x, "w": w}, attrs, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- Winograd F(2x2, 3x3)


def _im2col_core(monkeypatch, *args):
    """conv_core with the Winograd and per-tap paths switched off: the patch-matrix GEMM."""
    from onnxlite.providers.cpu.kernels import _direct, _winograd
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    with monkeypatch.context() as mp:
        mp.setattr(_winograd, "ENABLED", False)
        mp.setattr(_direct, "ENABLED", False)
        return conv_mod.conv_core(*args)


def _assert_near(got, want):
    # Winograd sums in another order: compare against the output's magnitude
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize(
    ("n", "c", "m", "hw", "pads"),
    [
        (1, 16, 16, (12, 12), (1, 1, 1, 1)),
        (2, 3, 5, (9, 7), (0, 0, 0, 0)),  # odd output sizes: the last tile row and column are cut
        (1, 1, 4, (6, 11), (0, 1, 2, 0)),  # C = 1, asymmetric pads
        (3, 8, 1, (13, 10), (2, 0, 1, 3)),  # M = 1
        (1, 20, 24, (31, 17), (1, 1, 1, 1)),
        (2, 4, 6, (3, 3), (3, 2, 2, 3)),  # pads wider than the image
        (1, 5, 7, (1, 2), (1, 1, 1, 1)),
        (1, 6, 3, (4, 4), (0, 0, 0, 0)),  # a single tile
    ],
)
def test_winograd_matches_im2col(monkeypatch, n, c, m, hw, pads):
    from onnxlite.providers.cpu.kernels import _winograd
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w = rand(n, c, *hw) * 3, rand(m, c, 3, 3)
    out, pb, pe = conv_mod.conv_geometry(x.shape[2:], (3, 3), (1, 1), (1, 1), pads, "NOTSET")
    with np.errstate(all="raise"):  # the planes' spare rows and columns hold finite values too
        got = _winograd.conv3x3(x, w, pb, pe, out)
    want = _im2col_core(monkeypatch, x, w, None, 1, (1, 1), (1, 1), pb, pe, out)
    _assert_near(got, want)
    # and a non-contiguous input
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    _assert_near(_winograd.conv3x3(xt, w, pb, pe, out), want)


def test_winograd_float64_reference_accuracy():
    from onnxlite.providers.cpu.kernels import _winograd
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w = rand(2, 64, 30, 29), rand(48, 64, 3, 3)
    args = ((1, 1), (1, 1), (1, 1), (1, 1), [30, 29])
    want = conv_mod.conv_core(x.astype(np.float64), w.astype(np.float64), None, 1, *args)
    got = _winograd.conv3x3(x, w, (1, 1), (1, 1), [30, 29])
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("m", [4, 50])  # 50: the workers share one transformed input
@pytest.mark.parametrize("v_bytes", [1, 3000, 40000])
def test_winograd_groups_of_images_and_bands_of_rows(monkeypatch, v_bytes, m):
    from onnxlite.providers.cpu.kernels import _winograd
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w = rand(3, 5, 15, 9), rand(m, 5, 3, 3)
    out, pb, pe = conv_mod.conv_geometry(x.shape[2:], (3, 3), (1, 1), (1, 1), (2, 1, 0, 1), "NOTSET")
    want = _im2col_core(monkeypatch, x, w, None, 1, (1, 1), (1, 1), pb, pe, out)
    monkeypatch.setattr(_winograd, "_V_BYTES", v_bytes)
    _assert_near(_winograd.conv3x3(x, w, pb, pe, out), want)
    monkeypatch.setattr(conv_mod.blas, "MIN_SPLIT_MACS", 1)
    for nw in (2, 3):  # whole images or bands of rows per worker
        prev = conv_mod.workers.set_workers(nw)
        try:
            _assert_near(_winograd.conv3x3(x, w, pb, pe, out), want)
            _assert_near(_winograd.conv3x3(x[:1], w, pb, pe, out), want[:1])
            _assert_near(_winograd.conv3x3(x[:2], w, pb, pe, out), want[:2])
        finally:
            conv_mod.workers.set_workers(prev)


def _spy_calls(monkeypatch, module, name):
    """The input shapes ``module.name`` is called with from now on."""
    calls = []
    real = getattr(module, name)

    def spy(*a):
        calls.append(a[0].shape)
        return real(*a)

    monkeypatch.setattr(module, name, spy)
    return calls


def _winograd_calls(monkeypatch):
    from onnxlite.providers.cpu.kernels import _direct, _winograd

    monkeypatch.setattr(_direct, "ENABLED", False)  # these shapes would otherwise run per tap
    return _spy_calls(monkeypatch, _winograd, "conv3x3")


@pytest.mark.parametrize(("n", "c", "m", "hw"), [(1, 32, 32, (30, 30)), (2, 64, 48, (29, 33))])
def test_conv_takes_winograd_path(monkeypatch, n, c, m, hw):
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w, b = rand(n, c, *hw), rand(m, c, 3, 3), rand(m)
    out, pb, pe = conv_mod.conv_geometry(hw, (3, 3), (1, 1), (1, 1), (1, 0, 1, 2), "NOTSET")
    args = (x, w, b, 1, (1, 1), (1, 1), pb, pe, out)
    want = _im2col_core(monkeypatch, *args)
    calls = _winograd_calls(monkeypatch)
    got = conv_mod.conv_core(*args)
    assert calls == [x.shape]
    _assert_near(got, want)
    check_node("Conv", {"x": x, "w": w, "b": b}, {"pads": [1, 1, 1, 1]}, rtol=1e-4, atol=1e-4)
    assert len(calls) == 2


def test_winograd_needs_at_most_as_many_outputs_as_inputs_without_split_workers() -> None:
    from onnxlite.providers.cpu import workers
    from onnxlite.providers.cpu.kernels import _winograd

    def applies(c: int, m: int) -> bool:
        x, w = rand(1, c, 28, 28), rand(m, c, 3, 3)
        w.flags.writeable = False
        return _winograd.applies(x, w, (1, 1), (1, 1), (1, 1), (1, 1), (28, 28))

    prev = workers.set_workers(1)  # BLAS's own threads (or one thread) run the products
    try:
        assert applies(128, 32) and applies(256, 256)
        assert not applies(32, 128) and not applies(128, 192) and not applies(64, 64)
        workers.set_workers(2)  # products and transforms split over onnxlite's workers
        assert applies(32, 128) and applies(64, 64)
    finally:
        workers.set_workers(prev)


def test_winograd_caches_the_filters_of_read_only_weights(monkeypatch):
    import gc

    from onnxlite.providers.cpu.kernels import _winograd
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w = rand(1, 8, 10, 10), rand(6, 8, 3, 3)
    out, pb, pe = conv_mod.conv_geometry(x.shape[2:], (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), "NOTSET")
    want = _im2col_core(monkeypatch, x, w, None, 1, (1, 1), (1, 1), pb, pe, out)
    _assert_near(_winograd.conv3x3(x, w, pb, pe, out), want)
    assert id(w) not in _winograd._U._cache  # weights that may change are transformed per call
    w.flags.writeable = False
    _assert_near(_winograd.conv3x3(x, w, pb, pe, out), want)
    u = _winograd._U._cache[id(w)][1]
    _assert_near(_winograd.conv3x3(x * 2, w, pb, pe, out), want * 2)
    assert _winograd._U._cache[id(w)][1] is u
    key = id(w)
    del w
    gc.collect()
    assert key not in _winograd._U._cache  # dropped with its weights: a new array may reuse the id
    w2 = rand(6, 8, 3, 3)
    w2.flags.writeable = False
    want2 = _im2col_core(monkeypatch, x, w2, None, 1, (1, 1), (1, 1), pb, pe, out)
    _assert_near(_winograd.conv3x3(x, w2, pb, pe, out), want2)


def test_winograd_on_small_maps_only_with_constant_weights(monkeypatch):
    from onnxlite.providers.cpu.kernels import _winograd
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w = rand(1, 96, 14, 14), rand(64, 96, 3, 3)
    args = ((1, 1), (1, 1), (1, 1), (1, 1), [14, 14])
    assert not _winograd.applies(x, w, *args)  # 7x7 tiles: the per-call filter transform loses
    w.flags.writeable = False
    assert _winograd.applies(x, w, *args)
    assert not _winograd.applies(x[:, :, :12, :12], w, *args[:4], [12, 12])  # 6x6 tiles
    calls = _winograd_calls(monkeypatch)
    want = _im2col_core(monkeypatch, x, w, None, 1, *args)
    _assert_near(conv_mod.conv_core(x, w, None, 1, *args), want)
    assert calls == [x.shape]


@pytest.mark.parametrize(
    ("dtype", "attrs"),
    [
        (np.float64, {"pads": [1, 1, 1, 1]}),
        (np.float32, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
        (np.float32, {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
        (np.float32, {"pads": [1, 1, 1, 1], "strides": [1, 2]}),
        (np.float32, {"pads": [1, 1, 1, 1], "group": 2}),
        (np.float16, {"pads": [1, 1, 1, 1], "dilations": [1, 2]}),
    ],
)
def test_conv_off_the_winograd_path(monkeypatch, dtype, attrs):
    calls = _winograd_calls(monkeypatch)
    x, w = rand(1, 32, 30, 30, dtype=dtype), rand(32, 32 // attrs.get("group", 1), 3, 3, dtype=dtype)
    tol = 1e-2 if dtype == np.float16 else 1e-4
    check_node("Conv", {"x": x, "w": w}, attrs, rtol=tol, atol=tol)
    assert calls == []


def test_winograd_applies_only_to_float32_3x3_stride_1():
    from onnxlite.providers.cpu.kernels import _winograd

    x, w = np.zeros((1, 128, 56, 56), np.float32), np.zeros((128, 128, 3, 3), np.float32)
    one, pads, out = (1, 1), (1, 1), (56, 56)
    assert _winograd.applies(x, w, one, one, pads, pads, out)
    assert not _winograd.applies(x.astype(np.float64), w.astype(np.float64), one, one, pads, pads, out)
    assert not _winograd.applies(x, w, (2, 2), one, pads, pads, (28, 28))
    assert not _winograd.applies(x, w, one, (2, 2), pads, pads, (54, 54))
    assert not _winograd.applies(x, np.zeros((64, 64, 5, 5), np.float32), one, one, pads, pads, (54, 54))
    assert not _winograd.applies(x, w, one, one, (-1, 1), pads, (53, 56))


def test_winograd_filters_are_released_when_the_weights_take_im2col():
    from onnxlite.providers.cpu import workers
    from onnxlite.providers.cpu.kernels import _winograd
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w = rand(1, 32, 28, 28), rand(64, 32, 3, 3)  # more outputs than inputs
    w.flags.writeable = False
    args = (x, w, None, 1, (1, 1), (1, 1), (1, 1), (1, 1), (28, 28))
    prev = workers.set_workers(2)  # split mode: Winograd, filters cached
    try:
        want = conv_mod.conv_core(*args)
        assert id(w) in _winograd._U._cache
        workers.set_workers(1)  # BLAS's own threads: im2col for this shape, filters dropped
        _assert_near(conv_mod.conv_core(*args), want)
        assert id(w) not in _winograd._U._cache
        workers.set_workers(2)  # and transformed again when the mode comes back
        _assert_near(conv_mod.conv_core(*args), want)
        assert id(w) in _winograd._U._cache
    finally:
        workers.set_workers(prev)


# --------------------------------------------------------------------------- per-tap products

needs_cblas = pytest.mark.skipif(
    not cblas.available(),
    reason="numpy's BLAS exposes no cblas_sgemm here; the per-tap path is off and others run",
)


def _direct_calls(monkeypatch):
    from onnxlite.providers.cpu.kernels import _direct

    return _spy_calls(monkeypatch, _direct, "conv_taps")


@needs_cblas
@pytest.mark.parametrize("workers_n", [1, 2])
@pytest.mark.parametrize(
    ("n", "c", "m", "hw", "k", "dil", "pads", "bias"),
    [
        (1, 64, 16, (28, 28), 3, 1, (1, 1, 1, 1), True),
        (2, 96, 24, (31, 29), 3, 2, (2, 1, 0, 3), False),
        (1, 80, 8, (30, 32), 5, 1, (2, 2, 2, 2), True),
        (1, 64, 40, (29, 28), (1, 2), 1, (0, 0, 0, 1), True),
    ],
)
def test_conv_takes_per_tap_path(monkeypatch, workers_n, n, c, m, hw, k, dil, pads, bias):
    from onnxlite.providers.cpu import workers
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    kk = (k, k) if isinstance(k, int) else k
    x, w = rand(n, c, *hw), rand(m, c, *kk)
    w.flags.writeable = False  # as initializers arrive: the tap matrices are cached
    b = rand(m) if bias else None
    out, pb, pe = conv_mod.conv_geometry(hw, kk, (1, 1), (dil, dil), pads, "NOTSET")
    args = (x, w, b, 1, (1, 1), (dil, dil), pb, pe, out)
    want = _im2col_core(monkeypatch, *args)
    calls = _direct_calls(monkeypatch)
    prev = workers.set_workers(workers_n)
    try:
        got = conv_mod.conv_core(*args)
        again = conv_mod.conv_core(*args)
    finally:
        workers.set_workers(prev)
    assert calls == [x.shape, x.shape]
    _assert_near(got, want)
    np.testing.assert_array_equal(again, got)


@needs_cblas
def test_per_tap_path_only_where_it_measured_faster(monkeypatch) -> None:
    from onnxlite.providers.cpu.kernels import _direct

    def applies(c, hw, s=(1, 1), dtype=np.float32, pads=(1, 1)):
        x, w = rand(1, c, hw, hw).astype(dtype), rand(32, c, 3, 3).astype(dtype)
        out = [(hw + 2 * pads[0] - 3) // s[0] + 1] * 2
        return _direct.applies(x, w, s, pads, pads, out)

    assert applies(64, 28) and applies(160, 56)
    assert not applies(32, 56)  # thin products
    assert not applies(256, 28)  # Winograd or the patch GEMM do better
    assert not applies(64, 14)  # small maps
    assert not applies(64, 56, s=(2, 2))
    assert not applies(64, 56, dtype=np.float64)
    assert not applies(64, 56, pads=(-1, -1))
    monkeypatch.setattr(cblas, "_sgemm", lambda: None)
    assert not applies(64, 56)  # no BLAS entry point: the numpy paths run


def test_conv_without_cblas_matches(monkeypatch) -> None:
    monkeypatch.setattr(cblas, "_sgemm", lambda: None)
    x, w, b = rand(1, 64, 28, 28), rand(8, 64, 3, 3), rand(8)
    check_node("Conv", {"x": x, "w": w, "b": b}, {"pads": [1, 1, 1, 1]}, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------ depthwise 2-D, channels-last


@pytest.mark.parametrize(
    ("n", "c", "hw", "k", "stride", "dil", "pads", "bias"),
    [
        (1, 128, (14, 14), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), True),
        (2, 136, (7, 9), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), False),  # batch, non-square
        (1, 160, (14, 14), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), True),  # strided: 7 x 7 outputs
        (1, 128, (12, 11), (3, 3), (1, 1), (2, 2), (2, 1, 0, 3), True),  # dilated, asymmetric pads
        (1, 144, (9, 9), (5, 3), (2, 1), (1, 1), (0, 0, 0, 0), True),  # no pads, mixed strides
        (1, 128, (4, 4), (3, 3), (1, 1), (1, 1), (3, 3, 3, 3), True),  # pads wider than the map
    ],
)
def test_depthwise_channels_last(monkeypatch, n, c, hw, k, stride, dil, pads, bias):
    from onnxlite.providers.cpu.kernels import _depthwise2d

    x, w = rand(n, c, *hw), rand(c, 1, *k)
    inputs = {"x": x, "w": w} | ({"b": rand(c)} if bias else {})
    calls = _spy_calls(monkeypatch, _depthwise2d, "conv")
    attrs = {"group": c, "strides": list(stride), "dilations": list(dil), "pads": list(pads)}
    check_node("Conv", inputs, attrs, rtol=1e-4, atol=1e-5)
    assert x.shape in calls  # the channels-last path ran


def test_depthwise_channels_last_only_where_it_pays(monkeypatch):
    from onnxlite.providers.cpu.kernels import _depthwise2d

    calls = _spy_calls(monkeypatch, _depthwise2d, "conv")
    for c, hw, stride in [(64, 14, 1), (128, 28, 1), (128, 28, 2)]:  # few channels, large maps
        x, w = rand(1, c, hw, hw), rand(c, 1, 3, 3)
        attrs = {"group": c, "strides": [stride, stride], "pads": [1, 1, 1, 1]}
        check_node("Conv", {"x": x, "w": w}, attrs, rtol=1e-4, atol=1e-5)
    x, w = rand(1, 128, 8, 8), rand(256, 1, 3, 3)  # two outputs per channel: not depthwise here
    check_node("Conv", {"x": x, "w": w}, {"group": 128, "pads": [1, 1, 1, 1]}, rtol=1e-4, atol=1e-5)
    assert calls == []


def test_depthwise_channels_last_rows_on_workers_match_one_thread(monkeypatch):
    from onnxlite.providers.cpu.kernels import _depthwise2d
    from onnxlite.providers.cpu.kernels import conv as conv_mod

    x, w, b = rand(2, 1024, 14, 14), rand(1024, 1, 3, 3), rand(1024)  # 200K outputs: split rows
    args = (x, w, b, 1024, (1, 1), (1, 1), (1, 1), (1, 1), (14, 14))
    with monkeypatch.context() as mp:
        mp.setattr(_depthwise2d, "ENABLED", False)
        want = conv_mod.conv_core(*args)
    rows = []
    real = conv_mod.workers.for_rows
    monkeypatch.setattr(
        conv_mod.workers,
        "for_rows",
        lambda n, size, fn: real(n, size, lambda a, e: rows.append((a, e)) or fn(a, e)),
    )
    prev = conv_mod.workers.set_workers(2)
    try:
        got = conv_mod.conv_core(*args)
    finally:
        conv_mod.workers.set_workers(prev)
    assert sorted(rows) == [(0, 7), (0, 7), (7, 14), (7, 14)]  # two bands per image
    _assert_near(got, want)


# ------------------------------------------------ depthwise 2-D on large maps, shifted passes


@pytest.mark.parametrize(
    ("n", "c", "hw", "k", "stride", "pads", "bias"),
    [
        (1, 8, (28, 28), (3, 3), 1, (1, 1, 1, 1), True),
        (2, 5, (30, 27), (3, 3), 1, (1, 1, 1, 1), False),  # batch, non-square
        (1, 7, (29, 31), (3, 3), 2, (1, 1, 1, 1), True),  # stride 2: four phases, odd sizes
        (2, 4, (33, 33), (5, 5), 2, (2, 2, 2, 2), True),  # 5x5
        (1, 3, (40, 26), (1, 3), 1, (0, 1, 0, 1), True),  # one-row kernel, pads on one axis
        (1, 6, (45, 45), (3, 3), 2, (2, 0, 0, 2), True),  # asymmetric pads
        (1, 9, (30, 30), (3, 5), 1, (0, 0, 0, 0), True),  # no pads
    ],
)
@pytest.mark.parametrize("block", [1 << 16, 700])  # one block of channels, or many
def test_depthwise_shifted_passes(monkeypatch, n, c, hw, k, stride, pads, bias, block):
    from onnxlite.providers.cpu.kernels import _depthwise_shift

    monkeypatch.setattr(_depthwise_shift, "_BLOCK", block)
    x, w = rand(n, c, *hw), rand(c, 1, *k)
    inputs = {"x": x, "w": w} | ({"b": rand(c)} if bias else {})
    calls = _spy_calls(monkeypatch, _depthwise_shift, "conv")
    attrs = {"group": c, "strides": [stride, stride], "pads": list(pads)}
    before = np.getbufsize()
    check_node("Conv", inputs, attrs, rtol=1e-4, atol=1e-5)
    assert x.shape in calls  # the shifted-pass path ran
    assert np.getbufsize() == before


def test_depthwise_shifted_passes_only_where_they_pay(monkeypatch):
    from onnxlite.providers.cpu.kernels import _depthwise_shift

    calls = _spy_calls(monkeypatch, _depthwise_shift, "conv")
    cases = [
        (rand(1, 8, 20, 20), rand(8, 1, 3, 3), {"pads": [1, 1, 1, 1]}),  # 20x20 outputs, stride 1
        (rand(1, 8, 24, 24), rand(8, 1, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),  # 12x12
        (rand(1, 8, 30, 30), rand(8, 1, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
        (rand(1, 8, 30, 30), rand(8, 1, 3, 3), {"pads": [1, 1, 1, 1], "strides": [1, 2]}),
        (rand(1, 8, 30, 30), rand(8, 1, 3, 3), {"pads": [1, 1, 1, 1], "strides": [3, 3]}),
        (rand(1, 8, 30, 30).astype(np.float64), rand(8, 1, 3, 3, dtype=np.float64), {"pads": [1, 1, 1, 1]}),
    ]
    for x, w, attrs in cases:
        check_node("Conv", {"x": x, "w": w}, {"group": 8, **attrs}, rtol=1e-4, atol=1e-5)
    x, w = rand(1, 8, 30, 30), rand(16, 1, 3, 3)  # two outputs per channel: not depthwise here
    check_node("Conv", {"x": x, "w": w}, {"group": 8, "pads": [1, 1, 1, 1]}, rtol=1e-4, atol=1e-5)
    assert calls == []


def test_depthwise_shifted_passes_leave_large_maps_to_the_workers():
    from onnxlite.providers.cpu.kernels import _depthwise_shift

    x, w = rand(1, 32, 112, 112), rand(32, 1, 3, 3)
    args = (x, w, 32, (1, 1), (1, 1), (1, 1), (1, 1), (112, 112))
    assert _depthwise_shift.applies(*args)
    prev = _depthwise_shift.workers.set_workers(2)
    try:
        assert not _depthwise_shift.applies(*args)  # the patch path splits its bands
        assert _depthwise_shift.applies(rand(1, 32, 28, 28), w, 32, (1, 1), (1, 1), (1, 1), (1, 1), (28, 28))
    finally:
        _depthwise_shift.workers.set_workers(prev)
