"""Refresh the graph's value types with ONNX shape inference (data propagation on).

Rewrites expose shapes that inference could not see at load (a Reshape whose shape became a
constant, a Shape chain that folded), and fusions shadow ops onnx has no schema for. Inference
runs on a light copy of the model (large initializers become typed inputs), where each
com.microsoft op this optimizer emits stands in as standard ops with the same output shapes.

Symbolic dims are only compared within one inference run: a type inference cannot rederive keeps
its static dims and loses its symbols, so two values never look equal by accident.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..ir.graph import Graph, Model, Node
from ..ir.load import SMALL_INITIALIZER
from ..ir.save import _node_to_proto
from ..types import onnx_type
from .base import MS_DOMAIN

_ACT_ATTRS = ("activation", "activation_params", "activation_alpha", "activation_beta", "activation_gamma")


def refresh_types(model: Model) -> None:
    """Replace ``value_info`` of the graph (and subgraphs) with a fresh inference, in place."""
    try:
        g = _types_graph(model.graph)
        opsets = [helper.make_opsetid(d, v) for d, v in model.opsets.items()]
        m = helper.make_model(g, opset_imports=opsets, ir_version=max(model.ir_version, 4))
    except Exception:
        return  # keep the types we have: less information, never wrong
    inferred = None
    for data_prop in (True, False):  # without data propagation where it fails
        try:
            inferred = onnx.shape_inference.infer_shapes(
                m, check_type=False, strict_mode=False, data_prop=data_prop
            )
            break
        except Exception:
            continue
    if inferred is None:
        return
    _apply(model.graph, inferred.graph, {})


def _types_graph(g: Graph) -> onnx.GraphProto:
    nodes: list[onnx.NodeProto] = []
    extra_inputs: list[onnx.ValueInfoProto] = []
    opaque: list[str] = []
    for n in g.nodes:
        proxy = _proxy(n, g) if n.domain not in ("", "ai.onnx") else None
        if proxy is not None:
            pnodes, pinputs = proxy
            nodes.extend(pnodes)
            extra_inputs.extend(pinputs)
            continue
        if n.domain not in ("", "ai.onnx"):
            opaque.extend(o for o in n.outputs if o)
        nodes.append(_node_to_proto(n))
    inputs = [_vi(v.name, v.type) for v in g.inputs]
    declared = {v.name for v in g.inputs}
    inits = []
    for name, arr in g.initializers.items():
        if _value_needed(arr):
            try:
                inits.append(numpy_helper.from_array(arr, name))
                continue
            except Exception:
                pass
        if name not in declared:
            inputs.append(_array_vi(name, arr) if isinstance(arr, np.ndarray) else _vi(name, g.type_of(name)))
    vinfo = [_vi(name, g.value_info.get(name)) for name in opaque if name in g.value_info]
    gp = helper.make_graph(
        nodes,
        g.name or "g",
        inputs + extra_inputs,
        [_vi(v.name, v.type) for v in g.outputs],
        initializer=inits,
        value_info=vinfo,
    )
    return gp


# Float initializers up to this many elements keep their values for inference (Resize scales, Pad
# values); larger ones (weights, normalization parameters) only their types. Integer ones (shape
# vectors, axes, indices) keep their values up to SMALL_INITIALIZER elements.
_FLOAT_VALUES = 64


def _value_needed(arr: Any) -> bool:
    size = getattr(arr, "size", SMALL_INITIALIZER + 1)
    if size > SMALL_INITIALIZER:
        return False
    return size <= _FLOAT_VALUES or getattr(arr, "dtype", None) is None or arr.dtype.kind not in "fc"


def _array_vi(name: str, arr: np.ndarray) -> onnx.ValueInfoProto:
    """A typed input standing for an initializer whose value inference does not need."""
    try:
        elem = onnx_type(arr.dtype)
    except TypeError:
        return onnx.ValueInfoProto(name=name)
    vi = onnx.ValueInfoProto(name=name)
    tt = vi.type.tensor_type
    tt.elem_type = elem
    tt.shape.SetInParent()
    for d in arr.shape:
        tt.shape.dim.add().dim_value = d
    return vi


def _vi(name: str, tp: onnx.TypeProto | None) -> onnx.ValueInfoProto:
    vi = onnx.ValueInfoProto(name=name)
    if tp is not None:
        vi.type.CopyFrom(tp)
    return vi


def _apply(g: Graph, gp: onnx.GraphProto, outer: dict[str, onnx.TypeProto]) -> None:
    new: dict[str, onnx.TypeProto] = dict(outer)
    for vi in list(gp.value_info) + list(gp.output):
        if vi.HasField("type"):
            new[vi.name] = vi.type
    for v in g.inputs:
        if v.type is not None:
            new[v.name] = v.type
    produced = {o for n in g.nodes for o in n.outputs if o}
    for name, tp in g.value_info.items():
        if name not in new and name in produced:
            new[name] = _static_only(tp)
    g.value_info = new
    # Subgraphs: nodes with graph attributes were copied one to one, in order.
    holders = [n for n in g.nodes if n.graphs()]
    if not holders:
        return
    sub_protos = [p for p in gp.node if any(_graph_attr(a) for a in p.attribute)]
    if len(sub_protos) != len(holders):
        return
    for n, p in zip(holders, sub_protos):
        protos = []
        for a in p.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                protos.append(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                protos.extend(a.graphs)
        for (_, sub), sp in zip(n.graphs(), protos):
            _apply(sub, sp, new)


def _graph_attr(a: onnx.AttributeProto) -> bool:
    return a.type == onnx.AttributeProto.GRAPH or (a.type == onnx.AttributeProto.GRAPHS and len(a.graphs) > 0)


def _static_only(tp: onnx.TypeProto) -> onnx.TypeProto:
    """The type with symbolic dims forgotten (symbols from an older inference run)."""
    if not (tp.HasField("tensor_type") and tp.tensor_type.HasField("shape")):
        return tp
    out = onnx.TypeProto()
    out.CopyFrom(tp)
    for d in out.tensor_type.shape.dim:
        if d.HasField("dim_param"):
            d.ClearField("dim_param")
    return out


# ----------------------------------------------------------------------------- shape proxies


def _proxy(n: Node, g: Graph) -> tuple[list[onnx.NodeProto], list[onnx.ValueInfoProto]] | None:
    """Standard ops computing the output shapes of a com.microsoft op, where it is simple."""
    if n.domain != MS_DOMAIN or not n.outputs:
        return None
    op, ins, outs = n.op_type, [i for i in n.inputs], n.outputs
    attrs = {k: v for k, v in n.attrs.items() if k not in _ACT_ATTRS}
    mk = helper.make_node
    if op in ("Gelu", "FastGelu", "BiasGelu", "QuickGelu"):
        real = [i for i in ins if i]
        if len(real) >= 2:
            return [mk("Add", real[:2], outs[:1])], []
        return [mk("Identity", real[:1], outs[:1])], []
    if op == "FusedConv":
        return [_with_attrs(mk("Conv", [i for i in ins[:3]], outs[:1]), attrs)], []
    if op == "FusedGemm":
        return [_with_attrs(mk("Gemm", ins[:3], outs[:1]), attrs)], []
    if op == "FusedMatMul":
        return _fused_matmul_proxy(n, g)
    if op in ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"):
        nodes = [mk("Identity", ins[:1], outs[:1])]
        if len(outs) > 3 and outs[3]:
            nodes.append(mk("Identity", ins[:1], outs[3:4]))
        return nodes, []
    if op in ("Attention", "MultiHeadAttention"):
        return _attention_proxy(n, g)
    return None


def _with_attrs(p: onnx.NodeProto, attrs: dict[str, Any]) -> onnx.NodeProto:
    from ..ir.graph import to_attribute

    p.attribute.extend(to_attribute(k, v) for k, v in attrs.items())
    return p


def _type(g: Graph, name: str) -> onnx.TypeProto | None:
    tp = g.type_of(name)
    if tp is None:
        tp = next((v.type for v in g.inputs if v.name == name), None)
    return tp


def _rank(g: Graph, name: str) -> int | None:
    tp = _type(g, name)
    if tp is None or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return None
    return len(tp.tensor_type.shape.dim)


def _fused_matmul_proxy(n: Node, g: Graph) -> Any:
    if n.attrs.get("transBatchA") or n.attrs.get("transBatchB"):
        return None
    nodes = []
    ins = list(n.inputs[:2])
    for k, flag in enumerate(("transA", "transB")):
        if n.attrs.get(flag):
            r = _rank(g, ins[k])
            if r is None or r < 2:
                return None
            perm = [*range(r - 2), r - 1, r - 2]
            t = f"{n.outputs[0]}__shape_proxy_{k}"
            nodes.append(helper.make_node("Transpose", [ins[k]], [t], perm=perm))
            ins[k] = t
    nodes.append(helper.make_node("MatMul", ins, n.outputs[:1]))
    return nodes, []


def _attention_proxy(n: Node, g: Graph) -> Any:
    """Attention / MultiHeadAttention output 0 is (batch, seq, v_hidden): a MatMul by a typed
    placeholder of shape (hidden_in, v_hidden) gives the same shape."""
    x = n.inputs[0]
    tp = _type(g, x)
    if tp is None or _rank(g, x) != 3:
        return None
    if n.op_type == "Attention":
        w = g.initializers.get(n.inputs[1]) if len(n.inputs) > 1 else None
        if w is None or w.ndim != 2:
            return None
        sizes = n.attrs.get("qkv_hidden_sizes")
        hv = int(sizes[2]) if sizes else int(w.shape[1]) // 3
        h_in = int(w.shape[0])
    else:
        if len(n.inputs) < 3 or _rank(g, n.inputs[2]) != 3:
            return None
        vt = _type(g, n.inputs[2])
        hv_dim = vt.tensor_type.shape.dim[2]  # type: ignore[union-attr]
        h_dim = tp.tensor_type.shape.dim[2]
        if not (hv_dim.HasField("dim_value") and h_dim.HasField("dim_value")):
            return None
        hv, h_in = int(hv_dim.dim_value), int(h_dim.dim_value)
    placeholder = f"{n.outputs[0]}__shape_proxy_w"
    vi = helper.make_tensor_value_info(placeholder, tp.tensor_type.elem_type, [h_in, hv])
    return [helper.make_node("MatMul", [x, placeholder], n.outputs[:1])], [vi]
