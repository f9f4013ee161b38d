"""Segments of oneDNN steps replayed from recorded primitive calls (providers/dnnl/_replay.py)."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import onnxlite as ort
from onnxlite.errors import InvalidArgument
from onnxlite.providers.dnnl._replay import Segment, _pack

from .conftest import CPU, DNNL, assert_close, graph_model, unoptimized

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def _segments(sess: ort.InferenceSession) -> list[Segment]:
    return [st[0] for st in sess._plan.full.fast if isinstance(st[0], Segment)]


def _sessions(model: Any, so: ort.SessionOptions | None = None) -> tuple[Any, Any]:
    """The model with replays (the default) and without."""
    data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    on = ort.InferenceSession(data, sess_options=so, providers=[DNNL, CPU])
    off = ort.InferenceSession(data, sess_options=so, providers=[(DNNL, {"replay": "0"}), CPU])
    return on, off


def _conv_chain() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Conv -> Relu -> MaxPool -> two Convs -> Concat, with the pooled map also an output and a
    dynamic batch."""
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((8, 8, 1, 1)).astype(np.float32)
    w3 = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "w2", "b"], ["c2"]),
        helper.make_node("Conv", ["p", "w3", "b"], ["c3"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["c2", "c3"], ["y"], axis=1),
    ]
    x = np.zeros((1, 3, 16, 16), np.float32)
    model = graph_model(nodes, {"x": x}, ["y", "p"], {"w1": w1, "w2": w2, "w3": w3, "b": b})
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    return model, {"w1": w1}


def _feeds(rng: np.random.Generator, n: int = 1) -> dict[str, np.ndarray]:
    return {"x": rng.standard_normal((n, 3, 16, 16)).astype(np.float32)}


def test_replay_matches_step_by_step_runs() -> None:
    model, _ = _conv_chain()
    on, off = _sessions(model)
    assert _segments(on) and not _segments(off)
    rng = np.random.default_rng(0)
    kept = []
    for _ in range(6):
        feeds = _feeds(rng)
        got, want = on.run(None, feeds), off.run(None, feeds)
        for g, w in zip(got, want):
            assert_close(g, w, rel=1e-5)
        kept.append((got, want))
    assert sum(s.replaying() for s in _segments(on)) >= 1, [s.why_not for s in _segments(on)]
    # outputs handed out earlier are the caller's: later replays wrote elsewhere
    for got, want in kept:
        for g, w in zip(got, want):
            assert_close(g, w, rel=1e-5)


def test_replay_per_input_shape() -> None:
    model, _ = _conv_chain()
    on, off = _sessions(model)
    rng = np.random.default_rng(2)
    for n in [1] * 6 + [2] * 6 + [1, 2, 3, 1, 2, 3]:
        feeds = _feeds(rng, n)
        for g, w in zip(on.run(None, feeds), off.run(None, feeds)):
            assert g.shape[0] == n
            assert_close(g, w, rel=1e-5)
    assert sum(s.replaying() for s in _segments(on)) >= 2


def test_non_contiguous_input_runs_step_by_step() -> None:
    model, _ = _conv_chain()
    on, off = _sessions(model)
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
        xt = np.asfortranarray(x)  # same values, other strides
        for feeds in ({"x": x}, {"x": xt}):
            for g, w in zip(on.run(None, feeds), off.run(None, feeds)):
                assert_close(g, w, rel=1e-5)


def test_fed_initializer_is_not_replayed_stale() -> None:
    """An initializer that is also a graph input may be fed: the run must use the fed value."""
    model, inits = _conv_chain()
    model.graph.input.append(helper.make_tensor_value_info("w1", TensorProto.FLOAT, [8, 3, 3, 3]))
    on, off = _sessions(model)
    rng = np.random.default_rng(4)
    x = _feeds(rng)
    for _ in range(4):
        on.run(None, x)
    other = {**x, "w1": (inits["w1"] * 2).astype(np.float32)}
    for feeds in (other, x, other):
        for g, w in zip(on.run(None, feeds), off.run(None, feeds)):
            assert_close(g, w, rel=1e-5)


def test_numpy_computed_buffers_refuse_a_replay() -> None:
    """Add with both operands broadcast is computed by numpy: no replay, right answers."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((1, 4, 1, 5)).astype(np.float32)
    bb = rng.standard_normal((1, 1, 3, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    model = graph_model(nodes, {"a": a, "b": bb}, ["y"])
    on, off = _sessions(model, unoptimized())
    for _ in range(5):
        feeds = {"a": rng.standard_normal(a.shape).astype(np.float32), "b": bb}
        (g,), (w,) = on.run(None, feeds), off.run(None, feeds)
        assert_close(g, w, rel=1e-6)
    segs = _segments(on)
    assert segs and all(s.replaying() == 0 for s in segs)
    assert all(s.why_not for s in segs)


def test_error_in_a_segment_names_the_node() -> None:
    model, _ = _conv_chain()
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "C"
    on, _ = _sessions(model)
    rng = np.random.default_rng(6)
    for _ in range(4):
        on.run(None, _feeds(rng))
    with pytest.raises(Exception, match="Conv") as info:
        on.run(None, {"x": np.zeros((1, 5, 16, 16), np.float32)})
    assert "does not match" in str(info.value)
    (y, _) = on.run(None, _feeds(rng))  # the session still runs
    assert y.shape == (1, 16, 8, 8)


def test_threads_share_a_session() -> None:
    model, _ = _conv_chain()
    on, off = _sessions(model)
    rng = np.random.default_rng(7)
    feeds = [_feeds(rng) for _ in range(4)]
    want = [off.run(None, f) for f in feeds]
    for f in feeds:
        on.run(None, f)
    errors: list[str] = []

    def work(k: int) -> None:
        for i in range(30):
            j = (i + k) % len(feeds)
            for g, w in zip(on.run(None, feeds[j]), want[j]):
                if not np.allclose(g, w, rtol=1e-5, atol=1e-5):
                    errors.append(f"thread {k} run {i}")

    ts = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]


def test_profiling_still_times_each_node(tmp_path: Any) -> None:
    model, _ = _conv_chain()
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    on = ort.InferenceSession(model.SerializeToString(), sess_options=so, providers=[DNNL, CPU])
    rng = np.random.default_rng(8)
    for _ in range(4):
        on.run(None, _feeds(rng))
    with open(on.end_profiling()) as f:
        events = json.load(f)
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    assert {e["args"]["provider"] for e in kernels} == {DNNL}
    assert {e["args"]["op_name"] for e in kernels} >= {"MaxPool", "Concat"}


def test_replay_option_is_checked() -> None:
    model, _ = _conv_chain()
    with pytest.raises(InvalidArgument, match="replay"):
        ort.InferenceSession(model.SerializeToString(), providers=[(DNNL, {"replay": "yes"}), CPU])


def test_pack_keeps_live_buffers_apart() -> None:
    items = [(0, 2, 100), (1, 3, 64), (3, 5, 200), (4, 4, 10), (6, 7, 300)]
    offsets, total = _pack(items)
    for i, (f1, l1, s1) in enumerate(items):
        for j, (f2, l2, s2) in enumerate(items[:i]):
            if f1 <= l2 and f2 <= l1:  # alive together: no overlap
                assert offsets[i] + s1 <= offsets[j] or offsets[j] + s2 <= offsets[i]
    assert total <= 512  # buffers that are never alive together share memory


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet", "inception_v1", "densenet121"])
def test_light_model_replays(name: str) -> None:
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not in this onnx package")
    on, off = _sessions(path)
    inp = on.get_inputs()[0]
    rng = np.random.default_rng(9)
    for _ in range(8):  # a warm-up and two recordings per thread mode the session tries
        x = {inp.name: rng.random(inp.shape, dtype=np.float32)}
        (g,), (w,) = on.run(None, x), off.run(None, x)
        assert_close(g, w, rel=1e-5)
    segs = _segments(on)
    assert segs and all(s.replaying() for s in segs), [s.why_not for s in segs]


def test_signatures_kept_are_bounded() -> None:
    """Each replay holds an arena: a segment keeps state for the latest few input shapes only."""
    from onnxlite.providers.dnnl._replay import MAX_SIGNATURES

    model, _ = _conv_chain()
    on, off = _sessions(model)
    rng = np.random.default_rng(10)
    for n in [1, 2, 3, 4, 5, 6, 7] * 3 + [1, 1, 1, 1]:
        feeds = _feeds(rng, n)
        for g, w in zip(on.run(None, feeds), off.run(None, feeds)):
            assert_close(g, w, rel=1e-5)
    for seg in _segments(on):
        assert len(seg._states) <= MAX_SIGNATURES
        assert seg.replaying() >= 1  # the batch of one, run last, replays again


def test_qdq_model_replays() -> None:
    """QDQ groups run as integer primitives inside segments; dequantized constant weights are
    handed on as they are."""
    from onnxlite.quantization import CalibrationDataReader, quantize_static

    model, _ = _conv_chain()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    rng = np.random.default_rng(11)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([_feeds(rng) for _ in range(4)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "f.onnx"), os.path.join(d, "q.onnx")
        onnx.save(model, src)
        quantize_static(src, dst, Reader())
        on, off = _sessions(dst)
    for _ in range(8):
        feeds = _feeds(rng)
        for g, w in zip(on.run(None, feeds), off.run(None, feeds)):
            np.testing.assert_array_equal(g, w)
    segs = _segments(on)
    assert segs and any(s.replaying() for s in segs), [s.why_not for s in segs]
