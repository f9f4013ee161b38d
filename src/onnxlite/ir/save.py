"""Write the IR back to an ONNX ModelProto."""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from .graph import Graph, InternalAttr, Model, Node, to_attribute


def _node_to_proto(n: Node) -> onnx.NodeProto:
    p = helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, domain=n.domain or None)
    if n.doc:
        p.doc_string = n.doc
    for k, v in n.attrs.items():
        if isinstance(v, InternalAttr):
            continue
        if isinstance(v, Graph):
            p.attribute.append(helper.make_attribute(k, graph_to_proto(v)))
        elif isinstance(v, list) and v and isinstance(v[0], Graph):
            p.attribute.append(helper.make_attribute(k, [graph_to_proto(g) for g in v]))
        else:
            p.attribute.append(to_attribute(k, v))
    return p


def _value_info(name: str, tp: onnx.TypeProto | None) -> onnx.ValueInfoProto:
    vi = onnx.ValueInfoProto(name=name)
    if tp is not None:
        vi.type.CopyFrom(tp)
    return vi


def graph_to_proto(g: Graph) -> onnx.GraphProto:
    return helper.make_graph(
        [_node_to_proto(n) for n in g.nodes],
        g.name,
        [_value_info(v.name, v.type) for v in g.inputs],
        [_value_info(v.name, v.type) for v in g.outputs],
        initializer=[numpy_helper.from_array(a, name) for name, a in g.initializers.items()],
        doc_string=g.doc or None,
    )


def model_to_proto(m: Model) -> onnx.ModelProto:
    opsets = [helper.make_opsetid(d, v) for d, v in m.opsets.items()]
    p = helper.make_model(graph_to_proto(m.graph), opset_imports=opsets, ir_version=m.ir_version)
    p.producer_name = m.producer_name
    p.producer_version = m.producer_version
    p.domain = m.domain
    p.model_version = m.model_version
    p.doc_string = m.doc
    for k, v in m.metadata.items():
        p.metadata_props.add(key=k, value=v)
    return p
