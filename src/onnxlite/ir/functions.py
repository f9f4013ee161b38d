"""Function-body fallback: expand a node whose op has no kernel into its schema's function body."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import onnx
from onnx import helper

from .graph import Graph, Node, node_from_proto, to_attribute

_counter = itertools.count()


def _function_body(
    node: Node, opsets: Mapping[str, int], input_types: list[Any]
) -> onnx.FunctionProto | None:
    dom = "" if node.domain == "ai.onnx" else node.domain
    opset = node.opset_override.get(dom) if node.opset_override else None
    opset = opset or opsets.get(dom)
    if opset is None:
        return None
    try:
        schema: Any = onnx.defs.get_schema(node.op_type, opset, dom)
    except Exception:
        return None

    def pick(versions: list[int]) -> int | None:
        ok = [v for v in versions if v <= opset]
        return max(ok) if ok else None

    if schema.has_function:
        v = pick(list(schema.function_opset_versions))
        if v is not None:
            return _as_function(schema.get_function_with_opset_version(v))
    if schema.has_context_dependent_function:
        v = pick(list(schema.context_dependent_function_opset_versions))
        if v is None or any(t is None for t in input_types):
            return None
        proto = node_proto(node)
        try:
            raw = schema.get_context_dependent_function_with_opset_version(
                v, proto.SerializeToString(), [t.SerializeToString() for t in input_types]
            )
        except Exception:
            return None
        return _as_function(raw)
    return None


def _as_function(raw: Any) -> onnx.FunctionProto | None:
    if raw is None:
        return None
    if isinstance(raw, onnx.FunctionProto):
        return raw
    f = onnx.FunctionProto()
    f.ParseFromString(raw)
    return f


def node_proto(node: Node) -> onnx.NodeProto:
    """A NodeProto for a node without subgraph attributes (for the schema's function builder)."""
    p = helper.make_node(node.op_type, node.inputs, node.outputs, name=node.name, domain=node.domain)
    p.attribute.extend(to_attribute(k, v) for k, v in node.attrs.items() if not isinstance(v, Graph))
    return p


def expand_node(node: Node, opsets: Mapping[str, int], input_types: list[Any]) -> list[Node] | None:
    """The nodes of the op's function body, wired to the node's inputs and outputs, or None."""
    fn = _function_body(node, opsets, input_types)
    if fn is None:
        return None
    tag = f"{node.name}__{next(_counter)}"
    rename: dict[str, str] = {"": ""}
    for formal, actual in zip(fn.input, node.inputs):
        rename[formal] = actual
    for formal in fn.input[len(node.inputs) :]:
        rename[formal] = ""
    for formal, actual in zip(fn.output, node.outputs):
        rename[formal] = actual
    call_attrs = {k: v for k, v in node.attrs.items()}
    defaults = {a.name: a for a in fn.attribute_proto}
    body_opsets = {("" if o.domain == "ai.onnx" else o.domain): o.version for o in fn.opset_import}
    out: list[Node] = []
    for i, p in enumerate(fn.node):
        new = onnx.NodeProto()
        new.CopyFrom(p)
        del new.attribute[:]
        for a in p.attribute:
            if a.ref_attr_name:
                if a.ref_attr_name in call_attrs:
                    v = call_attrs[a.ref_attr_name]
                    new.attribute.append(to_attribute(a.name, v))
                elif a.ref_attr_name in defaults:
                    d = onnx.AttributeProto()
                    d.CopyFrom(defaults[a.ref_attr_name])
                    d.name = a.name
                    new.attribute.append(d)
            else:
                new.attribute.append(a)
        for lst in (new.input, new.output):
            for j, name in enumerate(lst):
                if name not in rename:
                    rename[name] = f"{tag}/{name}"
                lst[j] = rename[name]
        n = node_from_proto(new, None, {}, i)
        n.name = f"{tag}/{n.name}"
        n.opset_override = body_opsets
        out.append(n)
    return out


def expand_functions(
    graph: Graph,
    opsets: Mapping[str, int],
    has_kernel: Callable[[Node], bool],
    type_of: Callable[[str], Any],
    depth: int = 0,
) -> bool:
    """Replace, in place, nodes no provider can run by their function bodies; True if any changed."""
    changed = False
    nodes: list[Node] = []
    for node in graph.nodes:
        if has_kernel(node):
            nodes.append(node)
            continue
        body = expand_node(node, opsets, [type_of(n) if n else None for n in node.inputs])
        if body is None or depth > 8:
            nodes.append(node)
            continue
        sub = Graph(graph.name, body, [], [], {}, graph.value_info)
        expand_functions(sub, opsets, has_kernel, type_of, depth + 1)
        nodes.extend(sub.nodes)
        changed = True
    graph.nodes = nodes
    return changed
