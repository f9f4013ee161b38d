"""Values the provider computes once, at session creation, instead of on every run."""

from __future__ import annotations

import numpy as np

from ...ir.graph import Graph, Node


def _const(graph: Graph, name: str) -> np.ndarray | None:
    v = graph.initializers.get(name) if name else None
    return v if isinstance(v, np.ndarray) else None


# Inputs that a kernel packs once per weights object (see ConvKernel, MatMulKernel).
_PACKED_INPUT = {("Conv", 1), ("FusedConv", 1), ("Gemm", 1), ("FusedGemm", 1), ("MatMul", 1)}


def constant_of_shape(
    graph: Graph, node: Node, consumers: dict[str, list[Node]], claimed: set[int], escaping: set[str]
) -> np.ndarray | None:
    """The value of a ConstantOfShape of a constant shape whose users are all claimed, or None.

    Such a node (weights of onnx's "light" models, left unfolded to keep the model small in
    memory) is computed once: the same read-only object every run lets the consumers' weight
    packing happen once. Where every user packs it, it is a zero-copy broadcast view.
    """
    if node.op_type != "ConstantOfShape" or node.domain not in ("", "ai.onnx") or not node.outputs:
        return None
    out = node.outputs[0]
    shape = _const(graph, node.inputs[0]) if node.inputs else None
    users = consumers.get(out, [])
    if shape is None or shape.ndim != 1 or np.any(shape < 0) or out in escaping or not users:
        return None
    if not all(id(u) in claimed for u in users):
        return None
    value = node.attrs.get("value")
    v = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)[:1]
    if v.dtype != np.float32 or v.size != 1:
        return None
    dims = tuple(int(d) for d in shape)
    packed = all((u.op_type, k) in _PACKED_INPUT for u in users for k, n in enumerate(u.inputs) if n == out)
    if packed:
        return np.broadcast_to(v[0], dims)
    arr = np.full(dims, v[0], np.float32)
    arr.setflags(write=False)
    return arr


def constant_dequantized(
    graph: Graph, node: Node, consumers: dict[str, list[Node]], claimed: set[int], escaping: set[str]
) -> np.ndarray | None:
    """DequantizeLinear of initializers (int32 biases of QDQ models, weights outside a group),
    used by claimed nodes only: computed once, by the CPU provider's kernel (the same values)."""
    from ..cpu.kernels.quantize import dequantize_linear

    if node.domain not in ("", "ai.onnx") or not node.outputs or node.outputs[0] in escaping:
        return None
    vals = [_const(graph, n) for n in node.inputs if n]
    users = consumers.get(node.outputs[0], [])
    if any(v is None for v in vals) or not users or not all(id(u) in claimed for u in users):
        return None
    a = node.attrs
    y = dequantize_linear(
        *vals,
        axis=int(a.get("axis", 1)),
        block_size=int(a.get("block_size", 0)),
        output_dtype=int(a.get("output_dtype", 0)),
    )
    if not isinstance(y, np.ndarray) or y.dtype != np.float32:
        return None
    y.setflags(write=False)
    return y
