import ctypes
import sys

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
