"""The provider contract: availability, partitioning, blocked-layout values, fallbacks."""

from __future__ import annotations

import os

import numpy as np
import pytest
from onnx import helper

import onnxlite as ort
from onnxlite.errors import EPFail
from onnxlite.providers.dnnl import DnnlExecutionProvider
from onnxlite.providers.dnnl._prim import DnnlTensor
from tests.fresh import fresh_stdout, in_forked_child

from .conftest import CPU, DNNL, assert_close, graph_model, run_both, where

rng = np.random.default_rng(2)


def rand(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def test_available() -> None:
    assert DnnlExecutionProvider.availability() is None
    assert DnnlExecutionProvider.name == DNNL


def test_partition_mixed_graph() -> None:
    x = rand(1, 3, 8, 8)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], transB=1),
        helper.make_node("Softmax", ["g"], ["y"]),
        helper.make_node("Shape", ["c"], ["shape"]),
    ]
    inits = {
        "w": rand(4, 3, 3, 3),
        "s": rand(4),
        "b": rand(4),
        "m": rand(4),
        "v": np.abs(rand(4)) + 0.5,
        "fw": rand(10, 256),
        "fb": rand(10),
    }
    model = graph_model(nodes, {"x": x}, ["y", "shape"], inits)
    got, want, sd = run_both(model, {"x": x})
    assert_close(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert where(sd) == {
        "c": DNNL,
        "bn": DNNL,
        "r": DNNL,
        "f": CPU,
        "g": DNNL,
        "y": DNNL,
        "shape": CPU,
    }
    plans = {st.node.outputs[0]: sd._providers[0]._plans.get(id(st.node)) for st in sd._plan.steps}
    assert not plans["c"].keep_blocked  # Shape (CPU) reads it: plain
    assert plans["bn"].post is not None and plans["r"].passthrough  # ReLU fused into the BN
    assert not plans["bn"].keep_blocked  # through the ReLU, Flatten (CPU) reads it


def test_blocked_values_convert_where_they_escape() -> None:
    x = rand(1, 16, 8, 8)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Sigmoid", ["p"], ["y"]),
    ]
    model = graph_model(nodes, {"x": x}, ["y"], {"w": rand(32, 16, 3, 3)})
    got, want, sd = run_both(model, {"x": x})
    assert_close(got[0], want[0])
    assert type(got[0]) is np.ndarray
    # An intermediate value in oneDNN's layout still reads as an array.
    conv = sd._plan.steps[0].fn
    t = conv(x, sd._plan.template[sd._plan.slots["w"]])
    if isinstance(t, DnnlTensor):
        assert t.shape == (1, 32, 8, 8) and t.dtype == np.float32
        assert_close(np.asarray(t), np.asarray(t.numpy()))


def test_disable_cpu_fallback_lists_what_dnnl_declines() -> None:
    x = rand(2, 3)
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    model = graph_model(nodes, {"x": x}, ["y"])
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    with pytest.raises(EPFail) as ei:
        ort.InferenceSession(model.SerializeToString(), sess_options=so, providers=[DNNL])
    assert "Neg" in str(ei.value) and "Relu" not in str(ei.value)


def test_profiler_names_the_provider(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    x = rand(1, 2, 5, 5)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    model = graph_model(nodes, {"x": x}, ["y"], {"w": rand(4, 2, 3, 3)})
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "p")
    s = ort.InferenceSession(model.SerializeToString(), sess_options=so, providers=[DNNL, CPU])
    s.run(None, {"x": x})
    with open(s.end_profiling()) as f:
        events = [e for e in json.load(f) if e["cat"] == "Node"]
    assert {e["args"]["provider"] for e in events} == {DNNL}


def test_missing_library_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from onnxlite.providers.dnnl import _lib

    monkeypatch.setattr(_lib, "_state", {})
    monkeypatch.setattr(_lib, "_candidates", lambda: ["/nonexistent/libdnnl.so.3"])
    why = DnnlExecutionProvider.availability()
    assert why is not None and "onednn-cpu-gomp" in why and "onnxlite[dnnl]" in why


def test_num_threads_option(monkeypatch: pytest.MonkeyPatch) -> None:
    from onnxlite.providers.dnnl import _lib

    monkeypatch.setattr(_lib.load(), "threads", _lib.load().threads)  # restored afterwards
    x = rand(2, 3)
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], {"x": x}, ["y"])
    s = ort.InferenceSession(model.SerializeToString(), providers=[(DNNL, {"num_threads": "1"}), CPU])
    np.testing.assert_array_equal(s.run(None, {"x": x})[0], np.maximum(x, 0))
    with pytest.raises(ValueError, match="num_threads"):
        ort.InferenceSession(model.SerializeToString(), providers=[(DNNL, {"num_threads": "x"})])
    # a misspelt option is an error naming the known ones, not silently ignored
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_thread'\].*num_threads"):
        ort.InferenceSession(model.SerializeToString(), providers=[(DNNL, {"num_thread": "2"})])
    with pytest.raises(ValueError, match="use_arena"):
        ort.InferenceSession(model.SerializeToString(), providers=[(DNNL, {"use_arena": "yes"})])
    ort.InferenceSession(model.SerializeToString(), providers=[(DNNL, {"use_arena": "0"}), CPU])


def test_capability_returns_connected_groups() -> None:
    from onnxlite.ir.load import load_model

    x = rand(1, 3, 8, 8)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Sigmoid", ["t"], ["s"]),
        helper.make_node("Tanh", ["s"], ["y"]),
    ]
    model = graph_model(nodes, {"x": x}, ["y"], {"w": rand(4, 3, 3, 3)})
    m = load_model(model.SerializeToString())
    ep = DnnlExecutionProvider()
    groups = ep.capability(m.graph, list(range(5)), m.opsets)
    assert groups == [[0, 1], [3, 4]]  # Transpose (CPU) splits the chain


def test_small_primitives_run_on_one_thread() -> None:
    from onnxlite.providers.dnnl import _lib
    from onnxlite.providers.dnnl._conv import ConvKernel
    from onnxlite.providers.dnnl._ops import EltwiseKernel

    if _lib.load().default_threads < 2:
        pytest.skip("one OpenMP thread here")
    small = EltwiseKernel(_lib.ELT_RELU, 0.0, 0.0, False)
    x = rand(1, 16)
    np.testing.assert_array_equal(small(x), np.maximum(x, 0))
    (prim,) = small._cache.values()
    assert prim.threads == 1
    big = ConvKernel(
        group=1,
        strides=None,
        dilations=None,
        pads=[1, 1, 1, 1],
        auto_pad="NOTSET",
        post=[],
        keep_blocked=False,
    )
    big(rand(1, 64, 56, 56), rand(64, 64, 3, 3))
    (entry,) = big._cache.values()
    assert entry.prim.threads == 0  # the default count


@pytest.mark.parametrize(("n", "claimed"), [(64, False), (256, True)])
def test_small_constant_weights_stay_on_numpy(monkeypatch: pytest.MonkeyPatch, n: int, claimed: bool) -> None:
    from onnxlite.providers.dnnl import provider as dnnl_provider

    monkeypatch.setattr(dnnl_provider, "SMALL_WEIGHTS", 16384)  # the default, which conftest lifts
    x = rand(1, n)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Gemm", ["m", "w2"], ["y"]),
    ]
    model = graph_model(nodes, {"x": x}, ["y"], {"w": rand(n, n), "w2": rand(n, n)})
    got, want, sd = run_both(model, {"x": x})
    assert_close(got[0], want[0])
    expected = DNNL if claimed else CPU
    assert set(where(sd).values()) == {expected}


def test_one_thread_at_a_time_runs_primitives_on_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # the first thread to run a primitive owns the OpenMP team until it ends; others run
    # one-thread twins, so that no idle team outlives its use and slows every team's barriers
    import threading

    from onnxlite.providers.dnnl import _prim

    monkeypatch.setattr(_prim, "_team_owner", [None])
    seen: list[tuple[str, bool]] = []
    release = threading.Event()

    def claim(tag: str, hold: bool) -> None:
        seen.append((tag, _prim._owns_team()))
        if hold:
            release.wait(5)

    a = threading.Thread(target=claim, args=("a", True))
    a.start()
    while not seen:
        pass
    b = threading.Thread(target=claim, args=("b", False))
    b.start()
    b.join()

    def short(tag: str) -> None:  # run_async's thread: it ends after its run, and its team with it
        from onnxlite.threads import mark_short_lived

        mark_short_lived()
        claim(tag, False)

    s = threading.Thread(target=short, args=("s",))
    s.start()
    s.join()
    release.set()
    a.join()
    c = threading.Thread(target=claim, args=("c", False))  # the owner has ended: c takes over
    c.start()
    c.join()
    assert seen == [("a", True), ("b", False), ("s", True), ("c", True)]


def test_a_second_thread_runs_the_session_on_one_thread_twins() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from onnxlite.providers.dnnl import _lib
    from onnxlite.providers.dnnl._conv import ConvKernel

    if _lib.load().default_threads < 2:
        pytest.skip("one OpenMP thread here")
    x = rand(1, 32, 28, 28)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    model = graph_model(nodes, {"x": x}, ["y"], {"w": rand(64, 32, 3, 3)})
    s = ort.InferenceSession(model.SerializeToString(), providers=[DNNL, CPU])
    want = s.run(None, {"x": x})[0]  # this thread owns the team (or another test's thread does)
    with ThreadPoolExecutor(1) as pool:
        got = pool.submit(s.run, None, {"x": x}).result()[0]
    assert_close(got, want)
    (step,) = [st for st in s._plan.steps if st.node.op_type == "Conv"]
    entries = [e for e in step.fn._cache.values() if e is not None] if isinstance(step.fn, ConvKernel) else []
    assert entries and all(isinstance(e.prim._single, type(e.prim)) for e in entries)


def test_a_session_build_gives_the_team_back() -> None:
    # a fresh interpreter: the build's weight reorders claim the team and free it at the end, so
    # the first thread to run (here an application's worker thread) gets it
    code = (
        "import threading, numpy as np, onnxlite as ort\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from onnx import helper\n"
        "from onnxlite.providers.dnnl import _prim\n"
        "from tests.providers.dnnl.conftest import graph_model\n"
        "x = np.ones((1, 256, 28, 28), np.float32)\n"
        "w = np.ones((512, 256, 3, 3), np.float32)  # reordered at the build on several threads\n"
        "node = helper.make_node('Conv', ['x', 'w'], ['y'], pads=[1, 1, 1, 1])\n"
        "m = graph_model([node], {'x': x}, ['y'], {'w': w})\n"
        "s = ort.InferenceSession(m.SerializeToString(), providers=['DnnlExecutionProvider'])\n"
        "print(_prim._team_owner[0] is None)\n"
        "def work():\n"
        "    s.run(None, {'x': x})\n"
        "    return _prim._team_owner[0] is threading.current_thread()\n"
        "with ThreadPoolExecutor(1) as pool:\n"
        "    print(pool.submit(work).result())\n"
    )
    out = fresh_stdout(code)
    assert out.split() == ["True", "True"]


def _packed_model():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 12, 12)).astype(np.float32)
    inits = {
        "w1": rng.standard_normal((64, 16, 3, 3)).astype(np.float32),
        "w2": rng.standard_normal((64, 64, 3, 3)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Softmax", ["c"], ["y"], axis=1),
    ]
    return graph_model(nodes, {"x": x}, ["y"], inits).SerializeToString(), x


@pytest.mark.parametrize("from_file", [True, False])
def test_rebuilds_never_read_the_stand_ins_of_packed_weights(
    tmp_path, monkeypatch: pytest.MonkeyPatch, from_file: bool
) -> None:  # type: ignore[no-untyped-def]
    # the oneDNN kernels keep their weights packed and the graph may hold empty stand-ins for
    # them: set_providers and the CPU fallback after a failure must still compute with the weights
    data, x = _packed_model()
    src = str(tmp_path / "m.onnx") if from_file else data
    if from_file:
        (tmp_path / "m.onnx").write_bytes(data)
    want = ort.InferenceSession(data, providers=[CPU]).run(None, {"x": x})[0]
    s = ort.InferenceSession(src, providers=[DNNL, CPU])
    assert s._plan.packed_in_place == from_file  # a file can be loaded again; bytes are kept whole
    assert_close(s.run(None, {"x": x})[0], want)
    s.set_providers([CPU])
    assert_close(s.run(None, {"x": x})[0], want)
    s.set_providers([DNNL, CPU])
    assert_close(s.run(None, {"x": x})[0], want)

    real = DnnlExecutionProvider.kernel

    def failing(self, info, node, opsets):  # type: ignore[no-untyped-def]
        if node.op_type == "Softmax":  # after both convolutions packed their weights
            raise RuntimeError("simulated library failure")
        return real(self, info, node, opsets)

    monkeypatch.setattr(DnnlExecutionProvider, "kernel", failing)
    with pytest.warns(UserWarning, match="falling back"):
        s = ort.InferenceSession(src, providers=[DNNL, CPU])
    assert s.get_providers() == [CPU]
    assert_close(s.run(None, {"x": x})[0], want)


def test_cpu_weight_layout_leaves_dnnl_matmuls_alone() -> None:
    # the CPU provider's transposed-weights rewrite (providers.cpu.layout) takes only the nodes
    # assigned to it: with oneDNN first, MatMul keeps its weights and runs on oneDNN
    from onnx import TensorProto, numpy_helper

    w = (rand(384, 512) / 20).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 384])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x = rand(1, 8, 384)
    with_dnnl = ort.InferenceSession(model, providers=[DNNL, CPU])
    assert [n.op_type for n in with_dnnl._model.graph.nodes] == ["MatMul"]
    cpu_only = ort.InferenceSession(model, providers=[CPU])
    assert [n.op_type for n in cpu_only._model.graph.nodes] == ["FusedMatMul"]
    want = x @ w
    for sess in (with_dnnl, cpu_only):
        assert_close(sess.run(None, {"x": x})[0], want)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_runs_sessions_its_parent_ran() -> None:
    # OpenMP's threads do not survive fork: a parallel region in the child waited for them
    # forever. The child rebuilds the session on its first run, for one OpenMP thread.
    x = rand(1, 64, 56, 56)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["y"]),
    ]
    model = graph_model(nodes, {"x": x}, ["y"], {"w": rand(64, 64, 3, 3), "w2": rand(128, 64, 1, 1)})
    sess = ort.InferenceSession(model.SerializeToString(), providers=[DNNL, CPU])
    for _ in range(3):  # the parent's OpenMP team runs the primitives
        want = sess.run(None, {"x": x})[0]

    def child() -> bool:
        got = [sess.run(None, {"x": x})[0] for _ in range(3)]
        fresh = ort.InferenceSession(model.SerializeToString(), providers=[DNNL, CPU])
        got.append(fresh.run(None, {"x": x})[0])
        return all(np.allclose(g, want, rtol=1e-4, atol=1e-4) for g in got)

    assert in_forked_child(child) == 0
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)  # the parent is unaffected
