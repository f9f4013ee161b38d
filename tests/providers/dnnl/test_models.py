"""The ONNX backend suite's light models on [Dnnl, CPU] against the CPU provider alone."""

from __future__ import annotations

import os
import threading

import numpy as np
import onnx
import pytest

import onnxlite as ort

from .conftest import CPU, DNNL, assert_close

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = sorted(f[6:-5] for f in os.listdir(LIGHT) if f.endswith(".onnx")) if os.path.isdir(LIGHT) else []


@pytest.mark.parametrize("name", MODELS)
def test_light_model(name: str) -> None:
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    sd = ort.InferenceSession(path, providers=[DNNL, CPU])
    sc = ort.InferenceSession(path, providers=[CPU])
    inp = sd.get_inputs()[0]
    x = np.random.default_rng(0).random(inp.shape, dtype=np.float32)
    (got,) = sd.run(None, {inp.name: x})
    (want,) = sc.run(None, {inp.name: x})
    assert_close(got, want, rel=1e-3)
    ran = {st.node.op_type: st.provider for st in sd._plan.steps}
    assert DNNL in (ran.get("Conv"), ran.get("FusedConv"))  # the optimizer may fuse the ReLU
    for op in (
        "Conv",
        "FusedConv",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "BatchNormalization",
        "Gemm",
        "FusedGemm",
        "LRN",
    ):
        if op in ran:
            assert ran[op] == DNNL, op
    (again,) = sd.run(None, {inp.name: x})  # cached primitives give the same answer
    np.testing.assert_array_equal(again, got)


def _with_random_weights(path: str) -> bytes:
    """The model with its ConstantOfShape-made weights turned into random initializers.

    The light models fill every weight with one constant, which hides most arithmetic
    differences; random weights (and initializers, as exported models have) do not.
    """
    from onnx import numpy_helper

    m = onnx.load(path)
    m.ir_version = max(m.ir_version, 7)
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    rng = np.random.default_rng(0)
    keep = []
    for n in g.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in inits:
            shape = tuple(int(d) for d in inits[n.input[0]])
            value = next((numpy_helper.to_array(a.t) for a in n.attribute if a.name == "value"), None)
            fill = np.zeros(1, np.float32) if value is None else value.reshape(-1)
            if fill.dtype == np.float32 and len(shape) >= 2:
                arr = (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)
            else:
                arr = np.full(shape, fill[0], dtype=fill.dtype)
            g.initializer.append(numpy_helper.from_array(arr, n.output[0]))
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    return m.SerializeToString()


@pytest.mark.parametrize("name", MODELS)
def test_light_model_with_random_weights(name: str) -> None:
    model = _with_random_weights(os.path.join(LIGHT, f"light_{name}.onnx"))
    sd = ort.InferenceSession(model, providers=[DNNL, CPU])
    sc = ort.InferenceSession(model, providers=[CPU])
    inp = sd.get_inputs()[0]
    x = np.random.default_rng(1).random(inp.shape, dtype=np.float32)
    (got,) = sd.run(None, {inp.name: x})
    (want,) = sc.run(None, {inp.name: x})
    assert_close(got, want, rel=1e-3)
    ran = {st.node.op_type: st.provider for st in sd._plan.steps}
    assert DNNL in (ran.get("Conv"), ran.get("FusedConv"))


def test_concurrent_runs_share_primitives() -> None:
    path = os.path.join(LIGHT, "light_squeezenet.onnx")
    if not os.path.exists(path):
        pytest.skip("no light models in this onnx package")
    sd = ort.InferenceSession(path, providers=[DNNL, CPU])
    sc = ort.InferenceSession(path, providers=[CPU])
    inp = sd.get_inputs()[0]
    xs = [np.random.default_rng(i).random(inp.shape, dtype=np.float32) for i in range(4)]
    want = [sc.run(None, {inp.name: x})[0] for x in xs]
    got: list[object] = [None] * 4

    def work(i: int) -> None:
        for _ in range(3):
            got[i] = sd.run(None, {inp.name: xs[i]})[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        assert_close(g, w, rel=1e-3)


def test_parallel_execution_mode() -> None:
    path = os.path.join(LIGHT, "light_inception_v1.onnx")
    if not os.path.exists(path):
        pytest.skip("no light models in this onnx package")
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    sd = ort.InferenceSession(path, sess_options=so, providers=[DNNL, CPU])
    sc = ort.InferenceSession(path, providers=[CPU])
    inp = sd.get_inputs()[0]
    x = np.random.default_rng(5).random(inp.shape, dtype=np.float32)
    assert_close(sd.run(None, {inp.name: x})[0], sc.run(None, {inp.name: x})[0], rel=1e-3)


@pytest.mark.parametrize("name", [m for m in MODELS if m in ("squeezenet", "inception_v1")])
def test_one_thread_mode_runs_twins_with_the_same_answer(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SINGLE runs (the policy's choice when another process holds a core) use one-thread twins
    of the multi-threaded primitives and give the same result."""
    from onnxlite.providers.dnnl import _prim
    from onnxlite.threads import SINGLE, SPLIT

    if _prim.load().default_threads < 2:
        pytest.skip("one OpenMP thread: no twins to make")
    monkeypatch.setattr(_prim, "SMALL_WORK_US", 0.0)  # every primitive multi-threaded
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    sess = ort.InferenceSession(path, providers=[DNNL, CPU])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(1).random(inp.shape, dtype=np.float32)
    made = []
    real = _prim.Primitive._make_twin
    monkeypatch.setattr(_prim.Primitive, "_make_twin", lambda self: made.append(real(self)) or made[-1])
    monkeypatch.setattr(sess._threads, "choose", lambda: SPLIT)
    (multi,) = sess.run(None, {inp.name: x})
    assert not made
    monkeypatch.setattr(sess._threads, "choose", lambda: SINGLE)
    (single,) = sess.run(None, {inp.name: x})
    assert made and sum(isinstance(t, _prim.Primitive) for t in made) >= len(made) // 2
    assert all(t.threads == 1 for t in made if isinstance(t, _prim.Primitive))
    assert_close(np.asarray(single), np.asarray(multi), rel=1e-5)
