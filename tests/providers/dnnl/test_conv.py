"""Conv and com.microsoft FusedConv on oneDNN against the CPU provider."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxlite as ort

from .conftest import (
    CPU,
    DNNL,
    assert_close,
    check_op,
    graph_model,
    run_both,
    tensor_info,
    unoptimized,
    where,
)

rng = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("x", "w", "attrs"),
    [
        ((2, 8, 17, 19), (16, 8, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((1, 8, 17, 19), (8, 1, 3, 3), {"group": 8, "strides": [2, 2], "pads": [0, 1, 1, 0]}),
        ((1, 6, 10, 11), (4, 3, 3, 3), {"group": 2, "dilations": [2, 1]}),
        ((1, 6, 10, 11), (4, 6, 3, 2), {"auto_pad": "SAME_UPPER", "strides": [2, 3]}),
        ((1, 6, 10, 11), (4, 6, 2, 2), {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
        ((1, 6, 10, 11), (4, 6, 3, 3), {"auto_pad": "VALID", "kernel_shape": [3, 3]}),
        ((1, 3, 9), (4, 3, 2), {"pads": [1, 0]}),
        ((1, 2, 5, 6, 7), (3, 2, 2, 3, 2), {"strides": [1, 2, 1]}),
        ((1, 3, 224, 224), (64, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv(x: tuple[int, ...], w: tuple[int, ...], attrs: dict, bias: bool) -> None:
    inits = {"w": rand(*w)}
    if bias:
        inits["b"] = rand(w[0])
    check_op("Conv", {"x": rand(*x)}, attrs, inits=inits)


def test_conv_weights_as_runtime_input() -> None:
    check_op("Conv", {"x": rand(1, 4, 8, 8), "w": rand(5, 4, 3, 3), "b": rand(5)}, {"pads": [1] * 4})


def test_conv_overridden_initializer_is_used() -> None:
    x, w = rand(1, 4, 8, 8), rand(5, 4, 3, 3)
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    model = graph_model([node], {"x": x}, ["y"], {"w": w})
    model.graph.input.append(tensor_info("w", w))  # an overridable initializer
    got1, want1, sd = run_both(model, {"x": x})
    assert_close(got1[0], want1[0])
    w2 = rand(5, 4, 3, 3)
    (got2,) = sd.run(None, {"x": x, "w": w2})
    want2 = run_both(model, {"x": x, "w": w2})[1]
    assert_close(got2, want2[0])
    assert not np.allclose(got2, got1[0])
    assert_close(sd.run(None, {"x": x})[0], want1[0])  # the initializer again


@pytest.mark.parametrize(
    ("act", "params"),
    [
        ("", None),
        ("Relu", None),
        ("Relu", [0.5]),  # a parameter Relu does not take: ignored, not a negative slope
        ("LeakyRelu", [0.2]),
        ("Sigmoid", None),
        ("Tanh", None),
        ("Clip", [-0.5, 0.7]),
        ("HardSigmoid", [0.3, 0.4]),
    ],
)
@pytest.mark.parametrize("with_z", [False, True])
def test_fused_conv(act: str, params: list[float] | None, with_z: bool) -> None:
    attrs: dict = {"activation": act, "pads": [1, 1, 1, 1]}
    if params is not None:
        attrs["activation_params"] = params
    feeds = {"x": rand(2, 8, 9, 9)}
    if with_z:
        feeds["z"] = rand(2, 16, 9, 9)
    check_op(
        "FusedConv",
        feeds,
        attrs,
        inits={"w": rand(16, 8, 3, 3), "b": rand(16)},
        inputs=["x", "w", "b", "z" if with_z else ""],
        domain="com.microsoft",
    )


def test_conv_relu_fused_and_relu_passes_through() -> None:
    x = rand(1, 4, 10, 10)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2"], ["c2"]),
        helper.make_node("LeakyRelu", ["c2"], ["y"], alpha=0.3),
    ]
    inits = {"w": rand(16, 4, 3, 3), "b": rand(16), "w2": rand(8, 16, 1, 1)}
    model = graph_model(nodes, {"x": x}, ["y"], inits)
    got, want, sd = run_both(model, {"x": x})
    assert_close(got[0], want[0])
    assert set(where(sd).values()) == {DNNL}
    dnnl = sd._providers[0]
    plans = [dnnl._plans[id(st.node)] for st in sd._plan.steps]
    assert [p.passthrough for p in plans] == [False, True, False, False, True]
    assert plans[0].post is not None and plans[0].keep_blocked  # Conv -> Relu -> MaxPool blocked
    assert not plans[3].keep_blocked  # the graph output comes back as a numpy array
    assert isinstance(got[0], np.ndarray)


def test_conv_output_used_twice_is_not_fused() -> None:
    x = rand(1, 4, 6, 6)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
    ]
    model = graph_model(nodes, {"x": x}, ["r", "t", "c"], {"w": rand(3, 4, 3, 3)})
    got, want, sd = run_both(model, {"x": x})
    for g, w in zip(got, want):
        assert_close(g, w)
    assert where(sd) == {"c": DNNL, "r": DNNL, "t": CPU}


def test_conv_declines_non_float() -> None:
    x = rng.integers(-3, 3, (1, 2, 5, 5)).astype(np.int32)
    w = rng.integers(-3, 3, (2, 2, 3, 3)).astype(np.int32)
    node = helper.make_node("Relu", ["x"], ["y"])
    model = graph_model([node], {"x": x}, ["y"])
    got, want, sd = run_both(model, {"x": x})
    assert where(sd)["y"] == CPU
    np.testing.assert_array_equal(got[0], want[0])
    del w


def test_conv_empty_batch() -> None:
    check_op(
        "Conv", {"x": np.zeros((0, 3, 8, 8), np.float32)}, {"strides": [2, 2]}, inits={"w": rand(4, 3, 3, 3)}
    )


def _residual_model(z: str, escape: bool):  # type: ignore[no-untyped-def]
    """relu(Conv(a) + z) fused by the optimizer into FusedConv with Z. z is "z", a conv of x read
    only by the sum (owned), or "a", the convolution's own input (shared); with ``escape`` a CPU
    node reads ``a`` too (so it is a plain array)."""
    rng = np.random.default_rng(3)
    inits = {k: rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2 for k in ("w1", "w2", "w3")}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w3"], ["z"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", z], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    outputs = ["y"]
    if escape:
        nodes.append(helper.make_node("ReduceSum", ["a"], ["ra"], keepdims=0))
        outputs.append("ra")
    x = rng.standard_normal((1, 8, 9, 9)).astype(np.float32)
    return graph_model(nodes, {"x": x}, outputs, inits), x


@pytest.mark.parametrize(("z", "escape"), [("z", False), ("a", False), ("a", True)])
def test_fused_conv_reads_z_without_copying_it_and_leaves_shared_z_intact(z: str, escape: bool) -> None:
    from onnxlite.providers.dnnl._conv import ConvKernel

    model, x = _residual_model(z, escape)
    data = model.SerializeToString()
    sd = ort.InferenceSession(data, providers=[DNNL, CPU])
    sc = ort.InferenceSession(data, sess_options=unoptimized(), providers=[CPU])
    fused = [st for st in sd._plan.steps if st.node.op_type == "FusedConv" and len(st.ins) == 4]
    assert len(fused) == 1
    fn = fused[0].fn
    # an owned Z is summed into in place; a shared one is read by a binary post-op (or, where
    # oneDNN has no fast form for its layout, summed into a copy)
    assert (getattr(fn, "__func__", None) is ConvKernel.into_z) == (z == "z")
    for i in range(3):  # new values each run: the later runs take the kernel's steady path
        xi = x * (1 + i) - i
        want = sc.run(None, {"x": xi})
        got = sd.run(None, {"x": xi})
        for g, w in zip(got, want):
            assert_close(g, w)
    kernel = getattr(fn, "__self__", fn)
    assert (kernel._hot_z is not None) == (not escape)  # an escaping `a` is a plain array
    if z == "a" and not escape:
        assert any(k[3] is not None and e is not None for k, e in fn._cache.items())


def test_grouped_conv_with_few_channels_per_group_between_convolutions() -> None:
    # 6 input channels per group: oneDNN's direct kernels decline it, its GEMM-based one runs
    # it, channels-last like its neighbours
    rng = np.random.default_rng(7)
    inits = {
        "w0": rng.standard_normal((24, 3, 3, 3)).astype(np.float32) * 0.2,
        "w1": rng.standard_normal((112, 6, 1, 1)).astype(np.float32) * 0.2,
        "w2": rng.standard_normal((112, 1, 3, 3)).astype(np.float32) * 0.2,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w1"], ["b"], group=4),
        helper.make_node("Relu", ["b"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["y"], group=112, pads=[1, 1, 1, 1]),
    ]
    x = rng.standard_normal((2, 3, 30, 30)).astype(np.float32)
    got, want, sess = run_both(graph_model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert_close(got[0], want[0])
    assert where(sess)["b"] == DNNL


@pytest.mark.parametrize("fed", [False, True])
def test_conv_clip_with_initializer_bounds(fed: bool) -> None:
    """Clip (opset 11+, bounds as inputs) after a convolution: bounds that are initializers no
    feed can change become the convolution's post-op; bounds a feed may set are read per run."""
    x = rand(1, 4, 8, 8)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["y"]),
    ]
    inits = {"w": rand(16, 4, 3, 3), "b": rand(16), "lo": np.float32(0.0), "hi": np.float32(0.6)}
    model = graph_model(nodes, {"x": x}, ["y"], inits)
    if fed:  # an initializer listed as a graph input: a feed may override it
        model.graph.input.append(helper.make_tensor_value_info("hi", TensorProto.FLOAT, []))
    got, want, sd = run_both(model, {"x": x})
    assert_close(got[0], want[0])
    dnnl = sd._providers[0]
    plans = [dnnl._plans[id(st.node)] for st in sd._plan.steps]
    assert [p.passthrough for p in plans] == [False, not fed]
    if fed:
        (y,) = sd.run(None, {"x": x, "hi": np.float32(0.3)})
        assert y.max() == np.float32(0.3)
