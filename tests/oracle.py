"""Test helper: run a one-node model in onnxlite and in onnx.reference, compare the outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.reference import ReferenceEvaluator

import onnxlite
from onnxlite.types import onnx_type


def _value_info(name: str, value: Any) -> onnx.ValueInfoProto:
    if isinstance(value, list):
        elem = onnx_type(value[0].dtype) if value else onnx.TensorProto.FLOAT
        return helper.make_value_info(
            name, helper.make_sequence_type_proto(helper.make_tensor_type_proto(elem, None))
        )
    arr = np.asarray(value)
    return helper.make_tensor_value_info(name, onnx_type(arr.dtype), list(arr.shape))


def node_model(
    op_type: str,
    inputs: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    *,
    outputs: Sequence[str] = ("y",),
    opset: int = 21,
    domain: str = "",
    input_names: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """A model with one node; ``input_names`` may hold '' for skipped optional inputs."""
    names = list(input_names) if input_names is not None else list(inputs)
    node = helper.make_node(op_type, names, list(outputs), domain=domain, **(attrs or {}))
    graph = helper.make_graph(
        [node],
        "g",
        [_value_info(n, v) for n, v in inputs.items()],
        [helper.make_value_info(o, onnx.TypeProto()) for o in outputs],
    )
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def run_onnxlite(model: onnx.ModelProto, feeds: Mapping[str, Any]) -> list[Any]:
    sess = onnxlite.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(feeds))


def run_reference(model: onnx.ModelProto, feeds: Mapping[str, Any]) -> list[Any]:
    return list(ReferenceEvaluator(model).run(None, dict(feeds)))


def assert_close(got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_close(g, w, rtol, atol)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    if want.dtype == object or want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)


def check_node(
    op_type: str,
    inputs: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    **kw: Any,
) -> list[Any]:
    """Run one node in both runtimes and assert equal outputs; returns onnxlite's outputs."""
    model = node_model(op_type, inputs, attrs, **kw)
    feeds = {k: v for k, v in inputs.items()}
    got = run_onnxlite(model, feeds)
    want = run_reference(model, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w, rtol, atol)
    return got


def spec_allows(op_type: str, dtype: Any, opset: int, domain: str = "", input_index: int = 0) -> bool:
    """Whether the op's schema at ``opset`` accepts ``dtype`` for input ``input_index``.

    Types outside the schema are refused at session creation, so tests of such combinations
    expect that error instead of a result.
    """
    from onnxlite.types import elem_name

    schema = onnx.defs.get_schema(op_type, opset, domain)
    formal = schema.inputs[min(input_index, len(schema.inputs) - 1)]
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    want = f"tensor({elem_name(onnx_type(dtype))})"
    return want in allowed.get(formal.type_str, {formal.type_str})


def assert_refused_at_build(model: onnx.ModelProto) -> None:
    """Session creation fails with NotImplemented naming the op and the refused type."""
    import pytest

    with pytest.raises(onnxlite.NotImplemented) as ei:
        onnxlite.InferenceSession(model.SerializeToString())
    assert "does not accept" in str(ei.value)
