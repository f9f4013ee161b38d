"""CUDAExecutionProvider on a real GPU (CuPy and a CUDA device); skipped elsewhere."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

import onnxlite as ort
from onnxlite.errors import InvalidArgument

from ._models import CASES, f32
from .conftest import CPU, CUDA, assert_close, requires_gpu
from .test_kernels_on_host import run_case

pytestmark = requires_gpu
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_on_gpu_matches_cpu_provider(case) -> None:  # type: ignore[no-untyped-def]
    _, op, inputs, consts, attrs, domain, opset = case
    s, got = run_case([CUDA], op, inputs, consts, attrs, domain, opset)
    assert {st.node.op_type: st.provider for st in s._plan.steps}[op] == CUDA
    _, want = run_case([CPU], op, inputs, consts, attrs, domain, opset)
    for g, w in zip(got, want):
        tol = 2e-3 if w.dtype == np.float16 else 1e-4
        assert_close(g, w, rtol=tol, atol=tol)


def test_available_and_listed_first() -> None:
    assert ort.get_available_providers()[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")


@pytest.mark.parametrize("name", ["light_resnet50", "light_squeezenet"])
def test_light_model_matches_cpu(name: str) -> None:
    path = os.path.join(LIGHT, f"{name}.onnx")
    s = ort.InferenceSession(path, providers=[CUDA, CPU])
    inp = s.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(inp.shape).astype(np.float32)
    got = s.run(None, {inp.name: x})[0]
    want = ort.InferenceSession(path, providers=[CPU]).run(None, {inp.name: x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    on_gpu = sum(st.provider == CUDA for st in s._plan.steps if not st.node.op_type.startswith("Memcpy"))
    assert on_gpu >= 0.9 * sum(not st.node.op_type.startswith("Memcpy") for st in s._plan.steps)


def test_iobinding_with_cupy_arrays() -> None:
    import cupy

    from .test_provider import chain_model

    s = ort.InferenceSession(chain_model(), providers=[CUDA])
    x = f32(3, 4)
    ref = s.run(None, {"x": x})
    b = s.io_binding()
    xd = cupy.asarray(x)
    b.bind_input("x", "cuda", 0, np.float32, [3, 4], xd.data.ptr)  # a raw device pointer
    b.bind_output("z", "cuda")
    b.bind_output("y")
    for _ in range(2):  # bound values persist across runs
        s.run_with_iobinding(b)
        z, y = b.get_outputs()
        assert isinstance(z.value(), cupy.ndarray) and z.device_name() == "cuda"
        np.testing.assert_allclose(z.numpy(), ref[1], rtol=1e-5)
        np.testing.assert_allclose(y.numpy(), ref[0], rtol=1e-5, atol=1e-6)
    v = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    assert isinstance(v.value(), cupy.ndarray) and v.data_ptr() == v.value().data.ptr
    np.testing.assert_array_equal(v.numpy(), x)


def test_device_id_out_of_range_and_memory_limit() -> None:
    import cupy

    from .test_provider import chain_model

    n = cupy.cuda.runtime.getDeviceCount()
    with pytest.raises(InvalidArgument, match="device_id"):
        ort.InferenceSession(chain_model(), providers=[(CUDA, {"device_id": str(n)})])
    s = ort.InferenceSession(chain_model(), providers=[(CUDA, {"gpu_mem_limit": str(1 << 30)})])
    assert cupy.get_default_memory_pool().get_limit() == 1 << 30
    s.run(None, {"x": f32(3, 4)})
    cupy.get_default_memory_pool().set_limit(size=0)
