"""ai.onnx.preview.training optimizer kernels against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite, run_reference

DOMAIN = "ai.onnx.preview.training"
RNG = np.random.default_rng(7)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def optimizer_inputs(groups: list[str], n: int, t: int, dtype=np.float32):
    inputs = {"R": np.array(0.1, dtype=np.float32), "T": np.array(t, dtype=np.int64)}
    shapes = [(3,), (2, 4), (1,)][:n]
    for g in groups:
        for i, shape in enumerate(shapes):
            v = rand(*shape, dtype=dtype)
            inputs[f"{g}{i}"] = np.abs(v) if g == "H" else v
    return inputs


def outs(groups: list[str], n: int):
    return tuple(f"{g}{i}_new" for g in groups for i in range(n))


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("t", [0, 5])
def test_adagrad(n, t):
    inputs = optimizer_inputs(["X", "G", "H"], n, t)
    attrs = {"decay_factor": 0.1, "epsilon": 1e-5, "norm_coefficient": 0.01}
    check_node("Adagrad", inputs, attrs, outputs=outs(["X", "H"], n), domain=DOMAIN, rtol=1e-5, atol=1e-6)


def check_adam(inputs, attrs, n):
    # onnx.reference returns float64 for a single float32 group (numpy 2 promotion), so compare
    # values against it and check the spec's dtype separately.
    m = node_model("Adam", inputs, attrs, outputs=outs(["X", "V", "H"], n), domain=DOMAIN)
    got, want = run_onnxlite(m, inputs), run_reference(m, inputs)
    assert len(got) == len(want) == 3 * n
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("t", [0, 3])
@pytest.mark.parametrize("post", [0.0, 0.05])
def test_adam(n, t, post):
    inputs = optimizer_inputs(["X", "G", "V", "H"], n, t)
    attrs = {"alpha": 0.8, "beta": 0.95, "norm_coefficient": 0.001, "norm_coefficient_post": post}
    check_adam(inputs, attrs, n)


def test_adam_defaults():
    check_adam(optimizer_inputs(["X", "G", "V", "H"], 1, 1), {}, 1)


@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("t", [0, 2])
def test_momentum(mode, n, t):
    inputs = optimizer_inputs(["X", "G", "V"], n, t)
    attrs = {"alpha": 0.9, "beta": 0.5, "mode": mode, "norm_coefficient": 0.01}
    check_node("Momentum", inputs, attrs, outputs=outs(["X", "V"], n), domain=DOMAIN, rtol=1e-5)


def test_double_tensors_keep_dtype():
    inputs = optimizer_inputs(["X", "G", "H"], 2, 1, dtype=np.float64)
    m = node_model("Adagrad", inputs, {}, outputs=outs(["X", "H"], 2), domain=DOMAIN)
    got = run_onnxlite(m, inputs)
    assert [g.dtype for g in got] == [np.float64] * 4


def test_inputs_not_mutated():
    inputs = optimizer_inputs(["X", "G", "V"], 1, 1)
    before = {k: v.copy() for k, v in inputs.items()}
    attrs = {"alpha": 0.9, "beta": 0.5, "mode": "standard", "norm_coefficient": 0.0}
    m = node_model("Momentum", inputs, attrs, outputs=outs(["X", "V"], 1), domain=DOMAIN)
    run_onnxlite(m, inputs)
    for k, v in before.items():
        np.testing.assert_array_equal(inputs[k], v)


def test_momentum_requires_attributes():
    from onnxlite.providers.cpu.kernels.training import momentum

    with pytest.raises(ValueError):
        momentum(np.float32(0.1), np.int64(1), rand(2), rand(2), rand(2), alpha=0.9)


# --- Gradient ------------------------------------------------------------------------------------

F64 = np.float64


def gradient_model(nodes, inputs, xs, y, zs=(), extra_outputs=(), opset=17):
    """A model computing ``y`` from ``inputs`` ({name: array}) with ``nodes`` and a Gradient
    node over it; outputs: one gradient per x, then ``extra_outputs``."""
    from onnx import helper, numpy_helper

    more = {"zs": list(zs)} if zs else {}
    grad = helper.make_node(
        "Gradient", [*xs, *zs], [f"d_{x}" for x in xs], domain=DOMAIN, xs=list(xs), y=y, **more
    )
    vi = [
        helper.make_tensor_value_info(n, numpy_helper.from_array(v).data_type, v.shape)
        for n, v in inputs.items()
    ]
    outs = [helper.make_tensor_value_info(f"d_{x}", 0, None) for x in xs]
    outs += [helper.make_tensor_value_info(o, 0, None) for o in extra_outputs]
    g = helper.make_graph([*nodes, grad], "g", vi, outs)
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(g, opset_imports=opsets, ir_version=8)


def numeric_gradients(nodes, inputs, xs, y, opset=17, eps=1e-6):
    """Central differences of sum(y) in float64, y computed by onnxlite without the Gradient."""
    from onnx import helper, numpy_helper

    import onnxlite

    vi = [
        helper.make_tensor_value_info(n, numpy_helper.from_array(v).data_type, v.shape)
        for n, v in inputs.items()
    ]
    g = helper.make_graph(nodes, "f", vi, [helper.make_tensor_value_info(y, 0, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    sess = onnxlite.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])

    def f(feeds):
        return float(np.sum(sess.run(None, feeds)[0]))

    out = []
    for x in xs:
        d = np.zeros(inputs[x].shape)
        for i in np.ndindex(inputs[x].shape):
            hi, lo = dict(inputs), dict(inputs)
            hi[x], lo[x] = inputs[x].copy(), inputs[x].copy()
            hi[x][i] += eps
            lo[x][i] -= eps
            d[i] = (f(hi) - f(lo)) / (2 * eps)
        out.append(d)
    return out


def r64(*shape, positive=False):
    v = RNG.standard_normal(shape)
    return np.abs(v) + 0.5 if positive else v


def mk(op, ins, outs, **attrs):
    from onnx import helper

    return helper.make_node(op, ins, outs, **attrs)


def const(name, value):
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


GRADIENT_CASES = {
    "broadcast_arith": (
        [mk("Add", ["a", "b"], ["s"]), mk("Mul", ["s", "c"], ["m"]), mk("Sub", ["m", "b"], ["d"]),
         mk("Div", ["d", "e"], ["y"])],
        {"a": r64(2, 1, 3), "b": r64(4, 1), "c": r64(3), "e": r64(1, 4, 3, positive=True)},
    ),
    "unary_chain": (
        [mk("Sigmoid", ["a"], ["t1"]), mk("Tanh", ["t1"], ["t2"]), mk("Exp", ["t2"], ["t3"]),
         mk("Log", ["t3"], ["t4"]), mk("Sqrt", ["p"], ["t5"]), mk("Mul", ["t4", "t5"], ["t6"]),
         mk("Reciprocal", ["p"], ["t7"]), mk("Add", ["t6", "t7"], ["t8"]), mk("Erf", ["t8"], ["t9"]),
         mk("Softplus", ["t9"], ["t10"]), mk("Neg", ["t10"], ["t11"]), mk("Abs", ["t11"], ["y"])],
        {"a": r64(3, 4), "p": r64(3, 4, positive=True)},
    ),
    "activations": (
        [mk("Relu", ["a"], ["r"]), mk("LeakyRelu", ["a"], ["l"], alpha=0.2),
         mk("Sum", ["r", "l", "b"], ["s"]), mk("Mean", ["s", "a"], ["y"])],
        {"a": r64(2, 5), "b": r64(5)},
    ),
    "pow": ([mk("Pow", ["p", "q"], ["y"])], {"p": r64(2, 3, positive=True), "q": r64(3)}),
    "matmul_batched": ([mk("MatMul", ["a", "b"], ["y"])], {"a": r64(2, 3, 4), "b": r64(4, 5)}),
    "matmul_vectors": (
        [mk("MatMul", ["v", "b"], ["t"]), mk("MatMul", ["b2", "t"], ["y"])],
        {"v": r64(4), "b": r64(4, 5), "b2": r64(3, 5)},
    ),
    "gemm": (
        [mk("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0)],
        {"a": r64(4, 3), "b": r64(5, 4), "c": r64(5)},
    ),
    "shapes": (
        [mk("Transpose", ["a"], ["t"], perm=[2, 0, 1]), const("shape", np.array([4, -1], np.int64)),
         mk("Reshape", ["t", "shape"], ["r"]), mk("Flatten", ["r"], ["f"], axis=0),
         const("ax", np.array([0], np.int64)), mk("Squeeze", ["f", "ax"], ["s"]),
         mk("Unsqueeze", ["s", "ax"], ["u"]), const("eshape", np.array([3, 1, 24], np.int64)),
         mk("Expand", ["u", "eshape"], ["e"]), mk("Mul", ["e", "w"], ["y"])],
        {"a": r64(2, 3, 4), "w": r64(3, 1, 24)},
    ),
    "reductions": (
        [const("axes", np.array([1], np.int64)), mk("ReduceSum", ["a", "axes"], ["s"], keepdims=0),
         mk("ReduceMean", ["a"], ["m"], axes=[1]), mk("Mul", ["s", "m"], ["y"])],
        {"a": r64(2, 3, 4)},
    ),
    "softmax": (
        [mk("Softmax", ["a"], ["s"], axis=1), mk("LogSoftmax", ["a"], ["l"]), mk("Mul", ["s", "w"], ["sw"]),
         mk("Mul", ["l", "w"], ["lw"]), mk("Add", ["sw", "lw"], ["y"])],
        {"a": r64(2, 3, 4), "w": r64(2, 3, 4)},
    ),
    "select": (
        [mk("Concat", ["a", "b"], ["c"], axis=1), const("lo", np.array(-0.5)), const("hi", np.array(0.7)),
         mk("Clip", ["c", "lo", "hi"], ["k"]), mk("Greater", ["c", "zero"], ["cond"]),
         mk("Where", ["cond", "k", "c"], ["w"]), mk("Mul", ["w", "c"], ["y"])],
        {"a": r64(2, 2), "b": r64(2, 3), "zero": np.zeros(1)},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(GRADIENT_CASES))
def test_gradient_matches_central_differences(case):
    nodes, inputs = GRADIENT_CASES[case]
    zs = [n for n in inputs if n == "zero"]  # fed, not differentiated
    xs = [n for n in inputs if n not in zs]
    got = run_onnxlite(gradient_model(nodes, inputs, xs, "y", zs=zs), inputs)
    want = numeric_gradients(nodes, inputs, xs, "y")
    for x, g, w in zip(xs, got, want):
        assert g.shape == inputs[x].shape and g.dtype == F64, x
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=x)


def test_gradient_through_casts_keeps_each_inputs_dtype():
    nodes = [mk("Cast", ["a"], ["a64"], to=11), mk("Mul", ["a64", "b"], ["y"])]
    inputs = {"a": r64(2, 3).astype(np.float32), "b": r64(2, 3)}
    da, db = run_onnxlite(gradient_model(nodes, inputs, ["a", "b"], "y"), inputs)
    assert da.dtype == np.float32 and db.dtype == F64
    np.testing.assert_allclose(da, inputs["b"].astype(np.float32))
    np.testing.assert_allclose(db, inputs["a"].astype(F64))


def test_gradient_softmax_before_opset_13_coerces_to_2d():
    nodes = [mk("Softmax", ["a"], ["s"], axis=1), mk("Mul", ["s", "w"], ["y"])]
    inputs = {"a": r64(2, 3, 4), "w": r64(2, 3, 4)}
    got = run_onnxlite(gradient_model(nodes, inputs, ["a"], "y", zs=["w"], opset=11), inputs)
    np.testing.assert_allclose(
        got[0], numeric_gradients(nodes, inputs, ["a"], "y", opset=11)[0], rtol=1e-5, atol=1e-7
    )


def test_gradient_with_respect_to_an_intermediate_and_unused_inputs():
    # y = h * z with h = a + b, differentiated with respect to h, z and a: the function starts
    # at h, so a does not reach y through it (zeros)
    nodes = [mk("Add", ["a", "b"], ["h"]), mk("Mul", ["h", "z"], ["y"])]
    h, z = r64(3), r64(3)
    grad = mk("Gradient", ["h", "z", "a"], ["dh", "dz", "da"], domain=DOMAIN, xs=["h", "z", "a"], y="y")
    from onnx import helper

    vi = [helper.make_tensor_value_info(n, 11, [3]) for n in ("a", "b", "z")]
    g = helper.make_graph(
        [*nodes, grad], "g", vi, [helper.make_tensor_value_info(n, 0, None) for n in ("dh", "dz", "da")]
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])
    feeds = {"a": h, "b": np.zeros(3), "z": z}  # h = a + b = h
    dh, dz, da = run_onnxlite(m, feeds)
    np.testing.assert_allclose(dh, z)
    np.testing.assert_allclose(dz, h)
    np.testing.assert_array_equal(da, np.zeros(3))


def test_gradient_of_a_value_used_twice_and_a_non_differentiable_path():
    # y = x * x + sum(reshape(x, shape(x)))  (Shape carries no gradient)
    nodes = [
        mk("Mul", ["x", "x"], ["sq"]),
        mk("Shape", ["x"], ["shp"]),
        mk("Reshape", ["x", "shp"], ["r"]),
        mk("Add", ["sq", "r"], ["y"]),
    ]
    x = r64(2, 3)
    (dx,) = run_onnxlite(gradient_model(nodes, {"x": x}, ["x"], "y"), {"x": x})
    np.testing.assert_allclose(dx, 2 * x + 1)


def test_gradient_survives_the_optimizer_and_a_saved_optimized_model(tmp_path):
    import onnxlite

    # y is not a model output: to the optimizer its nodes are dead
    nodes = [mk("MatMul", ["a", "b"], ["t"]), mk("Add", ["t", "c"], ["u"]), mk("Relu", ["u"], ["y"])]
    inputs = {"a": r64(2, 3), "b": r64(3, 4), "c": r64(4)}
    model = gradient_model(nodes, inputs, ["a", "b", "c"], "y")
    want = numeric_gradients(nodes, inputs, ["a", "b", "c"], "y")
    so = onnxlite.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    got = onnxlite.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        None, inputs
    )
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)
    import onnx

    saved = onnx.load(str(tmp_path / "opt.onnx"))
    grad = next(n for n in saved.graph.node if n.op_type == "Gradient")
    assert sorted(a.name for a in grad.attribute) == ["xs", "y"]  # no execution details written
    # the optimizer left the function's nodes alone (no Gemm, no fused Relu): the saved model
    # still defines it, and gives the same gradients
    assert [n.op_type for n in saved.graph.node] == ["MatMul", "Add", "Relu", "Gradient"]
    again = onnxlite.InferenceSession(str(tmp_path / "opt.onnx"), providers=["CPUExecutionProvider"])
    for g, w in zip(again.run(None, inputs), got):
        np.testing.assert_array_equal(g, w)


def test_gradient_of_float32_scalars_as_the_suite_feeds_them():
    nodes = [mk("Add", ["a", "b"], ["c"]), mk("Mul", ["c", "a"], ["d"])]
    a, b = np.array(1.5, np.float32), np.array(2.0, np.float32)
    da, db = run_onnxlite(
        gradient_model(nodes, {"a": a, "b": b}, ["a", "b"], "d", extra_outputs=["d"]), {"a": a, "b": b}
    )[:2]
    assert da.dtype == np.float32 and da.shape == ()
    np.testing.assert_allclose([da, db], [2 * a + b, a])


def test_gradient_without_a_derivative_names_the_node():
    import onnxlite

    nodes = [mk("Cos", ["a"], ["y"], name="my_cos")]
    model = gradient_model(nodes, {"a": r64(3)}, ["a"], "y")
    with pytest.raises(Exception, match="no derivative for node 'my_cos' \\(Cos\\)"):
        onnxlite.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
