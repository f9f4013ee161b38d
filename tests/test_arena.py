import ctypes
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxlite as ort
from onnxlite import arena


def _model() -> bytes:
    node = helper.make_node("Relu", ["x"], ["y"])
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("enabled", [True, False])
def test_session_configures_the_arena_only_when_enabled(monkeypatch, enabled):
    calls = []
    monkeypatch.setattr(arena, "_state", [])
    monkeypatch.setattr(arena, "_configure", lambda: calls.append(1) or True)
    so = ort.SessionOptions()
    assert so.enable_cpu_mem_arena  # onnxruntime's default
    so.enable_cpu_mem_arena = enabled
    for _ in range(2):
        s = ort.InferenceSession(_model(), so)
        np.testing.assert_array_equal(s.run(None, {"x": np.array([-1, 2], np.float32)})[0], [0, 2])
    assert calls == ([1] if enabled else [])  # once per process


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mapped_blocks() -> int:
    """Blocks glibc serves by mmap (one per large block outside its heap)."""
    try:
        f = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        pytest.skip("no glibc mallinfo2")
    f.restype = _MallInfo2
    return int(f().hblks)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_large_buffers_come_from_the_heap():
    mapped = _mapped_blocks()
    if not arena.keep_memory():
        pytest.skip("not glibc")
    a = np.empty((40 << 20) // 4, np.float32)  # glibc would map 40 MiB afresh (over 32 MiB)
    a.fill(1.0)
    assert _mapped_blocks() == mapped
    del a


def test_a_users_malloc_settings_are_left_alone(monkeypatch):
    calls = []

    class FakeLibc:
        gnu_get_libc_version = object()

        def mallopt(self, *a):  # pragma: no cover - must not be called
            calls.append(a)
            return 1

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    monkeypatch.setattr(arena.ctypes, "CDLL", lambda *a, **k: FakeLibc())
    assert arena._configure() is False and calls == []


def test_configure_gives_threads_one_heap(monkeypatch):
    calls = []

    class FakeLibc:
        gnu_get_libc_version = object()

        def __init__(self):
            self.mallopt = lambda *a: calls.append(a) or 1

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(arena.ctypes, "CDLL", lambda *a, **k: FakeLibc())
    assert arena._configure() is True
    assert (arena._M_ARENA_MAX, 1) in calls
    calls.clear()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's own choice stands
    assert arena._configure() is False and calls == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_memory_a_thread_freed_serves_the_next_thread():
    # a fresh process: threads that ran before the setting keep heaps of their own
    code = textwrap.dedent(
        """
        import threading
        import numpy as np
        from onnxlite import arena

        def rss():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

        if not arena.keep_memory():
            raise SystemExit(0)  # not glibc: nothing to check
        t = threading.Thread(target=lambda: np.ones(1 << 22, np.float32).sum())  # 16 MiB, freed
        t.start()
        t.join()
        before = rss()
        a = np.ones(1 << 22, np.float32)  # the same size on this thread: the freed block again
        print(rss() - before < 8 << 10)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("True", "")


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_release_freed_hands_back_holes_in_the_heap():
    if not arena.keep_memory() or arena._malloc_trim() is None:
        pytest.skip("not glibc")
    blocks = [np.ones((1 << 20) // 4, np.float32) for _ in range(64)]  # 64 MiB from the heap
    del blocks[::2]  # 32 MiB of holes between live blocks: the heap keeps them mapped
    before = _rss_kib()
    assert not arena.release_freed(arena.RELEASE_MIN_BYTES - 1)  # small models: not worth it
    assert arena.release_freed(arena.RELEASE_MIN_BYTES)
    assert before - _rss_kib() >= 16 << 10  # at least half the holes went back
    assert all(b[0] == 1 for b in blocks)  # the live blocks are untouched


def test_sessions_over_large_weights_release_what_building_freed(monkeypatch):
    calls = []
    monkeypatch.setattr(arena, "release_freed", calls.append)
    w = helper.make_tensor("w", TensorProto.FLOAT, [512, 1024], np.ones(512 * 1024, np.float32))
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])],
        [w],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert calls == [512 * 1024 * 4]  # the weights' bytes decide
