"""A small graph IR over the ONNX protobuf: Model, Graph, Node, ValueInfo.

Values are named by strings as in ONNX; the plan maps them to integer slots. Attributes hold
Python values (see :mod:`.attributes`); graph attributes hold nested :class:`Graph` objects.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import onnx
from onnx import TypeProto

from .attributes import attribute_value, sparse_to_dense, tensor_to_array


@dataclass
class ValueInfo:
    name: str
    type: TypeProto | None = None
    doc: str = ""


class InternalAttr:
    """Base of attribute values that are onnxlite's own execution details (the function a
    Gradient node differentiates, :mod:`.gradient`): never written to a model."""


# Nodes compare (and hash) by identity: two nodes with the same fields are still two nodes, and
# list.index / ``in`` on node lists then cost one comparison each, not a comparison of all fields.
@dataclass(eq=False)
class Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    domain: str = ""
    doc: str = ""
    # Opsets a function body was written for, when they differ from the model's.
    opset_override: dict[str, int] | None = None

    def graphs(self) -> list[tuple[str, Graph]]:
        """(attribute name, subgraph) pairs, GRAPHS attributes flattened."""
        out: list[tuple[str, Graph]] = []
        for k, v in self.attrs.items():
            t = type(v)
            if t is Graph:
                out.append((k, v))
            elif t is list and v and type(v[0]) is Graph:
                out.extend((k, g) for g in v)
        return out

    def describe(self) -> str:
        dom = f"{self.domain}:" if self.domain else ""
        return f"node {self.name!r} ({dom}{self.op_type})"


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    initializers: dict[str, Any]
    value_info: dict[str, TypeProto] = field(default_factory=dict)
    doc: str = ""

    def type_of(self, name: str) -> TypeProto | None:
        """The value's type where known: declared, inferred, or read off an initializer."""
        tp = self.value_info.get(name)
        if tp is None and name in self.initializers:
            from onnx import helper

            from ..types import onnx_type

            arr = self.initializers[name]
            try:
                tp = helper.make_tensor_type_proto(onnx_type(arr.dtype), list(arr.shape))
            except TypeError:
                return None
            self.value_info[name] = tp
        return tp

    def free_names(self) -> set[str]:
        """Names this graph (or its subgraphs) reads but does not define: outer-scope references."""
        defined = {v.name for v in self.inputs} | set(self.initializers)
        used: set[str] = set()
        for n in self.nodes:
            used.update(i for i in n.inputs if i)
            for _, g in n.graphs():
                used |= g.free_names()
            defined.update(n.outputs)
        used.update(o.name for o in self.outputs)
        return used - defined


@dataclass
class Model:
    graph: Graph
    opsets: dict[str, int]
    ir_version: int
    producer_name: str = ""
    producer_version: str = ""
    domain: str = ""
    model_version: int = 0
    doc: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    functions: dict[tuple[str, str], onnx.FunctionProto] = field(default_factory=dict)


def graph_from_proto(
    g: onnx.GraphProto,
    base_dir: str | None,
    types: dict[str, TypeProto],
    weights: dict[str, Any] | None = None,
) -> Graph:
    """Convert a GraphProto (recursively) into the IR, initializers as numpy arrays.

    ``weights`` are initializers already read as arrays (their protos carry no data).
    """
    inits: dict[str, Any] = {}
    for t in g.initializer:
        if t.name in inits:
            warnings.warn(
                f"duplicate initializer {t.name!r}: the last one is used (as in onnxruntime); fix the model",
                stacklevel=2,
            )
        inits[t.name] = weights[t.name] if weights and t.name in weights else tensor_to_array(t, base_dir)
    for st in g.sparse_initializer:
        inits[st.values.name] = sparse_to_dense(st)
    value_info = dict(types)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        tp = _own_type(vi) if vi.name not in value_info else None
        if tp is not None:
            value_info[vi.name] = tp
    nodes = [node_from_proto(n, base_dir, types, i) for i, n in enumerate(g.node)]
    return Graph(
        name=g.name,
        nodes=nodes,
        inputs=[ValueInfo(v.name, _own_type(v)) for v in g.input],
        outputs=[ValueInfo(v.name, _own_type(v)) for v in g.output],
        initializers=inits,
        value_info=value_info,
        doc=g.doc_string,
    )


def _own_type(vi: onnx.ValueInfoProto) -> TypeProto | None:
    """A copy of the value's type: a reference would keep the whole parsed model alive."""
    if not vi.HasField("type"):
        return None
    tp = TypeProto()
    tp.CopyFrom(vi.type)
    return tp


def node_from_proto(n: onnx.NodeProto, base_dir: str | None, types: dict[str, TypeProto], index: int) -> Node:
    attrs: dict[str, Any] = {}
    for a in n.attribute:
        if a.ref_attr_name:
            raise ValueError(f"attribute {a.name!r} refers to a function attribute outside a function")
        v = attribute_value(a)
        if isinstance(v, onnx.GraphProto):
            v = graph_from_proto(v, base_dir, types)
        elif isinstance(v, list) and v and isinstance(v[0], onnx.GraphProto):
            v = [graph_from_proto(x, base_dir, types) for x in v]
        attrs[a.name] = v
    return Node(
        op_type=n.op_type,
        inputs=list(n.input),
        outputs=list(n.output),
        attrs=attrs,
        name=n.name or f"{n.op_type}_{index}",
        domain=n.domain,
        doc=n.doc_string,
    )


def to_attribute(name: str, value: Any) -> onnx.AttributeProto:
    """An AttributeProto for a converted Python attribute value (inverse of attribute_value)."""
    import numpy as np
    from onnx import helper, numpy_helper

    # the common kinds built directly: helper.make_attribute inspects every value (~4 us each,
    # paid for every attribute of every node at each type inference)
    t = type(value)
    if t is int:
        return onnx.AttributeProto(name=name, type=onnx.AttributeProto.INT, i=value)
    if t is float:
        return onnx.AttributeProto(name=name, type=onnx.AttributeProto.FLOAT, f=value)
    if t is list and value and all(type(x) is int for x in value):
        return onnx.AttributeProto(name=name, type=onnx.AttributeProto.INTS, ints=value)
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(value))
    if isinstance(value, Graph):
        raise TypeError("graph attributes are converted by the graph writer")
    return helper.make_attribute(name, value)
