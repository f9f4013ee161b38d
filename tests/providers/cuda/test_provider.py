"""CUDAExecutionProvider without a GPU: capability, copies, options, availability, OrtValue and
IOBinding on the 'cuda' device (with numpy standing in for CuPy)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxlite as ort
from onnxlite.errors import InvalidArgument
from onnxlite.providers.cuda import _backend
from onnxlite.providers.cuda.provider import CUDAExecutionProvider, parse_options

from ._models import f32, node_model
from .conftest import CPU, CUDA, CountingBackend, HostCUDAProvider, gpu_missing


def _no_opt() -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


def _where(s: ort.InferenceSession) -> dict[str, str]:
    return {st.node.name or st.node.op_type: st.provider for st in s._plan.steps}


W = f32(4, 4)


def chain_model() -> bytes:
    """MatMul -> Mod (no CUDA kernel) -> Relu, and Sigmoid: a CPU node between GPU nodes."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], W.flatten().tolist())
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Mod", ["h", "two"], ["m"], name="mod", fmod=1),
        helper.make_node("Relu", ["m"], ["y"], name="relu"),
        helper.make_node("Sigmoid", ["h"], ["z"], name="sig"),
    ]
    g = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 4]) for n in ("y", "z")],
        [w, two],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


X = f32(3, 4)


def test_unsupported_nodes_fall_back_to_cpu_with_copies(host_cuda) -> None:  # type: ignore[no-untyped-def]
    s = ort.InferenceSession(chain_model(), sess_options=_no_opt(), providers=[CUDA])
    where = _where(s)
    assert (where["mm"], where["mod"], where["relu"], where["sig"]) == (CUDA, CPU, CUDA, CUDA)
    ops = [st.node.op_type for st in s._plan.steps]
    # x and w go up; h comes down for Mod, m goes back up; y and z come down.
    assert ops.count("MemcpyFromHost") == 3
    assert ops.count("MemcpyToHost") == 3
    y, z = s.run(None, {"x": X})
    ref = ort.InferenceSession(chain_model(), sess_options=_no_opt(), providers=[CPU]).run(None, {"x": X})
    np.testing.assert_allclose(y, ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z, ref[1], rtol=1e-5, atol=1e-6)


def test_initializers_are_copied_to_the_device_once(host_cuda) -> None:  # type: ignore[no-untyped-def]
    s = ort.InferenceSession(chain_model(), sess_options=_no_opt(), providers=[CUDA])
    for _ in range(3):
        s.run(None, {"x": X})
    ids = [id(a) for a in CountingBackend.to_device_calls]
    # per run: x and m; w once for the whole session
    assert len(ids) == 3 * 2 + 1


@pytest.mark.parametrize(
    ("op", "inputs", "consts", "attrs", "n_out"),
    [
        ("Div", {"a": np.array([7, -7], np.int64), "b": np.array([2, 2], np.int64)}, {}, {}, 1),
        ("MatMul", {"a": np.ones((2, 2)), "b": np.ones((2, 2))}, {}, {}, 1),  # float64
        ("MaxPool", {"x": f32(1, 1, 4, 4)}, {}, {"kernel_shape": [2, 2]}, 2),  # Indices output
        ("LayerNormalization", {"x": f32(2, 4), "s": f32(4)}, {}, {}, 2),  # Mean output
        ("Conv", {"x": f32(1, 1, 4, 4), "w": f32(1, 1, 2, 2)}, {}, {"auto_pad": "BOGUS"}, 1),
        ("Cast", {"x": f32(2)}, {}, {"to": int(TensorProto.STRING)}, 1),
    ],
    ids=["int_div", "float64_matmul", "maxpool_indices", "layernorm_mean", "bad_auto_pad", "cast_string"],
)
def test_declines_what_it_does_not_implement(host_cuda, op, inputs, consts, attrs, n_out) -> None:  # type: ignore[no-untyped-def]
    model = node_model(op, inputs, attrs, consts=consts, n_out=n_out)
    try:
        s = ort.InferenceSession(model, sess_options=_no_opt(), providers=[CUDA])
    except ort.OnnxliteError:
        return  # rejected by the CPU provider too (an invalid attribute): never claimed
    assert [st.provider for st in s._plan.steps if st.node.op_type == op] == [CPU]


def test_options_are_parsed_and_validated() -> None:
    # onnxruntime's documented example passes unchanged
    cfg = parse_options(
        {
            "device_id": "0",
            "arena_extend_strategy": "kNextPowerOfTwo",
            "gpu_mem_limit": str(2 * 1024**3),
            "cudnn_conv_algo_search": "EXHAUSTIVE",
            "do_copy_in_default_stream": "True",
        }
    )
    assert (cfg.device_id, cfg.gpu_mem_limit, cfg.conv_auto_tune) == (0, 2 * 1024**3, True)
    assert parse_options({}).gpu_mem_limit is None
    for bad, what in [
        ({"device_id": "-1"}, "device_id"),
        ({"device_id": "gpu0"}, "device_id"),
        ({"gpu_mem_limit": "0"}, "gpu_mem_limit"),
        ({"gpu_mem_limit": "2GB"}, "gpu_mem_limit"),
        ({"cudnn_conv_algo_search": "FAST"}, "cudnn_conv_algo_search"),
        ({"use_magic": "1"}, "use_magic"),
    ]:
        with pytest.raises(InvalidArgument, match=what):
            parse_options(bad)


def test_bad_option_fails_session_creation(host_cuda) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument, match="gpu_mem_limit"):
        ort.InferenceSession(chain_model(), providers=[(CUDA, {"gpu_mem_limit": "-5"})])


def test_without_cupy_the_provider_is_unavailable_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    _backend.load_error.cache_clear()
    try:
        why = CUDAExecutionProvider.availability()
        assert why is not None and "CuPy" in why and "onnxlite[cuda]" in why
        assert CUDA not in ort.get_available_providers()
        with pytest.warns(UserWarning, match="CuPy"):
            s = ort.InferenceSession(chain_model(), providers=[CUDA, CPU])
        assert s.get_providers() == [CPU]
        with pytest.raises(InvalidArgument, match="CuPy"):
            ort.OrtValue.ortvalue_from_numpy(X, "cuda", 0)
        with pytest.raises(InvalidArgument, match="CuPy"):
            s.io_binding().bind_output("y", "cuda")
    finally:
        _backend.load_error.cache_clear()


@pytest.mark.skipif(gpu_missing() is None, reason="a CUDA device is present")
def test_cuda_ortvalue_names_what_is_missing() -> None:
    with pytest.raises(InvalidArgument, match="'cuda' is not available"):
        ort.OrtValue.ortvalue_from_numpy(X, "cuda", 0)


def test_ortvalue_on_the_cuda_device(host_cuda) -> None:  # type: ignore[no-untyped-def]
    v = ort.OrtValue.ortvalue_from_numpy(X, "cuda", 0)
    assert v.device_name() == "cuda" and v.is_tensor()
    assert v.shape() == [3, 4] and v.data_type() == "tensor(float)"
    np.testing.assert_array_equal(v.numpy(), X)
    v.update_inplace(np.zeros((3, 4), np.float32))
    assert not v.numpy().any()
    e = ort.OrtValue.ortvalue_from_shape_and_type([2, 5], np.float16, "cuda", 0)
    assert e.device_name() == "cuda" and e.shape() == [2, 5] and e.element_type() is np.float16


def test_iobinding_keeps_device_values_on_the_device(host_cuda) -> None:  # type: ignore[no-untyped-def]
    s = ort.InferenceSession(chain_model(), sess_options=_no_opt(), providers=[CUDA])
    ref = s.run(None, {"x": X})
    CountingBackend.to_device_calls.clear()
    HostCUDAProvider.to_cpu_calls.clear()
    b = s.io_binding()
    b.bind_ortvalue_input("x", ort.OrtValue.ortvalue_from_numpy(X, "cuda", 0))
    b.bind_output("z", "cuda")  # Sigmoid's output: produced on the device, stays there
    b.bind_output("y")
    s.run_with_iobinding(b)
    z, y = b.get_outputs()
    assert z.device_name() == "cuda" and y.device_name() == "cpu"
    np.testing.assert_allclose(z.numpy(), ref[1], rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), ref[0], rtol=1e-6)
    np.testing.assert_allclose(b.copy_outputs_to_cpu()[0], ref[1], rtol=1e-6)
    # The bound device array reaches MatMul as is; z is fetched before its copy to the host:
    # the only device-to-host copies are h (for Mod) and y.
    bound = b._inputs["x"]
    assert any(a is bound for a in CountingBackend.to_device_calls)
    assert len(HostCUDAProvider.to_cpu_calls) == 2
    assert all(a is not z.value() for a in HostCUDAProvider.to_cpu_calls)
    b.synchronize_outputs()


def test_iobinding_device_input_read_by_a_cpu_node_is_copied_down(host_cuda) -> None:  # type: ignore[no-untyped-def]
    # Mod (CPU) reads x directly: the bound device value is brought to the host first
    x = np.array([[5.0, -3.0]], np.float32)
    model = node_model("Mod", {"a": x}, {"fmod": 1}, consts={"b": np.array([2.0], np.float32)})
    s = ort.InferenceSession(model, sess_options=_no_opt(), providers=[CUDA])
    b = s.io_binding()
    b.bind_input("a", "cuda", 0, np.float32, [1, 2], x)
    b.bind_output("y0", "cuda")
    s.run_with_iobinding(b)
    (out,) = b.get_outputs()
    assert out.device_name() == "cuda"
    np.testing.assert_array_equal(out.numpy(), np.fmod(x, 2))
