"""Loading and validation: typed, clear errors for broken model files and invalid graphs."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxlite
from onnxlite.capi.onnxruntime_pybind11_state import (
    InvalidGraph,
    InvalidProtobuf,
    NoSuchFile,
    NotImplemented,
)
from tests.models.builders import mlp, mlp_reference


def _graph_model(nodes, inputs=("x",), outputs=("y",), opsets=(("", 17),), inits=()):  # type: ignore[no-untyped-def]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(i, TensorProto.FLOAT, [2]) for i in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [2]) for o in outputs],
        list(inits),
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def test_load_from_path_bytes_and_proto(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = mlp()
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    x = np.ones((2, 4), np.float32)
    want = mlp_reference(x)
    for src in (str(p), p, m.SerializeToString(), m):
        y, z = onnxlite.InferenceSession(src).run(None, {"x": x})
        np.testing.assert_allclose(y, want[0], rtol=1e-6)
        np.testing.assert_allclose(z, want[1], rtol=1e-6)


def test_missing_file() -> None:
    with pytest.raises(NoSuchFile, match="does not exist"):
        onnxlite.InferenceSession("/nonexistent/model.onnx")


def test_corrupt_and_truncated_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf at all \xff\xfe")
    with pytest.raises(InvalidProtobuf):
        onnxlite.InferenceSession(str(bad))
    data = mlp().SerializeToString()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidProtobuf):
        onnxlite.InferenceSession(str(cut))
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InvalidProtobuf, match="empty"):
        onnxlite.InferenceSession(str(empty))


def test_an_ort_format_model_is_named_as_such(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the first bytes of onnxruntime's .ort files: a flatbuffer root offset, then "ORTM"
    ort_file = tmp_path / "model.ort"
    ort_file.write_bytes(b"\x18\x00\x00\x00ORTM" + bytes(64))
    with pytest.raises(InvalidProtobuf, match=r"ORT-format model .* load the \.onnx model"):
        onnxlite.InferenceSession(str(ort_file))


def test_cycle_is_invalid_graph() -> None:
    nodes = [
        helper.make_node("Relu", ["x2"], ["x1"], name="a"),
        helper.make_node("Relu", ["x1"], ["x2"], name="b"),
        helper.make_node("Add", ["x", "x2"], ["y"], name="c"),
    ]
    with pytest.raises(InvalidGraph, match="cycle"):
        onnxlite.InferenceSession(_graph_model(nodes))


def test_undefined_value() -> None:
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    with pytest.raises(InvalidGraph, match="ghost"):
        onnxlite.InferenceSession(_graph_model(nodes))


def test_missing_opset_import() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r", domain="custom.domain")]
    with pytest.raises(InvalidGraph, match=r"custom\.domain"):
        onnxlite.InferenceSession(_graph_model(nodes))


def test_unknown_op_names_op_domain_and_opset() -> None:
    nodes = [helper.make_node("Frobnicate", ["x"], ["y"], name="f", domain="my.ops")]
    with pytest.raises(NotImplemented) as ei:
        onnxlite.InferenceSession(_graph_model(nodes, opsets=(("", 17), ("my.ops", 3))))
    msg = str(ei.value)
    assert "Frobnicate" in msg and "my.ops" in msg and "3" in msg


def test_ir_versions_and_opsets() -> None:
    x = np.ones((2, 4), np.float32)
    for ir in range(3, onnx.IR_VERSION + 1):
        m = mlp(opset=7 if ir < 4 else 13, ir_version=ir)
        if ir < 4:  # IR 3 requires initializers to be listed as graph inputs
            for t in m.graph.initializer:
                m.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        sess = onnxlite.InferenceSession(m.SerializeToString())
        assert [i.name for i in sess.get_inputs()] == ["x"]
        np.testing.assert_allclose(sess.run(["y"], {"x": x})[0], mlp_reference(x)[0], rtol=1e-6)
    for opset in range(7, onnx.defs.onnx_opset_version() + 1):
        sess = onnxlite.InferenceSession(mlp(opset=opset, ir_version=min(onnx.IR_VERSION, 8)))
        np.testing.assert_allclose(sess.run(["z"], {"x": x})[0], mlp_reference(x)[1], rtol=1e-6)


def test_newer_ir_version_refused() -> None:
    m = mlp()
    m.ir_version = onnx.IR_VERSION + 1
    with pytest.raises(InvalidGraph, match="IR version"):
        onnxlite.InferenceSession(m.SerializeToString())


def test_external_data_beside_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = mlp()
    path = tmp_path / "ext.onnx"
    onnx.save(
        m,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert os.path.exists(tmp_path / "weights.bin")
    x = np.ones((2, 4), np.float32)
    y = onnxlite.InferenceSession(str(path)).run(["y"], {"x": x})[0]
    np.testing.assert_allclose(y, mlp_reference(x)[0], rtol=1e-6)


def test_external_data_escaping_folder_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(12, np.float32).tobytes())
    sub = tmp_path / "model"
    sub.mkdir()
    w = numpy_helper.from_array(np.zeros(12, np.float32).reshape(4, 3), "W")
    w.ClearField("float_data")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../secret.bin")
    m = mlp()
    m.graph.initializer[0].CopyFrom(w)
    onnx.save(m, sub / "m.onnx")
    with pytest.raises(InvalidGraph, match="escapes"):
        onnxlite.InferenceSession(str(sub / "m.onnx"))


def test_external_data_of_attribute_and_subgraph_tensors_is_checked_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def escaping(name: str) -> TensorProto:
        t = numpy_helper.from_array(np.zeros(3, np.float32), name)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value=f"../{name}.bin")
        return t

    const = onnx.helper.make_node("Constant", [], ["c"], value=escaping("in_attribute"))
    branch = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["k"], ["o"])],
        "b",
        [],
        [onnx.helper.make_tensor_value_info("o", TensorProto.FLOAT, [3])],
        [escaping("in_subgraph")],
    )
    cond = onnx.helper.make_node("If", ["flag"], ["o"], then_branch=branch, else_branch=branch)
    for nodes in ([const], [cond]):
        g = onnx.helper.make_graph(
            nodes,
            "g",
            [onnx.helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
            [onnx.helper.make_tensor_value_info(nodes[0].output[0], TensorProto.FLOAT, [3])],
        )
        m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)])
        (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
        with pytest.raises(InvalidGraph, match="escapes the model's folder"):
            onnxlite.InferenceSession(str(tmp_path / "m.onnx"))


def test_external_data_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = mlp()
    path = tmp_path / "ext.onnx"
    onnx.save(m, path, save_as_external_data=True, location="w.bin", size_threshold=0)
    os.remove(tmp_path / "w.bin")
    with pytest.raises(NoSuchFile, match=r"w\.bin"):
        onnxlite.InferenceSession(str(path))


@pytest.mark.parametrize(
    ("dims", "data", "message"),
    [
        ([-1], b"", r"tensor 'c' has a negative dimension in dims \[-1\]"),
        ([3], np.ones(2, np.float32).tobytes(), r"tensor 'c': its data does not fill its dims \[3\]"),
    ],
)
def test_broken_initializers_are_named(dims, data, message) -> None:  # type: ignore[no-untyped-def]
    t = numpy_helper.from_array(np.ones(3, np.float32), "c")
    t.dims[:] = dims
    t.raw_data = data
    model = _graph_model([helper.make_node("Add", ["x", "c"], ["y"])], inits=[t])
    with pytest.raises(InvalidGraph, match=message):
        onnxlite.InferenceSession(model.SerializeToString())


def test_duplicate_initializer_warns_and_uses_the_last() -> None:
    inits = [numpy_helper.from_array(np.full(2, v, np.float32), "c") for v in (1.0, 5.0)]
    model = _graph_model([helper.make_node("Add", ["x", "c"], ["y"])], inits=inits)
    with pytest.warns(UserWarning, match="duplicate initializer 'c'"):
        sess = onnxlite.InferenceSession(model.SerializeToString())
    np.testing.assert_array_equal(sess.run(None, {"x": np.zeros(2, np.float32)})[0], [5, 5])


def test_nodes_out_of_order_are_sorted_and_ordered_lists_kept_as_they_are() -> None:
    from onnxlite.ir.graph import Graph, Node
    from onnxlite.ir.load import in_order, toposort

    def node(name, ins, outs):  # type: ignore[no-untyped-def]
        return Node(name=name, op_type="Relu", inputs=list(ins), outputs=list(outs))

    a, b, c = node("a", ["x"], ["p"]), node("b", ["p"], ["q"]), node("c", ["x", "q"], ["y"])
    assert in_order([a, b, c], {"x"})
    assert toposort(Graph("g", [a, b, c], [], [], {}), {"x"}) == [a, b, c]
    assert not in_order([b, a, c], {"x"})  # b reads p before a makes it
    assert toposort(Graph("g", [b, a, c], [], [], {}), {"x"}) == [a, b, c]
    assert not in_order([node("s", ["s_out"], ["s_out"])], set())  # a node reading its own output
    assert in_order([node("d", ["outer"], ["z"])], set())  # a name no node here produces
