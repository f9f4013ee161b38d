"""The plan's shape values, computed once per input-shape signature."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite as ort
from onnxlite import plan as plan_mod
from onnxlite.errors import NotImplemented_

mk = helper.make_node


def _i64(name: str, values: list[int]):  # type: ignore[no-untyped-def]
    return numpy_helper.from_array(np.array(values, np.int64), name)


def _flatten_last_two() -> bytes:
    """y = x.reshape(x.shape[0], x.shape[1] * x.shape[2]) through a Shape -> Gather -> Mul ->
    Unsqueeze -> Concat chain, as exporters write it; plus z = Shape(x) as a graph output."""
    nodes = [
        mk("Shape", ["x"], ["s"]),
        mk("Gather", ["s", "i0"], ["d0"], axis=0),
        mk("Gather", ["s", "i1"], ["d1"], axis=0),
        mk("Gather", ["s", "i2"], ["d2"], axis=0),
        mk("Mul", ["d1", "d2"], ["d12"]),
        mk("Unsqueeze", ["d0", "ax"], ["u0"]),
        mk("Unsqueeze", ["d12", "ax"], ["u1"]),
        mk("Concat", ["u0", "u1"], ["shape"], axis=0),
        mk("Relu", ["x"], ["r"]),
        mk("Reshape", ["r", "shape"], ["y"]),
        mk("Shape", ["r"], ["z"]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "a", "b"])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.INT64, None),
        ],
        [
            numpy_helper.from_array(np.array(0, np.int64), "i0"),
            numpy_helper.from_array(np.array(1, np.int64), "i1"),
            numpy_helper.from_array(np.array(2, np.int64), "i2"),
            _i64("ax", [0]),
        ],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _no_opt() -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


def _count_calls(sess: ort.InferenceSession) -> dict[str, int]:
    calls: dict[str, int] = {}
    for st in sess._plan.steps:
        fn = st.fn

        def spy(*a, fn=fn, name=st.node.outputs[0]):  # type: ignore[no-untyped-def]
            calls[name] = calls.get(name, 0) + 1
            return fn(*a)

        object.__setattr__(st, "fn", spy)
    sess._plan._variants.clear()
    return calls


@pytest.mark.parametrize("mode", [ort.ExecutionMode.ORT_SEQUENTIAL, ort.ExecutionMode.ORT_PARALLEL])
def test_shape_steps_run_once_per_input_shape(mode) -> None:  # type: ignore[no-untyped-def]
    so = _no_opt()
    so.execution_mode = mode
    s = ort.InferenceSession(_flatten_last_two(), so, providers=["CPUExecutionProvider"])
    assert {s._plan.steps[i].node.outputs[0] for i in s._plan.shape_steps} == {
        "s", "d0", "d1", "d2", "d12", "u0", "u1", "shape", "z",
    }  # fmt: skip
    calls = _count_calls(s)
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 4), (2, 3, 4), (2, 3, 4), (5, 1, 7), (5, 1, 7), (2, 3, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        y, z = s.run(None, {"x": x})
        np.testing.assert_array_equal(y, np.maximum(x, 0).reshape(shape[0], -1))
        np.testing.assert_array_equal(z, shape)
        z[0] = 99  # a caller's copy: the kept value stays right
    assert calls["shape"] == 2 and calls["z"] == 2  # once per input shape
    assert calls["y"] == 6 and calls["r"] == 6


def test_values_behind_data_dependent_shapes_are_not_kept() -> None:
    """NonZero's output shape depends on x's values: Shape of it must run every time."""
    nodes = [mk("NonZero", ["x"], ["nz"]), mk("Shape", ["nz"], ["s"]), mk("Cast", ["s"], ["y"], to=1)]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    s = ort.InferenceSession(m, _no_opt(), providers=["CPUExecutionProvider"])
    assert not s._plan.shape_steps
    for x, n in [([1, 0, 2, 0], 2), ([1, 1, 1, 0], 3), ([0, 0, 0, 0], 0)]:
        (y,) = s.run(None, {"x": np.array(x, np.float32)})
        np.testing.assert_array_equal(y, [1, n])


def test_large_shape_values_are_recomputed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A value computed from shapes but too large to keep (an expanded mask) is computed every
    run; the small ones before it are still kept."""
    monkeypatch.setattr(plan_mod, "SHAPE_VALUE_ELEMENTS", 8)
    nodes = [
        mk("Shape", ["x"], ["s"]),
        mk("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(np.array([1.0], np.float32))),
        mk("Add", ["x", "ones"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    s = ort.InferenceSession(m, _no_opt(), providers=["CPUExecutionProvider"])
    assert len(s._plan.shape_steps) == 2
    for n in (1, 3, 3, 1, 3):
        x = np.arange(4 * n, dtype=np.float32).reshape(n, 4)
        np.testing.assert_array_equal(s.run(None, {"x": x})[0], x + 1)
    # 3x4 ones is over the limit: ConstantOfShape runs every time, Shape's result is kept
    assert [s._plan.steps[i].node.op_type for i in s._plan.shape_steps] == ["Shape"]
    assert len(s._plan._shape_values) == 2


def test_shape_values_from_several_threads(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Runs on several threads, with shapes alternating and the kept set narrowing on the way
    (a value over the limit), all give the right results."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(plan_mod, "SHAPE_VALUE_ELEMENTS", 2)  # the 3-element shape goes
    s = ort.InferenceSession(_flatten_last_two(), _no_opt(), providers=["CPUExecutionProvider"])
    shapes = [(2, 3, 4), (5, 1, 7), (1, 2, 2), (3, 3, 3)]

    def work(k: int) -> None:
        rng = np.random.default_rng(k)
        for i in range(40):
            shape = shapes[(i + k) % len(shapes)]
            x = rng.standard_normal(shape).astype(np.float32)
            y, z = s.run(None, {"x": x})
            np.testing.assert_array_equal(y, np.maximum(x, 0).reshape(shape[0], -1))
            np.testing.assert_array_equal(z, shape)

    with ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(work, k) for k in range(4)]:
            f.result()


@pytest.mark.parametrize(
    ("domain", "hint"),
    [
        ("org.example", r"no function body$"),
        ("com.microsoft.nchwc", r"save the model at ORT_ENABLE_EXTENDED\)$"),
    ],
)
def test_an_op_nothing_implements_is_named_with_a_hint_where_one_helps(domain, hint) -> None:
    node = helper.make_node("Conv", ["x"], ["y"], name="c", domain=domain)
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)]
    m = helper.make_model(g, opset_imports=opsets)
    with pytest.raises(NotImplemented_) as e:
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert f"op 'Conv' of domain '{domain}' at opset 1 has no kernel" in str(e.value)
    assert re.search(hint, str(e.value))
