"""onnxlite in place of onnxruntime: a client written for onnxruntime runs unchanged."""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import onnx
import pytest

import onnxlite

try:  # the real package, imported before any test puts onnxlite in its place
    import onnxruntime as real_ort
except ImportError:  # pragma: no cover - onnxruntime is a test dependency
    real_ort = None

MODEL = os.path.join(
    os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx"
)
_MODULES = ("onnxruntime", "onnxruntime.capi", "onnxruntime.capi.onnxruntime_pybind11_state")


@pytest.fixture
def client_module(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import onnxlite.capi
    import onnxlite.capi.onnxruntime_pybind11_state as state

    for name, mod in zip(_MODULES, (onnxlite, onnxlite.capi, state)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "tests.dropin.ortclient", raising=False)
    mod = importlib.import_module("tests.dropin.ortclient")
    yield mod
    sys.modules.pop("tests.dropin.ortclient", None)


def test_client_runs_on_onnxlite(client_module) -> None:  # type: ignore[no-untyped-def]
    clf = client_module.Classifier(MODEL, threads=2)
    assert client_module.ort is onnxlite
    assert clf.device == "CPU"
    assert clf.input_type == "tensor(float)"
    assert clf.input_shape == [1, 3, 224, 224]
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    y = clf.predict(x)
    assert y.shape == (1, 1000, 1, 1) and y.dtype == np.float32
    np.testing.assert_array_equal(clf.predict_named(x), y)
    assert clf.try_bad_feed() == "InvalidArgument"


def test_client_matches_real_onnxruntime(client_module) -> None:  # type: ignore[no-untyped-def]
    if real_ort is None or real_ort is onnxlite:
        pytest.skip("onnxruntime is not installed")
    real = real_ort
    clf = client_module.Classifier(MODEL)
    x = np.random.default_rng(1).random((1, 3, 224, 224), dtype=np.float32)
    want = real.InferenceSession(MODEL, providers=["CPUExecutionProvider"]).run(None, {clf.input_name: x})[0]
    np.testing.assert_allclose(clf.predict(x), want, rtol=1e-3, atol=1e-5)


def _fusable_model() -> onnx.ModelProto:
    """Conv + BatchNormalization + Relu, then MatMul + bias + exact GELU and a LayerNorm pattern:
    what onnxruntime's extended optimizations rewrite into com.microsoft ops."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w = {
        "cw": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
        "bn_s": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "bn_b": rng.standard_normal(8).astype(np.float32) * 0.1,
        "bn_m": rng.standard_normal(8).astype(np.float32) * 0.1,
        "bn_v": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "fw": rng.standard_normal((8, 16)).astype(np.float32) * 0.3,
        "fb": rng.standard_normal(16).astype(np.float32) * 0.1,
        "sqrt2": np.array(np.sqrt(2.0), np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
        "two": np.array(2.0, np.float32),
        "eps": np.array(1e-5, np.float32),
        "g": rng.uniform(0.5, 1.5, 16).astype(np.float32),
        "b": rng.standard_normal(16).astype(np.float32) * 0.1,
    }
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "cw"], ["c"], pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"]),
        n("Relu", ["bn"], ["r"]),
        n("GlobalAveragePool", ["r"], ["p"]),
        n("Flatten", ["p"], ["f"]),
        n("MatMul", ["f", "fw"], ["m"]),
        n("Add", ["m", "fb"], ["h"]),
        n("Div", ["h", "sqrt2"], ["hd"]),
        n("Erf", ["hd"], ["he"]),
        n("Add", ["he", "one"], ["h1"]),
        n("Mul", ["h", "h1"], ["h2"]),
        n("Mul", ["h2", "half"], ["gelu"]),
        n("ReduceMean", ["gelu"], ["mu"], axes=[-1]),
        n("Sub", ["gelu", "mu"], ["d"]),
        n("Pow", ["d", "two"], ["d2"]),
        n("ReduceMean", ["d2"], ["var"], axes=[-1]),
        n("Add", ["var", "eps"], ["ve"]),
        n("Sqrt", ["ve"], ["sd"]),
        n("Div", ["d", "sd"], ["nrm"]),
        n("Mul", ["nrm", "g"], ["ng"]),
        n("Add", ["ng", "b"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 16])],
        [numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.skipif(real_ort is None, reason="needs onnxruntime")
def test_models_saved_by_onnxruntime_with_its_extended_optimizations_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert real_ort is not None
    src, saved = tmp_path / "m.onnx", tmp_path / "ort_optimized.onnx"
    onnx.save(_fusable_model(), src)
    so = real_ort.SessionOptions()
    so.graph_optimization_level = real_ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(saved)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (want,) = real_ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    ops = {(n.domain, n.op_type) for n in onnx.load(str(saved)).graph.node}
    assert {("com.microsoft", "FusedConv"), ("com.microsoft", "Gelu"), ("", "LayerNormalization")} <= ops
    for providers in (None, ["CPUExecutionProvider"]):
        (got,) = onnxlite.InferenceSession(str(saved), providers=providers).run(None, {"x": x})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
