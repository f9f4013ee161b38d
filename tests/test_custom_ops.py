"""Custom operators: user kernels for new ops, overrides of built-in ones, and loading from a file."""

from __future__ import annotations

import runpy

import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxlite as ort
from tests.models.builders import single


@pytest.fixture
def cleanup():  # type: ignore[no-untyped-def]
    registered: list[tuple[str, str]] = []
    yield registered
    for op, dom in registered:
        ort.unregister_custom_op(op, dom)


def test_example_runs() -> None:
    ns = runpy.run_path("examples/custom_op.py")
    try:
        sess = ort.InferenceSession(ns["build_model"]())
        x = np.linspace(-2, 2, 5, dtype=np.float32)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], 2 * np.tanh(0.5 * x), rtol=1e-6)
    finally:
        ort.unregister_custom_op("ScaledTanh", "example.ops")


def test_override_builtin_kernel(cleanup) -> None:  # type: ignore[no-untyped-def]
    calls = []

    @ort.register_custom_op("Relu")
    def my_relu(x):  # type: ignore[no-untyped-def]
        calls.append(x.shape)
        return np.maximum(x, 0)

    cleanup.append(("Relu", ""))
    s = ort.InferenceSession(single("Relu", ["a"], ["b"]))
    s.run(None, {"a": np.array([-1.0, 1.0], np.float32)})
    assert calls == [(2,)]
    ort.unregister_custom_op("Relu")
    cleanup.clear()
    ort.InferenceSession(single("Relu", ["a"], ["b"])).run(None, {"a": np.ones(2, np.float32)})
    assert calls == [(2,)]  # the built-in kernel is back


def test_overridden_kernel_output_is_not_overwritten_in_place(cleanup) -> None:  # type: ignore[no-untyped-def]
    kept = np.array([-1.0, 2.0], np.float32)

    @ort.register_custom_op("Add")
    def cached_add(a, b):  # type: ignore[no-untyped-def]
        return kept  # a kernel may return an array it keeps (the built-in Add never does)

    cleanup.append(("Add", ""))
    nodes = [helper.make_node("Add", ["x", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    sess = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    for _ in range(2):
        np.testing.assert_array_equal(sess.run(None, {"x": np.zeros(2, np.float32)})[0], [0.0, 2.0])
    np.testing.assert_array_equal(kept, [-1.0, 2.0])  # the Relu did not write into it


def test_factory_kernel_and_versions(cleanup) -> None:  # type: ignore[no-untyped-def]
    def maker(offset: int):  # type: ignore[no-untyped-def]
        def make(node):  # type: ignore[no-untyped-def]
            k = node.attrs.get("k", 1)
            return lambda x: x * k + offset

        return make

    # the kernel registered since=1 serves opsets 1-2 of v.ops, the one since=3 serves 3 and up
    ort.register_custom_op("Affine", maker(1), domain="v.ops", since=1, factory=True)
    ort.register_custom_op("Affine", maker(3), domain="v.ops", since=3, factory=True)
    cleanup.append(("Affine", "v.ops"))
    for opset, extra in ((2, 1), (4, 3)):
        g = helper.make_graph(
            [helper.make_node("Affine", ["x"], ["y"], domain="v.ops", k=10)],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        m = helper.make_model(
            g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("v.ops", opset)]
        )
        y = ort.InferenceSession(m).run(None, {"x": np.ones(1, np.float32)})[0]
        assert y[0] == 10 + extra


def test_unknown_attribute_is_reported_at_build(cleanup) -> None:  # type: ignore[no-untyped-def]
    ort.register_custom_op("Plain", lambda x: x, domain="p.ops")
    cleanup.append(("Plain", "p.ops"))
    g = helper.make_graph(
        [helper.make_node("Plain", ["x"], ["y"], domain="p.ops", mystery=3)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("p.ops", 1)])
    with pytest.raises(ort.NotImplemented, match="mystery"):
        ort.InferenceSession(m)


def test_register_custom_ops_library(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "myops.py"
    lib.write_text(
        "import onnxlite\n"
        "@onnxlite.register_custom_op('Twice', domain='lib.ops')\n"
        "def twice(x):\n"
        "    return x * 2\n"
    )
    so = ort.SessionOptions()
    so.register_custom_ops_library(str(lib))
    try:
        g = helper.make_graph(
            [helper.make_node("Twice", ["x"], ["y"], domain="lib.ops")],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        )
        m = helper.make_model(
            g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("lib.ops", 1)]
        )
        y = ort.InferenceSession(m, sess_options=so).run(None, {"x": np.ones(2, np.float32)})[0]
        np.testing.assert_array_equal(y, [2, 2])
    finally:
        ort.unregister_custom_op("Twice", "lib.ops")
    with pytest.raises(ort.NotImplemented, match="Python kernels only"):
        so.register_custom_ops_library("libcustom.so")
