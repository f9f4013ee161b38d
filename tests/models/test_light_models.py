"""The nine light models shipped with onnx: stored outputs, and onnxruntime on random inputs."""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.runner import Runner

import onnxlite

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = sorted(
    os.path.basename(p)[len("light_") : -len(".onnx")] for p in glob.glob(os.path.join(LIGHT, "light_*.onnx"))
)


def test_all_nine_present() -> None:
    assert len(MODELS) == 9, MODELS


def _inputs(model: onnx.ModelProto, random: bool) -> dict[str, np.ndarray]:
    inits = {i.name for i in model.graph.initializer}
    return {
        x.name: Runner.generate_dummy_data(x, seed=0, random=random)
        for x in model.graph.input
        if x.name not in inits
    }


@pytest.mark.parametrize("name", MODELS)
def test_matches_stored_output(name: str) -> None:
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    model = onnx.load(path)
    expected = numpy_helper.to_array(onnx.load_tensor(os.path.join(LIGHT, f"light_{name}_output_0.pb")))
    got = onnxlite.InferenceSession(path).run(None, _inputs(model, random=False))[0]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_matches_onnxruntime_on_random_inputs(name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    feeds = _inputs(onnx.load(path), random=True)
    got = onnxlite.InferenceSession(path).run(None, feeds)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(got, want):
        scale = max(float(np.abs(w).max()), 1e-6)
        # 1e-3 relative to the output's magnitude: the two runtimes sum in different orders.
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-3 * scale * 1e-2)
