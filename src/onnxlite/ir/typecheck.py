"""Check, at session build, that each node's known input types are ones its op schema allows.

Kernels accept every type their op's schema allows, so an input type outside the schema is
reported here — naming the op, domain, opset and type — rather than failing at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import onnx

from ..errors import NotImplemented_
from ..types import type_string
from .graph import Node

_VARIADIC = onnx.defs.OpSchema.FormalParameterOption.Variadic


def check_node_types(node: Node, opsets: Mapping[str, int], type_of: Callable[[str], Any]) -> None:
    """Raise NotImplemented if an input's known type is not allowed by the node's op schema."""
    dom = "" if node.domain == "ai.onnx" else node.domain
    opset = (node.opset_override or {}).get(dom) or opsets.get(dom)
    if opset is None:
        return
    try:
        schema: Any = onnx.defs.get_schema(node.op_type, opset, dom)
    except Exception:
        return  # no schema (custom domains): nothing to check against
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    formals = list(schema.inputs)
    if not formals:
        return
    bound: dict[str, str] = {}
    for i, name in enumerate(node.inputs):
        if not name:
            continue
        formal = formals[min(i, len(formals) - 1)]
        if i >= len(formals) and formal.option != _VARIADIC:
            break
        tp = type_of(name)
        # Tensors and sequences are checked; maps and optionals are spelled differently by the
        # schemas ('map(string, int64)') and are left to the kernels.
        if tp is None or tp.WhichOneof("value") not in ("tensor_type", "sequence_type"):
            continue
        if tp.WhichOneof("value") == "tensor_type" and not tp.tensor_type.elem_type:
            continue
        got = type_string(tp)
        if "unknown" in got:
            continue
        param = formal.type_str
        ok_types = allowed.get(param, {param})
        if got not in ok_types:
            raise NotImplemented_(
                f"Could not find an implementation for {node.op_type}({opset}) node with name "
                f"'{node.name}': input {i} ({name!r}) has type {got}, which {dom or 'ai.onnx'} "
                f"{node.op_type} at opset {opset} does not accept (allowed: {', '.join(sorted(ok_types))})"
            )
        # A type parameter shared by several inputs must bind to one type (e.g. Add's A and B),
        # unless the parameter is heterogeneous variadic.
        if param in allowed and formal.is_homogeneous:
            prev = bound.setdefault(param, got)
            if prev != got:
                raise NotImplemented_(
                    f"{node.describe()}: inputs bound to type parameter {param} disagree "
                    f"({prev} vs {got} for input {i} {name!r}); {node.op_type} needs them equal"
                )
