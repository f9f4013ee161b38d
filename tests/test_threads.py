"""Threads: intra_op_num_threads limits BLAS during runs; ORT_PARALLEL matches sequential runs."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

import onnxlite as ort
from tests.fresh import in_forked_child
from tests.models.builders import mlp, single

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def _blas_threads() -> int:
    """Threads of numpy's BLAS, which the runs call (a BLAS another package loads later, such as
    scipy's, is not the runs' to set)."""
    from onnxlite.threads import _blas_libs

    return min(get() for get, _ in _blas_libs())


def test_intra_op_threads_limit_blas_during_run() -> None:
    seen: list[int] = []

    @ort.register_custom_op("Probe", domain="t.ops")
    def probe(x):  # type: ignore[no-untyped-def]
        seen.append(_blas_threads())
        return x

    try:
        g = onnx.helper.make_graph(
            [onnx.helper.make_node("Probe", ["x"], ["y"], domain="t.ops")],
            "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        )
        m = onnx.helper.make_model(
            g, opset_imports=[onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("t.ops", 1)]
        )
        before = _blas_threads()
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        ort.InferenceSession(m, sess_options=so).run(None, {"x": np.ones(1, np.float32)})
        assert seen == [1]
        assert _blas_threads() == before  # restored after the run
    finally:
        ort.unregister_custom_op("Probe", "t.ops")


@pytest.mark.parametrize(("intra", "expected"), [(1, 1), (3, 3), (0, None)])
def test_intra_op_threads_set_the_workers_and_hold_blas_at_one(intra: int, expected: int | None) -> None:
    from onnxlite.providers.cpu import workers
    from onnxlite.threads import usable_cores

    seen: list[tuple[int, int]] = []

    @ort.register_custom_op("Probe2", domain="t.ops")
    def probe(x):  # type: ignore[no-untyped-def]
        seen.append((workers.workers(), _blas_threads()))
        return x

    try:
        g = onnx.helper.make_graph(
            [onnx.helper.make_node("Probe2", ["x"], ["y"], domain="t.ops")],
            "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        )
        m = onnx.helper.make_model(
            g, opset_imports=[onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("t.ops", 1)]
        )
        so = ort.SessionOptions()
        so.intra_op_num_threads = intra
        before = workers.workers()
        ort.InferenceSession(m, sess_options=so).run(None, {"x": np.ones(1, np.float32)})
        assert seen == [(expected or usable_cores(), 1)]
        assert workers.workers() == before
    finally:
        ort.unregister_custom_op("Probe2", "t.ops")


@pytest.mark.parametrize("name", ["inception_v1", "squeezenet"])
def test_parallel_mode_matches_sequential(name: str) -> None:
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.inter_op_num_threads = 3
    par = ort.InferenceSession(path, sess_options=so)
    seq = ort.InferenceSession(path)
    inp = par.get_inputs()[0]
    x = np.random.default_rng(0).random(inp.shape, dtype=np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(par.run(None, {inp.name: x})[0], seq.run(None, {inp.name: x})[0])


def test_parallel_mode_keeps_chains_on_the_calling_thread() -> None:
    # a chain a -> b -> c with one branch d beside b: the caller runs the chain (single-thread
    # settings only while the pool runs d), the pool only the branch's extra step
    import threading

    seen: dict[str, tuple[str, bool]] = {}
    gate = threading.Event()

    @ort.register_custom_op("Where2", domain="t.ops")
    def where2(x, *, tag=b""):  # type: ignore[no-untyped-def]
        from onnxlite.threads import single_thread_run

        name = tag.decode() if isinstance(tag, bytes) else str(tag)
        if name == "d":
            gate.wait(5)  # d runs while b does: b must see the pool busy
        seen[name] = (threading.current_thread().name, single_thread_run())
        if name == "b":
            gate.set()
        return x + 1

    try:
        mk = onnx.helper.make_node
        nodes = [
            mk("Where2", ["x"], ["a"], domain="t.ops", tag="a"),
            mk("Where2", ["a"], ["b"], domain="t.ops", tag="b"),
            mk("Where2", ["a"], ["d"], domain="t.ops", tag="d"),
            mk("Add", ["b", "d"], ["s"]),
            mk("Where2", ["s"], ["y"], domain="t.ops", tag="c"),
        ]
        info = onnx.helper.make_tensor_value_info
        g = onnx.helper.make_graph(
            nodes, "g", [info("x", onnx.TensorProto.FLOAT, [1])], [info("y", onnx.TensorProto.FLOAT, [1])]
        )
        m = onnx.helper.make_model(
            g, opset_imports=[onnx.helper.make_opsetid("", 17), onnx.helper.make_opsetid("t.ops", 1)]
        )
        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        so.inter_op_num_threads = 2
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        (y,) = ort.InferenceSession(m, sess_options=so).run(None, {"x": np.zeros(1, np.float32)})
        assert y[0] == 5  # (1 + 1) + (1 + 1) + 1
        me = threading.current_thread().name
        assert seen["a"] == (me, False) and seen["c"] == (me, False)
        assert seen["b"] == (me, True)  # beside d, on one thread
        assert seen["d"][0] != me
    finally:
        ort.unregister_custom_op("Where2", "t.ops")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_parallel_mode_runs_in_a_forked_child() -> None:
    # the pool's threads are not forked with the process: the child needs a pool of its own
    mk = onnx.helper.make_node
    nodes = [mk("Relu", ["x"], ["a"]), mk("Neg", ["x"], ["b"]), mk("Add", ["a", "b"], ["y"])]
    info = onnx.helper.make_tensor_value_info
    g = onnx.helper.make_graph(
        nodes, "g", [info("x", onnx.TensorProto.FLOAT, [4])], [info("y", onnx.TensorProto.FLOAT, [4])]
    )
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.inter_op_num_threads = 3
    # the numpy provider alone: a session with oneDNN nodes is rebuilt in the child anyway
    data = onnx.helper.make_model(g).SerializeToString()
    sess = ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
    x = np.array([-1, 2, -3, 4], np.float32)
    expected = sess.run(None, {"x": x})[0]
    assert in_forked_child(lambda: np.array_equal(sess.run(None, {"x": x})[0], expected), 20) == 0


def test_parallel_mode_reports_kernel_failures_and_terminate() -> None:
    so = ort.SessionOptions()
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    s = ort.InferenceSession(mlp(), sess_options=so)
    with pytest.raises(ort.InvalidArgument):
        s.run(None, {"x": np.ones((2, 5), np.float32)})
    ro = ort.RunOptions()
    ro.terminate = True
    with pytest.raises(ort.RuntimeException, match="terminate"):
        s.run(None, {"x": np.ones((2, 4), np.float32)}, ro)
    bad = ort.InferenceSession(single("MatMul", ["a", "b"], ["c"]), sess_options=so)
    with pytest.raises(ort.Fail, match="MatMul"):
        bad.run(None, {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32)})


def _drive(policy, cost: dict[str, float], runs: int) -> list[str]:  # type: ignore[no-untyped-def]
    modes = []
    for _ in range(runs):
        m = policy.choose()
        modes.append(m)
        policy.record(m, cost[m])
    return modes


def test_thread_policy_tries_both_modes_then_keeps_the_faster() -> None:
    from onnxlite.threads import BLAS, SPLIT, ThreadPolicy

    p = ThreadPolicy(2)
    modes = _drive(p, {SPLIT: 2.0, BLAS: 1.0}, 40)
    assert modes[:3] == [SPLIT] * 3 and modes[3:6] == [BLAS] * 3  # a burst of each first
    assert p.best == BLAS and modes[6:].count(SPLIT) <= 2 * ThreadPolicy.BURST


def test_thread_policy_follows_a_change_of_load() -> None:
    from onnxlite.threads import BLAS, SPLIT, ThreadPolicy

    p = ThreadPolicy(2)
    _drive(p, {SPLIT: 1.2, BLAS: 1.0}, 20)
    assert p.best == BLAS
    # the machine gets busy: BLAS's spinning threads now make runs 6x slower
    modes = _drive(p, {SPLIT: 1.2, BLAS: 6.0}, 60)
    assert p.best == SPLIT and modes[-10:] == [SPLIT] * 10


def test_thread_policy_with_one_thread_never_tries() -> None:
    from onnxlite.threads import SPLIT, ThreadPolicy

    p = ThreadPolicy(1)
    assert _drive(p, {SPLIT: 1.0}, 10) == [SPLIT] * 10 and p.avg == {}


def test_blas_mode_gives_blas_the_threads() -> None:
    from onnxlite.providers.cpu import workers
    from onnxlite.threads import BLAS, RunThreads

    with RunThreads(3, BLAS):
        assert workers.workers() == 1 and _blas_threads() == 3
    with RunThreads(3):
        assert workers.workers() == 3 and _blas_threads() == 1


def test_thread_policy_with_three_modes_probes_each_and_follows_contention() -> None:
    from onnxlite.threads import BLAS, SINGLE, SPLIT, ThreadPolicy

    p = ThreadPolicy(2, (SPLIT, BLAS, SINGLE))
    modes = _drive(p, {SPLIT: 1.0, BLAS: 1.5, SINGLE: 2.0}, 200)
    assert modes[:9] == [SPLIT] * 3 + [BLAS] * 3 + [SINGLE] * 3
    assert p.best == SPLIT
    assert modes[9:].count(BLAS) >= ThreadPolicy.BURST and modes[9:].count(SINGLE) >= ThreadPolicy.BURST
    assert modes[9:].count(SPLIT) > 0.8 * len(modes[9:])
    # another process takes a core: the threaded modes stall, one thread wins
    modes = _drive(p, {SPLIT: 3.0, BLAS: 6.0, SINGLE: 2.0}, 400)
    assert p.best == SINGLE and modes[-10:] == [SINGLE] * 10


def test_single_mode_holds_every_pool_at_one_thread() -> None:
    from onnxlite.providers.cpu import workers
    from onnxlite.threads import SINGLE, RunThreads, single_thread_run

    assert not single_thread_run()
    with RunThreads(3, SINGLE):
        assert workers.workers() == 1 and _blas_threads() == 1 and single_thread_run()
    assert not single_thread_run()


def test_one_thread_with_onednn_nodes_runs_single() -> None:
    from onnxlite.threads import BLAS, SINGLE, SPLIT, ThreadPolicy

    p = ThreadPolicy(1, (SPLIT, BLAS, SINGLE))
    assert _drive(p, {SINGLE: 1.0}, 5) == [SINGLE] * 5


def test_thread_policy_judges_a_try_by_its_fastest_run() -> None:
    """Another pool spinning for a moment (onnxruntime's, after its own run) slows one run of a
    try; the mode must not be written off for it."""
    from onnxlite.threads import BLAS, SINGLE, SPLIT, ThreadPolicy

    p = ThreadPolicy(2, (SPLIT, BLAS, SINGLE))
    cost = {SPLIT: 1.0, BLAS: 1.5, SINGLE: 2.0}
    modes = []
    for i in range(60):
        m = p.choose()
        modes.append(m)
        p.record(m, cost[m] * (4.0 if i in (1, 4) else 1.0))  # the first counted run of a try
    assert p.best == SPLIT and modes[-10:] == [SPLIT] * 10
    assert p.avg[SPLIT] == pytest.approx(1.0)


def test_short_runs_skip_the_thread_settings_until_a_long_one() -> None:
    from onnxlite.threads import BLAS, SPLIT, ThreadPolicy

    p = ThreadPolicy(0)
    _drive(p, {SPLIT: 20e-6, BLAS: 10e-6}, 12)
    assert p.trivial and p.best == BLAS
    p.record_trivial(30e-6)
    assert p.trivial
    p.record_trivial(1e-3)  # larger inputs: the modes are measured again
    assert not p.trivial
    explicit = ThreadPolicy(2)  # an explicit intra_op_num_threads holds in every run
    _drive(explicit, {SPLIT: 20e-6, BLAS: 10e-6}, 12)
    assert not explicit.trivial


def test_a_session_of_short_runs_leaves_the_threads_alone() -> None:
    from onnxlite import threads

    sess = ort.InferenceSession(mlp(), providers=["CPUExecutionProvider"])
    # the threshold is raised so that a slow or busy machine still counts these runs as short:
    # the test is of the session's short path, the threshold's own logic is tested above
    sess._threads.TRIVIAL_S = 1.0
    feed = {sess.get_inputs()[0].name: np.ones((2, 4), np.float32)}
    want = sess.run(None, feed)
    for _ in range(200):  # both modes tried, then every run counts as short
        if sess._threads.trivial:
            break
        sess.run(None, feed)
    assert sess._threads.trivial
    entered = []
    real = threads.RunThreads.__enter__

    def spy(self):  # type: ignore[no-untyped-def]
        entered.append(self.mode)
        return real(self)

    threads.RunThreads.__enter__ = spy  # type: ignore[method-assign]
    try:
        got = sess.run(None, feed)
    finally:
        threads.RunThreads.__enter__ = real  # type: ignore[method-assign]
    assert entered == []
    np.testing.assert_array_equal(got[0], want[0])


def _drive_cold(p, cold_cost: dict[str, float], n: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``n`` runs, each after a second's pause (on a clock of its own, from now on)."""
    import time

    t = [time.perf_counter()]
    modes = []
    for _ in range(n):
        t[0] += 1.0  # a second idle
        m = p.choose(now=t[0])
        modes.append(m)
        t[0] += cold_cost[m]
        p.record(m, cold_cost[m], now=t[0])
    return modes


def test_cold_runs_are_timed_apart_and_may_take_one_thread() -> None:
    """After idle, OpenMP's threads sleep and a VM's vCPUs wake slowly: runs after a pause are
    judged on their own, between the best mode and one thread."""
    from onnxlite.threads import BLAS, SINGLE, SPLIT, ThreadPolicy

    p = ThreadPolicy(2, (SPLIT, BLAS, SINGLE))
    warm = {SPLIT: 1.2, BLAS: 1.0, SINGLE: 2.0}
    _drive(p, warm, 30)
    assert p.best == BLAS
    before = dict(p.avg)
    modes = _drive_cold(p, {SPLIT: 5.0, BLAS: 5.0, SINGLE: 2.5}, 40)
    assert modes[:4] == [BLAS, BLAS, SINGLE, SINGLE]  # each measured twice first
    assert modes[-8:].count(SINGLE) >= 7  # then one thread, trying the other now and then
    assert p.avg == before and p.best == BLAS  # the warm runs' averages are untouched
    # where two threads stay faster after a pause, cold runs keep them
    q = ThreadPolicy(2, (SPLIT, BLAS, SINGLE))
    _drive(q, warm, 30)
    modes = _drive_cold(q, {SPLIT: 5.0, BLAS: 3.0, SINGLE: 6.0}, 40)
    assert modes[-8:].count(BLAS) >= 7


def test_cold_runs_only_with_a_one_thread_mode() -> None:
    from onnxlite.threads import BLAS, SPLIT, ThreadPolicy

    p = ThreadPolicy(2)  # no oneDNN nodes: no separate cold judgement
    _drive(p, {SPLIT: 2.0, BLAS: 1.0}, 20)
    modes = _drive_cold(p, {SPLIT: 2.0, BLAS: 1.0}, 10)
    assert modes == [BLAS] * 10 and p.cold_avg == {}
