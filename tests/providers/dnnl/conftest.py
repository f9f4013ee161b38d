"""Shared helpers for the oneDNN provider tests; every test here skips without the library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper

import onnxlite as ort
from onnxlite import providers as providers_mod
from onnxlite.providers.dnnl import DnnlExecutionProvider
from onnxlite.types import onnx_type

DNNL = "DnnlExecutionProvider"
CPU = "CPUExecutionProvider"

_why = DnnlExecutionProvider.availability()
if _why is not None:  # the same message availability() gives a user
    pytest.skip(f"oneDNN not available: {_why}", allow_module_level=True)


@pytest.fixture(autouse=True)
def dnnl_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the provider known to sessions (a no-op once PROVIDER_CLASSES lists it); the tests'
    small weights are claimed like large ones, so that they exercise the oneDNN kernels."""
    from onnxlite.providers.dnnl import provider as dnnl_provider

    monkeypatch.setattr(dnnl_provider, "SMALL_WEIGHTS", 0)
    if DNNL not in providers_mod.PROVIDER_CLASSES:
        monkeypatch.setitem(providers_mod.PROVIDER_CLASSES, DNNL, DnnlExecutionProvider)


def tensor_info(name: str, arr: Any) -> onnx.ValueInfoProto:
    a = np.asarray(arr)
    return helper.make_tensor_value_info(name, onnx_type(a.dtype), list(a.shape))


def graph_model(
    nodes: Sequence[onnx.NodeProto],
    feeds: Mapping[str, np.ndarray],
    outputs: Sequence[str],
    inits: Mapping[str, np.ndarray] | None = None,
    opset: int = 17,
    ms: bool = False,
) -> onnx.ModelProto:
    g = helper.make_graph(
        list(nodes),
        "g",
        [tensor_info(k, v) for k, v in feeds.items()],
        [helper.make_value_info(o, onnx.TypeProto()) for o in outputs],
        [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    imports = [helper.make_opsetid("", opset)]
    if ms:
        imports.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(g, opset_imports=imports, ir_version=8)
    # Declare the outputs' types, as exporters do.
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {v.name: v.type for v in inferred.graph.value_info}
    known.update({v.name: v.type for v in inferred.graph.output})
    for o in model.graph.output:
        if o.name in known:
            o.type.CopyFrom(known[o.name])
    return model


def unoptimized() -> ort.SessionOptions:
    """Session options that keep the graph as built (no fusions), so tests see its nodes."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return so


def run_both(
    model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]
) -> tuple[list[Any], list[Any], ort.InferenceSession]:
    """Outputs with [Dnnl, CPU] and with CPU alone (graphs unoptimized), and the Dnnl session."""
    data = model.SerializeToString()
    sd = ort.InferenceSession(data, sess_options=unoptimized(), providers=[DNNL, CPU])
    sc = ort.InferenceSession(data, sess_options=unoptimized(), providers=[CPU])
    return sd.run(None, dict(feeds)), sc.run(None, dict(feeds)), sd


def where(sess: ort.InferenceSession) -> dict[str, str]:
    """Provider of each node, by node output name."""
    return {st.node.outputs[0]: st.provider for st in sess._plan.steps}


def assert_close(got: Any, want: Any, rel: float = 1e-4) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.size == 0:
        return
    scale = max(float(np.abs(want).max()), 1e-30)
    err = float(np.abs(got.astype(np.float64) - want).max()) / scale
    assert err <= rel, f"max relative difference {err:.3g} > {rel}"


def check_op(
    op: str,
    feeds: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
    *,
    inits: Mapping[str, np.ndarray] | None = None,
    inputs: Sequence[str] | None = None,
    n_out: int = 1,
    opset: int = 17,
    domain: str = "",
    on_dnnl: bool = True,
    rel: float = 1e-4,
    lsb: int | None = None,
) -> ort.InferenceSession:
    """One node on [Dnnl, CPU] against CPU alone; asserts where the node ran."""
    names = list(inputs) if inputs is not None else [*feeds, *(inits or {})]
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, domain=domain, **(attrs or {}))
    model = graph_model([node], feeds, outs, inits, opset=opset, ms=bool(domain))
    got, want, sd = run_both(model, feeds)
    for g, w in zip(got, want):
        if lsb is None:
            assert_close(g, w, rel)
        else:  # quantized outputs: rounding may differ by one step on rare ties
            assert g.dtype == w.dtype and g.shape == w.shape
            diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
            assert diff.max(initial=0) <= lsb and (diff > 0).mean() < 0.01, diff.max(initial=0)
    assert where(sd)["y0"] == (DNNL if on_dnnl else CPU)
    return sd
