"""MatMul/Gemm, pooling, normalizations, softmax and activations on oneDNN against CPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import onnxlite as ort

from .conftest import DNNL, check_op, graph_model, unoptimized, where

rng = np.random.default_rng(1)


def rand(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((5, 7), (7, 3)),
        ((2, 5, 7), (7, 3)),
        ((2, 3, 5, 7), (2, 3, 7, 4)),
        ((2, 1, 5, 7), (3, 7, 4)),
        ((64, 256), (256, 1000)),
    ],
)
@pytest.mark.parametrize("const_b", [True, False])
def test_matmul(a: tuple[int, ...], b: tuple[int, ...], const_b: bool) -> None:
    if const_b:
        check_op("MatMul", {"a": rand(*a)}, inits={"b": rand(*b)})
    else:
        check_op("MatMul", {"a": rand(*a), "b": rand(*b)})


def test_matmul_1d_stays_on_cpu() -> None:
    check_op("MatMul", {"a": rand(7), "b": rand(7, 3)}, on_dnnl=False)


@pytest.mark.parametrize(
    "attrs",
    [{}, {"transA": 1}, {"transB": 1}, {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}],
)
@pytest.mark.parametrize("c_shape", [None, (), (4,), (1, 4), (3, 4), (3, 1)])
def test_gemm(attrs: dict, c_shape: tuple[int, ...] | None) -> None:
    a = rand(5, 3) if attrs.get("transA") else rand(3, 5)
    b = rand(4, 5) if attrs.get("transB") else rand(5, 4)
    inits = {"b": b}
    if c_shape is not None:
        inits["c"] = rand(*c_shape)
    check_op("Gemm", {"a": a}, attrs, inits=inits)


@pytest.mark.parametrize(
    ("act", "extra"),
    [
        ("Relu", {}),
        # parameters an activation does not take are ignored (oneDNN's relu would read alpha
        # as a negative slope)
        ("Relu", {"activation_alpha": 0.5, "activation_beta": 0.7}),
        ("Tanh", {"activation_alpha": 0.5}),
        ("HardSigmoid", {"activation_beta": 0.4}),
        ("LeakyRelu", {"activation_alpha": 0.2}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("HardSigmoid", {"activation_alpha": 0.3, "activation_beta": 0.4}),
        ("Elu", {"activation_alpha": 0.7}),
    ],
)
def test_fused_gemm(act: str, extra: dict) -> None:
    attrs = {"activation": act, "transB": 1, "alpha": 0.5, **extra}
    check_op(
        "FusedGemm", {"a": rand(3, 5)}, attrs, inits={"b": rand(4, 5), "c": rand(4)}, domain="com.microsoft"
    )


def test_gemm_runtime_weights() -> None:
    check_op("Gemm", {"a": rand(3, 5), "b": rand(4, 5), "c": rand(4)}, {"transB": 1})


@pytest.mark.parametrize(
    ("op", "attrs"),
    [
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2]}),
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
        ("MaxPool", {"kernel_shape": [2, 3], "pads": [1, 0, 0, 1], "dilations": [2, 1]}),
        ("MaxPool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
        ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
        ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
        ("AveragePool", {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1}),
        ("GlobalAveragePool", {}),
        ("GlobalMaxPool", {}),
    ],
)
def test_pool(op: str, attrs: dict) -> None:
    check_op(op, {"x": rand(2, 5, 11, 12)}, attrs, opset=19)


def test_pool_1d_and_3d() -> None:
    check_op("MaxPool", {"x": rand(1, 3, 10)}, {"kernel_shape": [3]})
    check_op("AveragePool", {"x": rand(1, 3, 6, 7, 8)}, {"kernel_shape": [2, 2, 2]})


def test_maxpool_with_indices_stays_on_cpu() -> None:
    check_op("MaxPool", {"x": rand(1, 2, 6, 6)}, {"kernel_shape": [2, 2]}, n_out=2, on_dnnl=False)


@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 7), (2, 16, 7, 9), (1, 3, 2, 3, 4)])
def test_batchnorm(shape: tuple[int, ...]) -> None:
    c = shape[1]
    inits = {"s": rand(c), "b": rand(c), "m": rand(c), "v": np.abs(rand(c)) + 0.1}
    check_op("BatchNormalization", {"x": rand(*shape)}, {"epsilon": 1e-3}, inits=inits)


def test_batchnorm_training_stays_on_cpu() -> None:
    c = 3
    inits = {"s": rand(c), "b": rand(c), "m": rand(c), "v": np.abs(rand(c)) + 0.1}
    check_op(
        "BatchNormalization",
        {"x": rand(2, 3, 4)},
        {"training_mode": 1},
        inits=inits,
        n_out=3,
        on_dnnl=False,
        rel=1e-3,
    )


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize(("opset", "axis"), [(11, 1), (11, -1), (11, 0), (13, -1), (13, 1), (13, 0)])
def test_softmax(op: str, opset: int, axis: int) -> None:
    check_op(op, {"x": rand(3, 4, 5) * 3}, {"axis": axis}, opset=opset)


@pytest.mark.parametrize("axis", [-1, -2, 1])
@pytest.mark.parametrize("bias", [True, False])
def test_layernorm(axis: int, bias: bool) -> None:
    x = rand(2, 3, 4, 8)
    norm = x.shape[axis:]
    inits = {"s": rand(*norm)}
    if bias:
        inits["b"] = rand(*norm)
    check_op("LayerNormalization", {"x": x}, {"axis": axis, "epsilon": 1e-4}, inits=inits)


@pytest.mark.parametrize(
    ("op", "attrs"),
    [
        ("Relu", {}),
        ("LeakyRelu", {"alpha": 0.1}),
        ("Sigmoid", {}),
        ("Tanh", {}),
        ("Elu", {"alpha": 0.7}),
        ("Exp", {}),
        ("Abs", {}),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.6}),
        ("HardSwish", {}),
        ("Mish", {}),
    ],
)
def test_eltwise(op: str, attrs: dict) -> None:
    check_op(op, {"x": rand(2, 3, 17, 5) * 2}, attrs, opset=18)


def test_eltwise_positive_domain() -> None:
    x = np.abs(rand(4, 33)) + 0.01
    check_op("Log", {"x": x})
    check_op("Sqrt", {"x": x})


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate: str) -> None:
    check_op("Gelu", {"x": rand(3, 40)}, {"approximate": approximate}, opset=20)


def test_clip() -> None:
    x = rand(3, 8)
    check_op("Clip", {"x": x}, {"min": -0.5, "max": 0.5}, opset=6)
    check_op("Clip", {"x": x}, inits={"lo": np.float32(-0.3), "hi": np.float32(0.2)})
    check_op("Clip", {"x": x, "lo": np.float32(-0.1)}, inputs=["x", "lo"])
    check_op("Clip", {"x": x}, inputs=["x"])
    check_op("Clip", {"x": x}, inits={"lo": np.float32(0.3), "hi": np.float32(0.2)})


def test_lrn() -> None:
    check_op("LRN", {"x": rand(2, 10, 6, 7)}, {"size": 5, "alpha": 1e-2, "beta": 0.75, "bias": 2.0})
    check_op("LRN", {"x": rand(1, 6, 4, 4)}, {"size": 4}, on_dnnl=False)  # even size: CPU


def test_scalar_relu() -> None:
    check_op("Relu", {"x": np.array(-2.0, np.float32)})
    check_op("Relu", {"x": np.zeros((0, 3), np.float32)})


def test_softplus_stays_on_cpu() -> None:
    # oneDNN's soft_relu loses relative accuracy far left of zero (exp(x) underflows its log1p).
    check_op("Softplus", {"x": rand(3, 4) * 20}, on_dnnl=False)


def test_double_stays_on_cpu() -> None:
    check_op("Relu", {"x": rand(3, 4).astype(np.float64)}, on_dnnl=False)
    check_op(
        "MatMul", {"a": rand(3, 4).astype(np.float64), "b": rand(4, 2).astype(np.float64)}, on_dnnl=False
    )


@pytest.mark.parametrize("op", ["Add", "Sum"])
def test_add_in_blocked_layout_with_fused_relu(op: str) -> None:
    from onnx import helper

    from .conftest import assert_close, graph_model, run_both, where

    x = rand(1, 8, 6, 6)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c", "x2"], ["s0"]),
        helper.make_node("Mul", ["s0", "scale"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    inits = {"w": rand(16, 8, 3, 3), "scale": rand(1, 16, 1, 1)}
    model = graph_model(nodes, {"x": x, "x2": rand(1, 16, 6, 6)}, ["y"], inits)
    got, want, sd = run_both(model, {"x": x, "x2": rand(1, 16, 6, 6)})
    assert_close(got[0], want[0])
    assert set(where(sd).values()) == {"DnnlExecutionProvider"}


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((2, 3, 4), (2, 3, 4)),
        ((2, 3, 4), (3, 4)),
        ((3, 1), (2, 3, 4)),
        ((2, 3, 1), (1, 1, 4)),
        ((2, 8, 5, 5), (1, 8, 1, 1)),
        ((2, 3), ()),
    ],
)
def test_binary_broadcast(op: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    b = rand(*sb) if sb else np.array(1.5, np.float32)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, np.float32(0.5), b).astype(np.float32)
    check_op(op, {"a": rand(*sa), "b": b})


def test_sum_of_three_and_legacy_add() -> None:
    check_op("Sum", {"a": rand(2, 3), "b": rand(2, 3), "c": rand(1, 3)})
    check_op("Add", {"a": rand(2, 3), "b": rand(2, 3)}, opset=6)


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_concat(axis: int) -> None:
    check_op("Concat", {"a": rand(2, 3, 4, 5), "b": rand(2, 3, 4, 5), "c": rand(2, 3, 4, 5)}, {"axis": axis})


def test_concat_of_blocked_convs() -> None:
    from onnx import helper

    from .conftest import assert_close, graph_model, run_both

    x = rand(1, 8, 7, 7)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"]),
        helper.make_node("Conv", ["x", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Concat", ["c1", "c2", "p"], ["y"], axis=1),
    ]
    inits = {"w1": rand(24, 8, 1, 1), "w2": rand(20, 8, 3, 3)}
    model = graph_model(nodes, {"x": x}, ["y"], inits)
    got, want, _ = run_both(model, {"x": x})
    assert_close(got[0], want[0])


def test_empty_batch() -> None:
    x = np.zeros((0, 3, 8, 8), np.float32)
    check_op("MaxPool", {"x": x}, {"kernel_shape": [2, 2], "strides": [2, 2]})
    c = 3
    inits = {"s": rand(c), "b": rand(c), "m": rand(c), "v": np.abs(rand(c)) + 0.1}
    check_op("BatchNormalization", {"x": x}, inits=inits)


@pytest.mark.parametrize("tail", ["add", "add_bias_first", "biasgelu"])
def test_matmul_bias_epilogue_is_one_primitive(tail: str) -> None:
    from onnx import helper

    from .conftest import DNNL, assert_close, graph_model, run_both, where

    r = np.random.default_rng(4)
    x = r.standard_normal((2, 5, 24)).astype(np.float32)
    inits = {
        "w": r.standard_normal((24, 16)).astype(np.float32),
        "b": r.standard_normal(16).astype(np.float32),
    }
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"])]
    if tail == "biasgelu":
        nodes.append(helper.make_node("BiasGelu", ["m", "b"], ["y"], domain="com.microsoft"))
    else:
        nodes.append(helper.make_node("Add", ["b", "m"] if tail == "add_bias_first" else ["m", "b"], ["y"]))
    model = graph_model(nodes, {"x": x}, ["y"], inits, ms=tail == "biasgelu")
    got, want, sd = run_both(model, {"x": x})
    assert_close(got[0], want[0], 1e-5)
    assert where(sd)["y"] == DNNL
    mm = next(st.node for st in sd._plan.steps if st.node.op_type == "MatMul")
    assert "bias" in sd._providers[0]._plans[id(mm)].extra


def test_constant_weights_are_packed_at_session_creation_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper

    import onnxlite as ort
    from onnxlite.providers.dnnl._ops import MatMulKernel

    from .conftest import CPU, DNNL

    r = np.random.default_rng(6)
    w = r.standard_normal((32, 48)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 48])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())  # from a file: packed in place
    s = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=[DNNL, CPU])
    (step,) = s._plan.steps
    k = step.fn
    # packed before any run, and the plan holds a stand-in instead of the array
    assert isinstance(k, MatMulKernel) and k._adopted is not None and k._state is None
    assert len(k._adopted[5]) == 1
    assert s._model.graph.initializers["w"].strides == (0, 0)
    for n in (1, 7, 130):  # other row counts reuse the same packed weights
        x = r.standard_normal((n, 32)).astype(np.float32)
        np.testing.assert_allclose(s.run(None, {"x": x})[0], x @ w, rtol=1e-4, atol=1e-4)
    assert len(k._adopted[5]) == 1 and k._state is None


@pytest.mark.parametrize("alpha", [1.0, 0.125])
def test_fused_matmul_scaled_scores(alpha: float) -> None:
    r = np.random.default_rng(11)
    q = r.standard_normal((1, 4, 16, 8)).astype(np.float32)
    k = r.standard_normal((1, 4, 8, 16)).astype(np.float32)
    check_op("FusedMatMul", {"q": q, "k": k}, {"alpha": alpha}, domain="com.microsoft", rel=1e-5)


def test_fused_matmul_with_transposes_stays_on_cpu() -> None:
    r = np.random.default_rng(12)
    q = r.standard_normal((2, 16, 8)).astype(np.float32)
    k = r.standard_normal((2, 16, 8)).astype(np.float32)
    check_op("FusedMatMul", {"q": q, "k": k}, {"transB": 1}, domain="com.microsoft", on_dnnl=False)


def test_concat_of_a_pooled_map_and_convolution_outputs_in_different_layouts() -> None:
    import gc

    from onnx import helper

    from onnxlite.providers.dnnl._ops import ConcatKernel

    from .conftest import assert_close, graph_model, run_both

    rng = np.random.default_rng(5)
    inits = {
        "w0": rng.standard_normal((16, 3, 7, 7)).astype(np.float32) * 0.1,
        "w1": rng.standard_normal((32, 16, 1, 1)).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((8, 32, 3, 3)).astype(np.float32) * 0.1,
    }
    nodes = [  # a DenseNet block's start: stem, pool, then concat(pool, conv(...)) twice
        helper.make_node("Conv", ["x", "w0"], ["s"], strides=[2, 2], pads=[3, 3, 3, 3]),
        helper.make_node("MaxPool", ["s"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p", "w1"], ["b1"]),
        helper.make_node("Conv", ["b1", "w2"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["p", "c1"], ["k1"], axis=1),
        helper.make_node("Conv", ["k1", "wk"], ["b2"]),
        helper.make_node("Conv", ["b2", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["k1", "c2"], ["y"], axis=1),
    ]
    inits["wk"] = rng.standard_normal((32, 24, 1, 1)).astype(np.float32) * 0.1
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    got, want, _ = run_both(graph_model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert_close(got[0], want[0])
    impls = [e[0].impl for o in gc.get_objects() if isinstance(o, ConcatKernel) for e in o._cache.values()]
    assert impls and not any(i.startswith("ref") for i in impls)


@pytest.mark.parametrize(
    ("shape", "beta", "bias", "outputs", "on_dnnl"),
    [
        ((2, 5, 48), True, True, ["y0"], True),
        ((2, 5, 48), False, True, ["y0"], True),
        ((7, 32), True, False, ["y0", "", "", "y3"], True),  # the sum as the fourth output
        ((1, 4, 16), True, True, ["y0", "y1"], False),  # the mean: not on oneDNN
    ],
)
def test_skip_layer_normalization(shape, beta, bias, outputs, on_dnnl) -> None:  # type: ignore[no-untyped-def]
    from onnx import helper

    from .conftest import CPU, DNNL, assert_close, graph_model, run_both, where

    c = shape[-1]
    feeds = {"x": rand(*shape), "skip": rand(*shape)}
    inits = {"gamma": rand(c) + 1.0}
    names = ["x", "skip", "gamma"]
    if beta:
        inits["beta"] = rand(c)
    names.append("beta" if beta else "")
    if bias:
        inits["bias"] = rand(c)
        names.append("bias")
    node = helper.make_node("SkipLayerNormalization", names, outputs, domain="com.microsoft", epsilon=1e-5)
    model = graph_model([node], feeds, [o for o in outputs if o], inits, ms=True)
    got, want, sd = run_both(model, feeds)
    assert len(got) == len([o for o in outputs if o])
    for g, w in zip(got, want):
        assert_close(g, w, 1e-4)
    assert where(sd)["y0"] == (DNNL if on_dnnl else CPU)
    # the same against float64 arithmetic
    s = feeds["x"].astype(np.float64) + feeds["skip"] + (inits["bias"] if bias else 0)
    y = (s - s.mean(-1, keepdims=True)) / np.sqrt(s.var(-1, keepdims=True) + 1e-5) * inits["gamma"]
    y = y + (inits["beta"] if beta else 0)
    assert_close(got[0], y.astype(np.float32), 1e-4)
    if outputs[-1] == "y3":
        assert_close(got[-1], s.astype(np.float32), 1e-6)


def test_binary_and_concat_repeat_calls_take_their_hot_paths() -> None:
    from onnx import helper

    import onnxlite as ort
    from onnxlite.providers.dnnl._ops import BinaryKernel, ConcatKernel

    from .conftest import CPU, DNNL, assert_close, graph_model, unoptimized

    x = rand(1, 8, 6, 6)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w2"], ["c2"]),
        helper.make_node("Add", ["c1", "shift"], ["s"]),  # a per-channel constant
        helper.make_node("Add", ["s", "c2"], ["t"]),  # two tensors in one layout
        helper.make_node("Concat", ["t", "c2"], ["y"], axis=1),
    ]
    inits = {"w1": rand(16, 8, 3, 3), "w2": rand(16, 8, 1, 1), "shift": rand(1, 16, 1, 1)}
    model = graph_model(nodes, {"x": x}, ["y"], inits)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    data = model.SerializeToString()
    sd = ort.InferenceSession(data, sess_options=unoptimized(), providers=[DNNL, CPU])
    sc = ort.InferenceSession(data, sess_options=unoptimized(), providers=[CPU])
    for _ in range(3):  # the first call of each kernel sets up its hot path, the others take it
        x = rand(1, 8, 6, 6)
        assert_close(sd.run(None, {"x": x})[0], sc.run(None, {"x": x})[0])
    kernels = [st.fn for st in sd._plan.steps if isinstance(st.fn, (BinaryKernel, ConcatKernel))]
    assert len(kernels) == 3 and all(k._hot is not None for k in kernels)
    x = rand(2, 8, 6, 6)  # another batch: other layouts, the general path again
    assert_close(sd.run(None, {"x": x})[0], sc.run(None, {"x": x})[0])


@pytest.mark.parametrize(
    ("op", "attrs", "inits", "message"),
    [
        ("Softmax", {"axis": 2}, {}, "axis 2 is out of bounds"),
        ("LogSoftmax", {"axis": -3}, {}, "axis -3 is out of bounds"),
        ("Concat", {"axis": 4}, {}, "axis 4 is out of range"),
        ("LayerNormalization", {"axis": 3}, {"s": np.ones(3, np.float32)}, "axis 3 is out of range"),
    ],
)
def test_axis_out_of_range_is_left_to_the_cpu_kernel(op, attrs, inits, message) -> None:
    # oneDNN failed to build such primitives with an unrelated message (or, for Concat,
    # returned its one input); the CPU kernel names the bad axis
    feeds = {"x": rand(2, 3)}
    model = graph_model([onnx.helper.make_node(op, ["x", *inits], ["y0"], **attrs)], feeds, ["y0"], inits)
    providers = [DNNL, "CPUExecutionProvider"]
    sess = ort.InferenceSession(model.SerializeToString(), unoptimized(), providers=providers)
    assert where(sess)["y0"] == "CPUExecutionProvider"
    with pytest.raises(Exception, match=message):
        sess.run(None, feeds)


@pytest.mark.parametrize(
    ("op", "shape", "attrs", "inits", "want"),
    [
        # ONNX's formula gives an empty axis: a dilated window wider than the map
        ("Conv", (1, 4, 14, 5), {"dilations": [2, 2], "kernel_shape": [2, 4], "strides": [2, 2]},
         {"w": rand(8, 4, 2, 4)}, (1, 8, 6, 0)),
        ("MaxPool", (1, 3, 1, 1), {"kernel_shape": [2, 2], "strides": [2, 2]}, {}, (1, 3, 0, 0)),
    ],
)  # fmt: skip
def test_empty_outputs_agree_with_the_cpu_provider(op, shape, attrs, inits, want) -> None:
    # oneDNN failed ("output would be empty") where the numpy kernels return the empty array
    feeds = {"x": rand(*shape)}
    model = graph_model([onnx.helper.make_node(op, ["x", *inits], ["y0"], **attrs)], feeds, ["y0"], inits)
    sess = ort.InferenceSession(
        model.SerializeToString(), unoptimized(), providers=[DNNL, "CPUExecutionProvider"]
    )
    assert where(sess)["y0"] == DNNL
    (y,) = sess.run(None, feeds)
    assert y.shape == want


def test_global_pools_over_empty_maps_agree_with_the_cpu_provider() -> None:
    feeds = {"x": np.zeros((1, 3, 0, 2), np.float32)}
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        model = graph_model([onnx.helper.make_node(op, ["x"], ["y0"])], feeds, ["y0"])
        data = model.SerializeToString()
        results = []
        for providers in ([DNNL, "CPUExecutionProvider"], ["CPUExecutionProvider"]):
            try:
                results.append(
                    ("ok", ort.InferenceSession(data, unoptimized(), providers=providers).run(None, feeds)[0])
                )
            except ort.Fail as e:
                results.append(("error", str(e).split("Status Message: ")[1].split(" (inputs")[0]))
        (k1, v1), (k2, v2) = results
        assert k1 == k2
        if k1 == "ok":
            np.testing.assert_array_equal(v1, v2)  # NaN averages
            assert np.isnan(v1).all()
        else:
            assert v1 == v2
