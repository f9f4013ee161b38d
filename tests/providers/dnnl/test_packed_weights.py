"""Weights packed at session creation replace the initializer arrays (held once, not twice) in
sessions made from a file, which can load the model again to rebuild (set_providers)."""

from __future__ import annotations

import numpy as np
from onnx import helper

import onnxlite as ort

from .conftest import CPU, DNNL, assert_close, graph_model, tensor_info, unoptimized


def _model(shared: bool = False):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    inits = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "b1": rng.standard_normal(8).astype(np.float32),
        "w2": rng.standard_normal((8, 8, 3, 3)).astype(np.float32),
        "fc": rng.standard_normal((10, 8 * 6 * 6)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w1" if shared else "w2"], ["c2"]),
        helper.make_node("Flatten", ["c2"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    if shared:
        inits["w1"] = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
        inits["w0"] = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
        nodes[0] = helper.make_node("Conv", ["x", "w0", "b1"], ["c1"], pads=[1, 1, 1, 1])
        nodes[2] = helper.make_node("Conv", ["r1", "w1"], ["c2a"])
        nodes.insert(3, helper.make_node("Conv", ["c2a", "w1"], ["c2"], pads=[1, 1, 1, 1]))
        del inits["w2"]
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    return graph_model(nodes, {"x": x}, ["y"], inits), x, inits


def _stand_in(a: object) -> bool:
    return isinstance(a, np.ndarray) and a.size > 0 and all(s == 0 for s in a.strides)


def _file(tmp_path, data: bytes) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    return str(path)


def test_packed_weights_free_the_arrays_and_give_the_same_answer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, x, inits = _model()
    model.graph.input.append(tensor_info("w2", inits["w2"]))  # overridable (IR >= 4)
    data = model.SerializeToString()
    sd = ort.InferenceSession(_file(tmp_path, data), sess_options=unoptimized(), providers=[DNNL, CPU])
    sc = ort.InferenceSession(data, sess_options=unoptimized(), providers=[CPU])
    held = sd._model.graph.initializers
    assert _stand_in(held["w1"]) and _stand_in(held["w2"]) and _stand_in(held["fc"])
    assert not _stand_in(held["b1"])  # the bias is read as given
    want = sc.run(None, {"x": x})[0]
    for _ in range(3):
        assert_close(sd.run(None, {"x": x})[0], want)
    # a fed initializer (IR >= 4) is used instead, and the packed weights again afterwards
    w2 = inits["w2"] * 2
    fed = sd.run(None, {"x": x, "w2": w2})[0]
    assert_close(fed, sc.run(None, {"x": x, "w2": w2})[0])
    assert_close(sd.run(None, {"x": x})[0], want)


def test_an_initializer_read_by_two_nodes_keeps_its_array(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, x, _ = _model(shared=True)
    data = model.SerializeToString()
    sd = ort.InferenceSession(_file(tmp_path, data), sess_options=unoptimized(), providers=[DNNL, CPU])
    sc = ort.InferenceSession(data, sess_options=unoptimized(), providers=[CPU])
    held = sd._model.graph.initializers
    assert not _stand_in(held["w1"]) and _stand_in(held["w0"])
    assert_close(sd.run(None, {"x": x})[0], sc.run(None, {"x": x})[0])
    assert_close(sd.run(None, {"x": x})[0], sc.run(None, {"x": x})[0])


def test_weights_read_twice_by_one_node_keep_their_array() -> None:
    w = np.random.default_rng(1).standard_normal((24, 24)).astype(np.float32)
    model = graph_model([helper.make_node("MatMul", ["w", "w"], ["y"])], {}, ["y"], {"w": w})
    sd = ort.InferenceSession(model.SerializeToString(), sess_options=unoptimized(), providers=[DNNL, CPU])
    assert not _stand_in(sd._model.graph.initializers["w"])
    assert_close(sd.run(None, {})[0], w @ w)


def test_a_session_from_bytes_keeps_its_arrays() -> None:
    # nothing to load again from: the graph keeps the weights for a rebuild
    model, x, _ = _model()
    data = model.SerializeToString()
    sd = ort.InferenceSession(data, sess_options=unoptimized(), providers=[DNNL, CPU])
    assert not any(_stand_in(a) for a in sd._model.graph.initializers.values())
    sc = ort.InferenceSession(data, sess_options=unoptimized(), providers=[CPU])
    assert_close(sd.run(None, {"x": x})[0], sc.run(None, {"x": x})[0])
