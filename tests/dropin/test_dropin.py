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
