"""Helpers of the oneDNN handle layer."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.providers.dnnl import _prim
from onnxlite.providers.dnnl._conv import ConvKernel
from onnxlite.providers.dnnl._prim import data_ptr, same_array


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.empty(7, np.float32),
        lambda: np.arange(24, dtype=np.int8).reshape(4, 6)[1:, ::2],
        lambda: np.zeros((3, 5), np.float64).T,
        lambda: np.empty(0, np.uint8),
    ],
)
def test_data_pointer_matches_numpy(make) -> None:  # type: ignore[no-untyped-def]
    a = make()
    assert data_ptr(a) == a.ctypes.data


def test_same_array_compares_views_by_data() -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    v = w.view()
    v.flags.writeable = False
    assert same_array(w, v)
    assert not same_array(w, w.copy())
    assert not same_array(w, w[:, :2])


def test_create_refuses_bare_descriptor_handles() -> None:
    from onnxlite.providers.dnnl import _lib as L
    from onnxlite.providers.dnnl._prim import MD, Attr, create

    x = MD.plain((1, 4, 8, 8))
    with pytest.raises(TypeError, match="MD objects"):
        create(
            "eltwise_forward_primitive_desc_create",
            L.FORWARD_INFERENCE,
            L.ELT_RELU,
            x.h,
            x.h,
            0.0,
            0.0,
            Attr(),
        )


def test_one_thread_twin_made_after_the_inputs_descriptors_are_gone() -> None:
    """A primitive makes its one-thread twin from its creation arguments at run time, after the
    descriptors of the input it was built for may be gone: it must keep them alive."""
    import gc
    import weakref

    from onnxlite.providers.dnnl import _lib as L
    from onnxlite.providers.dnnl import _prim
    from onnxlite.providers.dnnl._ops import PoolKernel
    from onnxlite.threads import RunThreads

    if L.load().default_threads < 2:
        pytest.skip("one OpenMP thread: no twins")
    kernel = PoolKernel(
        L.POOL_MAX, kernel_shape=[2, 2], strides=[2, 2], pads=None, dilations=None,
        auto_pad="NOTSET", ceil_mode=0, keep_blocked=False,
    )  # fmt: skip
    x = np.random.default_rng(0).standard_normal((1, 64, 96, 96)).astype(np.float32)
    want = x.reshape(1, 64, 48, 2, 48, 2).max(axis=(3, 5))
    xmd = _prim.MD.plain(x.shape)  # a descriptor no cache holds
    np.testing.assert_array_equal(np.asarray(kernel(_prim.DnnlTensor(x, xmd))), want)
    prim = next(iter(kernel._cache.values()))[0]
    alive = weakref.ref(xmd)
    del xmd
    gc.collect()
    assert alive() is not None  # held by the primitive, for the twin
    for _ in range(50):  # churn the heap where the descriptor was
        _prim.MD.plain((1, 3, 5, 7))
    with RunThreads(2, "single"):
        got = kernel(x)
    np.testing.assert_array_equal(np.asarray(got), want)
    assert prim._single is not None  # the twin was made (or found not to match)


def test_primitives_per_kernel_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # a model fed ever new shapes keeps the newest primitives only, and one whose primitive
    # was dropped makes it again with the same answer
    monkeypatch.setattr(_prim, "MAX_PRIMITIVES", 4)
    before = {id(o) for o in gc.get_objects() if isinstance(o, ConvKernel)}
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["y"], ["z"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [w],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    dnnl = onnxlite.InferenceSession(model, providers=["DnnlExecutionProvider", "CPUExecutionProvider"])
    cpu = onnxlite.InferenceSession(model, providers=["CPUExecutionProvider"])
    xs = [rng.standard_normal((1, 3, 8 + i, 9)).astype(np.float32) for i in range(10)]
    for x in [*xs, xs[0]]:
        np.testing.assert_allclose(
            dnnl.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0], rtol=1e-4, atol=1e-5
        )
    kernels = [o for o in gc.get_objects() if isinstance(o, ConvKernel) and id(o) not in before]
    assert kernels and all(len(k._cache) <= 4 for k in kernels)


def test_primitive_cache_keeps_the_newest_entries() -> None:
    cache = _prim.PrimitiveCache(3)
    for i in range(5):
        cache[i] = str(i)
    assert list(cache) == [2, 3, 4]
    assert cache.setdefault(9, []) == [] and list(cache) == [3, 4, 9]
    cache[4] = "again"  # an existing key: nothing dropped
    assert list(cache) == [3, 4, 9] and cache[4] == "again"
    assert isinstance(_prim._reorders, _prim.PrimitiveCache) and _prim._reorders.limit >= 256
