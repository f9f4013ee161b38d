"""Dynamic int8 chains (MatMulInteger -> Cast -> Mul [-> Add | BiasGelu]) and constant
ConstantOfShape weights on oneDNN, against the CPU provider."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import onnxlite as ort
from onnxlite.providers.dnnl import _conv, _prim
from onnxlite.quantization import quantize_dynamic

from .conftest import CPU, DNNL, assert_close, graph_model, run_both, where

rng = np.random.default_rng(5)
FLOAT = onnx.TensorProto.FLOAT


def _chain_model(tail: str, per_column: bool, rank3: bool) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    k, n = 48, 40
    x = rng.standard_normal((2, 7, k) if rank3 else (7, k)).astype(np.float32)
    inits = {
        "w": rng.integers(-127, 128, (k, n)).astype(np.int8),
        "wzp": np.array(0, np.int8),
        "ws": (rng.random(n) * 0.01 + 0.001).astype(np.float32)
        if per_column
        else np.array(0.004, np.float32),
        "b": rng.standard_normal(n).astype(np.float32),
    }
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xzp"]),
        helper.make_node("MatMulInteger", ["xq", "w", "xzp", "wzp"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=FLOAT),
        helper.make_node("Mul", ["xs", "ws"], ["s"]),
        helper.make_node("Mul", ["accf", "s"], ["y" if tail == "none" else "m"]),
    ]
    if tail == "add":
        nodes.append(helper.make_node("Add", ["b", "m"], ["y"]))
    elif tail == "biasgelu":
        nodes.append(helper.make_node("BiasGelu", ["m", "b"], ["y"], domain="com.microsoft"))
    return graph_model(nodes, {"x": x}, ["y"], inits, ms=tail == "biasgelu"), {"x": x}


@pytest.mark.parametrize("tail", ["none", "add", "biasgelu"])
@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("rank3", [False, True])
def test_chain_runs_as_one_int8_matmul(tail: str, per_column: bool, rank3: bool) -> None:
    model, feeds = _chain_model(tail, per_column, rank3)
    got, want, sd = run_both(model, feeds)
    # Same integer accumulators; only the float scaling order and GELU's erf differ.
    assert_close(got[0], want[0], 1e-5)
    placed = where(sd)
    assert placed["acc"] == placed["accf"] == placed["y"] == DNNL


def test_chain_value_used_twice_runs_node_by_node() -> None:
    model, feeds = _chain_model("none", False, False)
    model.graph.node.append(helper.make_node("Identity", ["accf"], ["z"]))
    model.graph.output.append(helper.make_value_info("z", onnx.TypeProto()))
    got, want, _ = run_both(model, feeds)
    for g, w in zip(got, want):
        assert_close(g, w, 1e-5)


def test_dynamic_quantize_linear_rounds_ties_as_onnx() -> None:
    """x / scale = 25.5 must round to 26 (onnx's backend test): the CPU provider runs it."""
    x = np.array([0.0, 2.0, -3.0, -2.5, 1.34, 0.5], np.float32)
    model = graph_model(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], {"x": x}, ["y", "s", "z"]
    )
    got, want, _ = run_both(model, {"x": x})
    np.testing.assert_array_equal(got[0], [153, 255, 0, 26, 221, 179])
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _mlp(path: str) -> dict[str, np.ndarray]:
    x = helper.make_tensor_value_info("x", FLOAT, [4, 32])
    y = helper.make_tensor_value_info("y", FLOAT, [4, 16])
    inits = [
        onnx.numpy_helper.from_array(rng.standard_normal((32, 64)).astype(np.float32), "w1"),
        onnx.numpy_helper.from_array(rng.standard_normal(64).astype(np.float32), "b1"),
        onnx.numpy_helper.from_array(rng.standard_normal((64, 16)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    g = helper.make_graph(nodes, "mlp", [x], [y], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return {"x": rng.standard_normal((4, 32)).astype(np.float32)}


@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_dynamic_model_matches_cpu(tmp_path, per_channel: bool) -> None:  # type: ignore[no-untyped-def]
    feeds = _mlp(str(tmp_path / "f.onnx"))
    quantize_dynamic(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), per_channel=per_channel)
    sd = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=[DNNL, CPU])
    sc = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=[CPU])
    assert_close(sd.run(None, feeds)[0], sc.run(None, feeds)[0], 1e-5)
    assert {st.node.op_type for st in sd._plan.steps if st.provider == CPU} <= {
        "Mul",
        "DynamicQuantizeLinear",
    }


def test_constant_of_shape_weights_are_packed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights made by ConstantOfShape (as onnx's light models have them) are one object."""
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    value = onnx.numpy_helper.from_array(np.array([0.02], np.float32))
    nodes = [
        helper.make_node("ConstantOfShape", ["wshape"], ["w"], value=value),
        helper.make_node("ConstantOfShape", ["bshape"], ["b"], value=value),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    inits = {"wshape": np.array([4, 3, 3, 3], np.int64), "bshape": np.array([4], np.int64)}
    model = graph_model(nodes, {"x": x}, ["y"], inits)
    reorders: list[tuple[int, ...]] = []

    def into(md: _prim.MD, want: _prim.MD, buf: np.ndarray) -> np.ndarray:
        out = _prim.into(md, want, buf)
        if out is not buf:
            reorders.append(want.shape)
        return out

    monkeypatch.setattr(_conv, "into", into)
    got, want, sd = run_both(model, {"x": x})
    assert_close(got[0], want[0], 1e-5)
    assert where(sd)["w"] == DNNL
    n = len(reorders)
    sd.run(None, {"x": x})
    assert n >= 1 and len(reorders) == n  # the weights were packed on the first run only
