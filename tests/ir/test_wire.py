"""Weights read apart from the model structure: same values as a whole parse, typed errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxlite.capi.onnxruntime_pybind11_state import InvalidGraph, InvalidProtobuf
from onnxlite.ir import _wire, load


@pytest.fixture
def split_everything(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(load, "_SPLIT_SIZE", 0)
    monkeypatch.setattr(_wire, "MIN_PAYLOAD", 1)


def _model_with(inits: list[TensorProto]) -> onnx.ModelProto:
    nodes = [helper.make_node("Identity", [t.name], [f"out_{t.name}"]) for t in inits]
    outs = [helper.make_tensor_value_info(f"out_{t.name}", t.data_type, None) for t in inits]
    g = helper.make_graph(nodes, "g", [], outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_split_load_matches_whole_parse(tmp_path, split_everything) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "i64": np.arange(7, dtype=np.int64),
        "f16": rng.standard_normal(6).astype(np.float16),
        "b": np.array([True, False, True]),
        "u8": np.arange(9, dtype=np.uint8).reshape(3, 3),
        "scalar": np.array(2.5, dtype=np.float64),
    }
    inits = [numpy_helper.from_array(a, k) for k, a in arrays.items()]
    inits.append(helper.make_tensor("bf16", TensorProto.BFLOAT16, [2], [1.0, -2.0]))
    inits.append(helper.make_tensor("s", TensorProto.STRING, [2], [b"ab", b"c"]))
    p = tmp_path / "m.onnx"
    onnx.save(_model_with(inits), p)

    _, _, weights = load.read_model(str(p))
    assert set(weights) == set(arrays)  # the plain numeric ones were read apart
    model = load.load_model(str(p))
    for t in onnx.load(p).graph.initializer:
        want = numpy_helper.to_array(t)
        got = model.graph.initializers[t.name]
        if t.data_type == TensorProto.STRING:
            assert list(got.reshape(-1)) == ["ab", "c"]
        elif t.data_type == TensorProto.BFLOAT16:
            np.testing.assert_array_equal(np.asarray(got, np.float32), [1.0, -2.0])
        else:
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)


def test_split_payload_with_wrong_length_is_invalid_graph(tmp_path, split_everything) -> None:  # type: ignore[no-untyped-def]
    t = numpy_helper.from_array(np.zeros((2, 2), np.float32), "w")
    t.dims[:] = [3, 2]  # 16 bytes of data for 24 expected
    p = tmp_path / "m.onnx"
    p.write_bytes(_model_with([t]).SerializeToString())
    with pytest.raises(InvalidGraph, match=r"'w'.*corrupt"):
        load.load_model(str(p))


def test_split_truncated_file_is_invalid_protobuf(tmp_path, split_everything) -> None:  # type: ignore[no-untyped-def]
    t = numpy_helper.from_array(np.ones((64,), np.float32), "w")
    data = _model_with([t]).SerializeToString()
    p = tmp_path / "m.onnx"
    p.write_bytes(data[: len(data) - 40])
    with pytest.raises(InvalidProtobuf):
        load.load_model(str(p))


def test_wire_split_of_bytes_round_trips_structure() -> None:
    t = numpy_helper.from_array(np.arange(100000, dtype=np.float32), "w")
    m = _model_with([t])
    m.doc_string = "kept"
    data = m.SerializeToString()
    structure, payloads = _wire.split(data)
    assert len(payloads) == 1 and payloads[0].length == 400000
    assert data[payloads[0].offset : payloads[0].offset + 400000] == t.raw_data
    parsed = onnx.ModelProto.FromString(structure)
    assert parsed.doc_string == "kept" and parsed.graph.initializer[0].raw_data == b""
    assert list(parsed.graph.initializer[0].dims) == [100000]
