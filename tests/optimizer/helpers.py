"""Helpers for the optimizer tests: build small models, run passes, compare outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import onnxlite
from onnxlite.ir.graph import Model
from onnxlite.ir.load import load_model
from onnxlite.ir.save import model_to_proto
from onnxlite.optimizer import ALL_PASSES, PassContext, run_passes
from onnxlite.types import onnx_type

Spec = tuple[Any, Any]  # (numpy dtype, shape with ints / names / None)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, Spec],
    outputs: Mapping[str, Spec] | Sequence[str],
    inits: Mapping[str, np.ndarray] | None = None,
    *,
    opset: int = 17,
    ir_version: int = 8,
    ms: bool = False,
) -> onnx.ModelProto:
    """A model; outputs given by name alone get the type shape inference finds for them."""
    if isinstance(outputs, Mapping):
        outs = [helper.make_tensor_value_info(n, onnx_type(np.dtype(t)), s) for n, (t, s) in outputs.items()]
    else:
        outs = [helper.make_value_info(n, onnx.TypeProto()) for n in outputs]
    g = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(n, onnx_type(np.dtype(t)), s) for n, (t, s) in inputs.items()],
        outs,
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    if ms:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(g, opset_imports=opsets, ir_version=ir_version)
    if not isinstance(outputs, Mapping):
        inferred = onnx.shape_inference.infer_shapes(model)
        types = {v.name: v.type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        for o in model.graph.output:
            if o.name in types and types[o.name].WhichOneof("value"):
                o.type.CopyFrom(types[o.name])
    return model


def run(
    proto: onnx.ModelProto, *names: str, check_kernels: bool = True, rounds: int = 8
) -> tuple[Model, list[str]]:
    """Load ``proto`` and run the named passes to a fixed point; (IR model, passes that changed)."""
    m = load_model(proto.SerializeToString())
    ctx = PassContext.for_model(m, check_kernels=check_kernels)
    changed = run_passes(m, [ALL_PASSES[n] for n in names], ctx, max_rounds=rounds)
    return m, changed


def ops(m: Model | onnx.ModelProto) -> list[str]:
    nodes = m.graph.node if isinstance(m, onnx.ModelProto) else m.graph.nodes
    return [n.op_type for n in nodes]


def to_proto(m: Model) -> onnx.ModelProto:
    p = model_to_proto(m)
    onnx.checker.check_model(p)
    return p


def run_lite(model: onnx.ModelProto | Model, feeds: Mapping[str, Any]) -> list[np.ndarray]:
    proto = model if isinstance(model, onnx.ModelProto) else model_to_proto(model)
    return onnxlite.InferenceSession(proto.SerializeToString()).run(None, dict(feeds))


def assert_close(got: Sequence[np.ndarray], want: Sequence[np.ndarray], rel: float = 1e-5) -> None:
    """Equal shapes and dtypes, values within ``rel`` of the output's largest magnitude."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        if w.dtype.kind in "fc":
            scale = max(float(np.nanmax(np.abs(w))) if w.size else 0.0, 1e-30)
            np.testing.assert_allclose(g, w, rtol=0, atol=rel * scale)
        else:
            np.testing.assert_array_equal(g, w)


def check_same(before: onnx.ModelProto, after: Model, feeds: Mapping[str, Any], rel: float = 1e-5) -> None:
    """The optimized model passes onnx.checker and matches the original in onnxlite."""
    assert_close(run_lite(to_proto(after), feeds), run_lite(before, feeds), rel)


def check_ort(after: Model, feeds: Mapping[str, Any], want: Sequence[np.ndarray], rel: float = 1e-4) -> None:
    """onnxruntime loads and runs the optimized model (its own optimizations off)."""
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(to_proto(after).SerializeToString(), so, providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, dict(feeds)), want, rel)


def rand(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


F32 = np.float32
I64 = np.int64
