"""InferenceSession's API: introspection, feeds and their errors, outputs, options, threads."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import onnxlite as ort
from onnxlite.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException
from tests.models.builders import mlp, mlp_reference, single

X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)


@pytest.fixture
def sess() -> ort.InferenceSession:
    return ort.InferenceSession(mlp().SerializeToString())


def test_node_args(sess: ort.InferenceSession) -> None:
    (i,) = sess.get_inputs()
    assert (i.name, i.type, i.shape) == ("x", "tensor(float)", ["N", 4])
    assert [(o.name, o.type, o.shape) for o in sess.get_outputs()] == [
        ("y", "tensor(float)", ["N", 3]),
        ("z", "tensor(float)", ["N", 3]),
    ]
    assert sess.get_overridable_initializers() == []


def test_node_arg_types_for_sequences_and_unknown_dims() -> None:
    seq = helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.INT64, None))
    g = helper.make_graph(
        [helper.make_node("SequenceLength", ["s"], ["n"])],
        "g",
        [helper.make_value_info("s", seq)],
        [helper.make_tensor_value_info("n", TensorProto.INT64, [])],
    )
    s = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert s.get_inputs()[0].type == "seq(tensor(int64))"
    assert s.run(None, {"s": [np.zeros(2, np.int64)] * 3})[0] == 3
    g2 = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["B", None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
    )
    s2 = ort.InferenceSession(helper.make_model(g2, opset_imports=[helper.make_opsetid("", 17)]))
    assert s2.get_inputs()[0].shape == ["B", None, 3]
    assert s2.get_inputs()[0].type == "tensor(double)"


def test_metadata_and_providers(sess: ort.InferenceSession) -> None:
    meta = sess.get_modelmeta()
    assert meta.producer_name == "onnxlite-tests"
    assert meta.graph_name == "mlp"
    assert meta.description == "a tiny MLP"
    assert meta.version == 3
    assert meta.custom_metadata_map == {"author": "tests"}
    assert sess.get_providers() == ort.get_available_providers()  # providers=None: all, best first
    assert sess.get_provider_options()["CPUExecutionProvider"] == {}
    assert isinstance(sess.get_session_options(), ort.SessionOptions)
    assert ort.get_available_providers()[-1] == "CPUExecutionProvider"
    assert "CUDAExecutionProvider" in ort.get_all_providers()
    assert ort.get_device() in ("CPU", "GPU")
    assert isinstance(ort.__version__, str)


def test_unknown_provider_is_value_error() -> None:
    with pytest.raises(ValueError, match="CPUExecutionProvider"):
        ort.InferenceSession(mlp(), providers=["NoSuchExecutionProvider"])


def test_unavailable_provider_warns_and_is_skipped() -> None:
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT is available here")
    with pytest.warns(UserWarning, match="TensorrtExecutionProvider"):
        s = ort.InferenceSession(mlp(), providers=["TensorrtExecutionProvider", "CPUExecutionProvider"])
    assert s.get_providers() == ["CPUExecutionProvider"]


def test_set_providers_with_options(sess: ort.InferenceSession) -> None:
    sess.set_providers([("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})])
    assert sess.get_provider_options()["CPUExecutionProvider"] == {
        "arena_extend_strategy": "kSameAsRequested"
    }
    np.testing.assert_allclose(sess.run(["y"], {"x": X})[0], mlp_reference(X)[0], rtol=1e-5)


def test_run_outputs_all_subset_and_order(sess: ort.InferenceSession) -> None:
    y, z = mlp_reference(X)
    for names in (None, []):
        got = sess.run(names, {"x": X})
        np.testing.assert_allclose(got[0], y, rtol=1e-5)
        np.testing.assert_allclose(got[1], z, rtol=1e-5)
    zz, yy = sess.run(["z", "y"], {"x": X})
    np.testing.assert_allclose(zz, z, rtol=1e-5)
    np.testing.assert_allclose(yy, y, rtol=1e-5)


def test_only_needed_nodes_run() -> None:
    # 'bad' fails when run (reshape 6 elements to 4); fetching only 'ok' must not run it.
    g = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["ok"], name="fine"),
            helper.make_node("Reshape", ["x", "shape"], ["bad"], name="broken"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
        [
            helper.make_tensor_value_info("ok", TensorProto.FLOAT, [6]),
            helper.make_tensor_value_info("bad", TensorProto.FLOAT, None),
        ],
        [onnx.numpy_helper.from_array(np.array([4], np.int64), "shape")],
    )
    s = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    x = np.arange(6, dtype=np.float32) - 3
    np.testing.assert_array_equal(s.run(["ok"], {"x": x})[0], np.maximum(x, 0))
    with pytest.raises(Fail) as ei:
        s.run(None, {"x": x})
    msg = str(ei.value)
    # a kernel failure names the node, its op type and its inputs' dtypes and shapes
    assert "broken" in msg and "Reshape" in msg and "float32[6]" in msg and "int64[1]" in msg


def test_intermediates_are_freed_after_last_use() -> None:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep h0 and h
    plan = ort.InferenceSession(mlp(), sess_options=so)._plan
    freed = {s for _, _, _, free in plan.full.steps for s in free}
    for name in ("h0", "h"):
        assert plan.slots[name] in freed
    for name in ("y", "z"):
        assert plan.slots[name] not in freed


def test_missing_and_unknown_feeds(sess: ort.InferenceSession) -> None:
    with pytest.raises(ValueError, match=r"\['x'\]"):
        sess.run(None, {})
    with pytest.raises(InvalidArgument, match="nope"):
        sess.run(None, {"x": X, "nope": X})


def test_wrong_dtype_and_shape(sess: ort.InferenceSession) -> None:
    with pytest.raises(InvalidArgument) as ei:
        sess.run(None, {"x": X.astype(np.float64)})
    assert "'x'" in str(ei.value) and "tensor(double)" in str(ei.value) and "tensor(float)" in str(ei.value)
    with pytest.raises(InvalidArgument) as ei:
        sess.run(None, {"x": np.zeros((5, 5), np.float32)})
    msg = str(ei.value)
    assert "'x'" in msg and "got 5" in msg and "expected 4" in msg
    with pytest.raises(InvalidArgument, match="rank"):
        sess.run(None, {"x": np.zeros(4, np.float32)})


def test_python_lists_are_converted(sess: ort.InferenceSession) -> None:
    y = sess.run(["y"], {"x": X.tolist()})[0]
    np.testing.assert_allclose(y, mlp_reference(X)[0], rtol=1e-5)


def test_ort_values(sess: ort.InferenceSession) -> None:
    v = ort.OrtValue.ortvalue_from_numpy(X)
    assert v.shape() == [5, 4] and v.data_type() == "tensor(float)" and v.device_name() == "cpu"
    assert v.is_tensor() and v.has_value()
    assert np.shares_memory(v.numpy(), X)
    out = sess.run_with_ort_values(["y"], {"x": v})
    assert isinstance(out[0], ort.OrtValue)
    np.testing.assert_allclose(out[0].numpy(), mlp_reference(X)[0], rtol=1e-5)
    e = ort.OrtValue.ortvalue_from_shape_and_type([2, 3], np.int64)
    assert e.shape() == [2, 3] and e.element_type() is np.int64


def test_io_binding(sess: ort.InferenceSession) -> None:
    b = sess.io_binding()
    b.bind_cpu_input("x", X)
    b.bind_output("z")
    sess.run_with_iobinding(b)
    np.testing.assert_allclose(b.copy_outputs_to_cpu()[0], mlp_reference(X)[1], rtol=1e-5)


def test_io_binding_writes_into_bound_buffers(sess: ort.InferenceSession) -> None:
    b = sess.io_binding()
    b.bind_cpu_input("x", X)
    out = np.zeros((5, 3), np.float32)
    b.bind_ortvalue_output("y", ort.OrtValue.ortvalue_from_numpy(out))
    sess.run_with_iobinding(b)
    np.testing.assert_allclose(out, mlp_reference(X)[0], rtol=1e-5)
    # a buffer that cannot hold the output fails, rather than leaving the caller's memory stale
    b.clear_binding_outputs()
    b.bind_ortvalue_output("y", ort.OrtValue.ortvalue_from_numpy(np.zeros(7, np.float32)))
    with pytest.raises(InvalidArgument, match=r"float32\[5, 3\] but the buffer bound to it is float32\[7\]"):
        sess.run_with_iobinding(b)
    with pytest.raises(InvalidArgument, match="raw pointers are not supported on CPU"):
        b.bind_output("y", "cpu", 0, np.float32, [5, 3], out.ctypes.data)


def test_run_options_levels_are_checked() -> None:
    ro = ort.RunOptions()
    ro.log_severity_level = 3
    with pytest.raises(InvalidArgument, match="log_severity_level must be between 0 and 4, got 99"):
        ro.log_severity_level = 99


def test_run_options_terminate(sess: ort.InferenceSession) -> None:
    ro = ort.RunOptions()
    ro.terminate = True
    with pytest.raises(RuntimeException, match="terminate"):
        sess.run(None, {"x": X}, ro)
    ro.terminate = False
    assert len(sess.run(None, {"x": X}, ro)) == 2
    ro.add_run_config_entry("k", "v")
    assert ro.get_run_config_entry("k") == "v"
    with pytest.raises(ort.InvalidArgument, match="run_options must be a RunOptions, got dict"):
        sess.run(None, {"x": X}, {"terminate": True})


def test_run_async(sess: ort.InferenceSession) -> None:
    done = threading.Event()
    box: dict[str, object] = {}

    def cb(outputs, user_data, err):  # type: ignore[no-untyped-def]
        box.update(outputs=outputs, user_data=user_data, err=err)
        done.set()

    sess.run_async(["y"], {"x": X}, cb, "tag")
    assert done.wait(10)
    assert box["err"] == "" and box["user_data"] == "tag"
    np.testing.assert_allclose(box["outputs"][0], mlp_reference(X)[0], rtol=1e-5)  # type: ignore[index]


def test_concurrent_runs_match_serial() -> None:
    path = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light/light_squeezenet.onnx")
    s = ort.InferenceSession(path)
    rng = np.random.default_rng(0)
    xs = [rng.random((1, 3, 224, 224), dtype=np.float32) for _ in range(6)]
    serial = [s.run(None, {"data_0": x})[0] for x in xs]
    results: list[object] = [None] * len(xs)

    def work(i: int) -> None:
        results[i] = s.run(None, {"data_0": xs[i]})[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(results, serial):
        np.testing.assert_array_equal(a, b)


def test_session_options_fields_and_validation() -> None:
    so = ort.SessionOptions()
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    so.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.log_verbosity_level = 1
    so.enable_cpu_mem_arena = False
    so.enable_mem_pattern = False
    so.enable_mem_reuse = False
    so.use_deterministic_compute = True
    so.logid = "x"
    so.add_session_config_entry("session.save_model_format", "ONNX")
    assert so.get_session_config_entry("session.save_model_format") == "ONNX"
    with pytest.raises(InvalidArgument):
        so.intra_op_num_threads = -1
    with pytest.raises(InvalidArgument):
        so.graph_optimization_level = 7
    with pytest.raises(InvalidArgument):
        so.log_severity_level = 9
    with pytest.raises(InvalidArgument):
        so.get_session_config_entry("missing.key")
    s = ort.InferenceSession(mlp(), sess_options=so)
    assert s.get_session_options() is so
    np.testing.assert_allclose(s.run(["y"], {"x": X})[0], mlp_reference(X)[0], rtol=1e-5)


def test_free_dimension_override(sess: ort.InferenceSession) -> None:
    so = ort.SessionOptions()
    so.add_free_dimension_override_by_name("N", 5)
    s = ort.InferenceSession(mlp(), sess_options=so)
    assert s.get_inputs()[0].shape == [5, 4]
    s.run(None, {"x": X})
    with pytest.raises(InvalidArgument):
        s.run(None, {"x": X[:2]})


def test_add_initializer_and_overridable_initializers() -> None:
    so = ort.SessionOptions()
    b = np.full(3, 100.0, np.float32)
    so.add_initializer("b", ort.OrtValue.ortvalue_from_numpy(b))
    s = ort.InferenceSession(mlp(), sess_options=so)
    assert (s.run(["y"], {"x": X})[0] > 50).all()
    m = mlp()
    m.graph.input.append(helper.make_tensor_value_info("b", TensorProto.FLOAT, [3]))
    s2 = ort.InferenceSession(m)
    assert [a.name for a in s2.get_overridable_initializers()] == ["b"]
    assert (s2.run(["y"], {"x": X, "b": b})[0] > 50).all()
    np.testing.assert_allclose(s2.run(["y"], {"x": X})[0], mlp_reference(X)[0], rtol=1e-5)


def test_profiling_writes_chrome_trace(tmp_path) -> None:  # type: ignore[no-untyped-def]
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "prof")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the MatMul node
    s = ort.InferenceSession(mlp(), sess_options=so, providers=["CPUExecutionProvider"])
    s.run(None, {"x": X})
    path = s.end_profiling()
    with open(path) as f:
        events = json.load(f)
    names = {e["name"] for e in events}
    assert {"session_initialization", "model_run", "matmul_kernel_time"} <= names
    node = next(e for e in events if e["name"] == "matmul_kernel_time")
    assert node["cat"] == "Node" and node["ph"] == "X"
    assert node["args"]["op_name"] == "MatMul" and node["args"]["provider"] == "CPUExecutionProvider"
    assert node["args"]["input_type_shape"] == [{"float": [5, 4]}, {"float": [4, 3]}]


def test_optimized_model_filepath_writes_valid_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(mlp(), sess_options=so)
    saved = onnx.load(so.optimized_model_filepath)
    onnx.checker.check_model(saved)
    y = ort.InferenceSession(saved).run(["y"], {"x": X})[0]
    np.testing.assert_allclose(y, mlp_reference(X)[0], rtol=1e-5)


def test_optimized_model_filepath_is_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    so = ort.SessionOptions()
    with pytest.raises(InvalidArgument, match="optimized_model_filepath must be a file path"):
        so.optimized_model_filepath = 5  # type: ignore[assignment]  # once taken as a file descriptor
    so.optimized_model_filepath = tmp_path / "opt.onnx"  # type: ignore[assignment]  # a PathLike is fine
    assert so.optimized_model_filepath == str(tmp_path / "opt.onnx")
    so.optimized_model_filepath = str(tmp_path / "missing" / "opt.onnx")
    with pytest.raises(InvalidArgument, match=r"cannot write optimized_model_filepath .*No such file"):
        ort.InferenceSession(mlp(), sess_options=so)
    src = tmp_path / "model.onnx"
    onnx.save_model(mlp(), str(src))
    before = src.read_bytes()
    so.optimized_model_filepath = str(src)
    with pytest.raises(InvalidArgument, match="the model's own file"):
        ort.InferenceSession(str(src), sess_options=so)
    assert src.read_bytes() == before


def test_session_config_flags_take_zero_or_one() -> None:
    so = ort.SessionOptions()
    with pytest.raises(InvalidArgument, match=r"'session\.disable_cpu_ep_fallback' must be '0' or '1'"):
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "yes")
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    so.add_session_config_entry("some.other.key", "anything")  # kept and ignored, as in onnxruntime


def test_big_endian_feed_is_read_in_native_order(sess: ort.InferenceSession) -> None:
    want = sess.run(None, {"x": X})
    got = sess.run(None, {"x": X.astype(">f4")})
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_none_feed_is_named(sess: ort.InferenceSession) -> None:
    with pytest.raises(InvalidArgument, match="input 'x' is None"):
        sess.run(None, {"x": None})


def test_outputs_never_alias_initializers() -> None:
    g = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [onnx.numpy_helper.from_array(np.ones(3, np.float32), "c")],
    )
    s = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    y = s.run(None, {})[0]
    y[:] = 7  # the caller owns its output
    np.testing.assert_array_equal(s.run(None, {})[0], np.ones(3, np.float32))


def test_errors_are_runtime_errors() -> None:
    assert issubclass(ort.Fail, RuntimeError)
    assert issubclass(ort.InvalidArgument, ValueError)
    s = ort.InferenceSession(single("Relu", ["a"], ["b"]))
    with pytest.raises(TypeError):
        ort.InferenceSession(mlp(), bogus_kwarg=1)
    with pytest.raises(InvalidArgument):
        s.run(None, [1, 2])  # type: ignore[arg-type]
