"""_types: shape inference refreshed over fused ops through their standard-op proxies."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxlite.ir.load import load_model
from onnxlite.optimizer._graphutil import GraphIndex
from onnxlite.optimizer._types import refresh_types
from onnxlite.optimizer.base import PassContext

from .helpers import F32, make_model, rand

mk = helper.make_node


def _dims(m, name):  # type: ignore[no-untyped-def]
    idx = GraphIndex(m.graph, PassContext.for_model(m))
    return idx.dims(name)


def test_types_flow_through_fused_ops() -> None:
    nodes = [
        mk("FusedConv", ["x", "w"], ["c"], domain="com.microsoft", activation="Relu", pads=[1, 1, 1, 1]),
        mk("Gelu", ["c"], ["g"], domain="com.microsoft"),
        mk("FusedMatMul", ["g", "k"], ["f"], domain="com.microsoft", transB=1),
        mk("SkipLayerNormalization", ["a", "a", "gamma"], ["s"], domain="com.microsoft"),
        mk("Attention", ["a", "wqkv"], ["att"], domain="com.microsoft", num_heads=2),
        mk("Relu", ["f"], ["y"]),
        mk("Add", ["s", "att"], ["z"]),
    ]
    inits = {"w": rand(4, 3, 3, 3), "k": rand(4, 5, 6), "gamma": rand(8), "wqkv": rand(8, 24)}
    proto = make_model(
        nodes,
        {"x": (F32, ["N", 3, 6, 6]), "a": (F32, ["B", 5, 8])},
        {"y": (F32, None), "z": (F32, None)},
        inits,
        ms=True,
    )
    m = load_model(proto.SerializeToString())
    m.graph.value_info.clear()
    refresh_types(m)
    assert _dims(m, "c") == ["N", 4, 6, 6]
    assert _dims(m, "y") == ["N", 4, 6, 5]
    assert _dims(m, "z") == ["B", 5, 8]


def test_types_inference_cannot_rederive_keep_only_static_dims() -> None:
    nodes = [mk("Custom", ["x"], ["c"], domain="com.microsoft"), mk("Relu", ["c"], ["y"])]
    proto = make_model(nodes, {"x": (F32, ["N", 3])}, {"y": (F32, ["N", 3])}, ms=True)
    m = load_model(proto.SerializeToString())
    m.graph.value_info["c"] = helper.make_tensor_type_proto(1, ["N", 3])
    m.graph.value_info["stale"] = helper.make_tensor_type_proto(1, ["Q", 3])
    refresh_types(m)
    assert _dims(m, "c") == ["N", 3]  # an opaque op's output keeps its type
    assert "stale" not in m.graph.value_info
    assert np.array_equal(_dims(m, "y"), ["N", 3])
