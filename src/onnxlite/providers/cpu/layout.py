"""Weight layouts the CPU provider's products run faster with: a rewrite of the MatMul nodes
assigned to it, made at session build after partitioning (as onnxruntime's layout transformers
run for their provider's nodes), with the same outputs.

MatMul(A, W) with W a float32 weight matrix [K, N] becomes com.microsoft
FusedMatMul(A, W^T, transB=1), W^T a transposed view of W's memory in W's place. Its kernel computes
A @ W as (W^T A^T)^T where that pays: OpenBLAS runs the product whose result is [N, rows]
10-25% faster than the [rows, N] one while the rows (batch x sequence) number a few hundred or
fewer (BERT-base's projections at 128 rows: 195-225 -> 240-263 GFLOP/s with weights out of cache),
and as fast beyond. That result is handed on as a transposed view (feature-major), so only nodes
whose consumers take such a view at no cost get it (:func:`feature_major_ok`); the others get
A @ (W^T)^T, as fast as A @ W, in the usual row-major layout.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

import numpy as np

from ...ir.graph import Graph, Node
from .registry import CUSTOM_KERNELS

MS_DOMAIN = "com.microsoft"
# Below this many rows or columns a weight matrix is left as it is: the gain shrinks, and at
# 256 x 256 the transposed product is slower for a thousand rows and more.
MIN_WEIGHT_DIM = 384
# Consumers that keep a feature-major value's layout at no cost: element-wise ops (a bias or a
# scale from a constant, activations), views (Reshape splitting the last axis, Transpose), and
# products (BLAS reads either layout); Shape and Size read no element.
_UNARY = frozenset(
    {"Relu", "Gelu", "BiasGelu", "FastGelu", "Sigmoid", "Tanh", "Erf", "LeakyRelu", "Identity"}
)
_WITH_CONSTANT = frozenset({"Add", "Sub", "Mul", "Div", "BiasGelu"})
_VIEWS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze"})
_PRODUCTS = frozenset({"MatMul", "FusedMatMul"})
_SHAPE_ONLY = frozenset({"Shape", "Size"})  # read no element
_MAX_DEPTH = 6


def _is_default(node: Node) -> bool:
    return node.domain in ("", "ai.onnx")


def _rank(graph: Graph, name: str) -> int | None:
    tp = graph.type_of(name)
    if tp is None or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return None
    return len(tp.tensor_type.shape.dim)


def _consumers(graph: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            if name:
                out.setdefault(name, []).append(node)
    return out


def feature_major_ok(graph: Graph, name: str, consumers: dict[str, list[Node]], depth: int = 0) -> bool:
    """Whether every use of the value ``name`` takes it as a transposed view without a copy
    into row-major order (where numpy's strided copies cost 1-7 ns per element)."""
    if depth > _MAX_DEPTH or any(o.name == name for o in graph.outputs):
        return False
    uses = consumers.get(name, [])
    if not uses:
        return False
    for c in uses:
        if c.graphs():
            return False
        dom_ok = _is_default(c) or c.domain == MS_DOMAIN
        if not dom_ok:
            return False
        if c.op_type in _PRODUCTS or c.op_type in _SHAPE_ONLY:
            continue
        others = [i for i in c.inputs if i and i != name]
        if c.op_type in _UNARY and not others:
            pass
        elif c.op_type in _WITH_CONSTANT:
            # the other operand a constant vector (a bias, a scale): it broadcasts along rows
            if not all(i in graph.initializers and np.ndim(graph.initializers[i]) <= 1 for i in others):
                return False
            if c.inputs[0] != name and c.op_type in ("Sub", "Div", "BiasGelu"):
                return False
        elif c.op_type in _VIEWS:
            if c.inputs[0] != name:
                return False
        else:
            return False
        if not all(feature_major_ok(graph, o, consumers, depth + 1) for o in c.outputs if o):
            return False
    return True


def transpose_matmul_weights(
    graph: Graph, nodes: Sequence[int], opsets: MutableMapping[str, int]
) -> list[Node]:
    """Rewrite the eligible MatMul nodes among ``nodes`` (indices into ``graph.nodes``) as
    described above; returns the new FusedMatMul nodes whose output may stay feature-major."""
    if CUSTOM_KERNELS.has_op("", "MatMul") or CUSTOM_KERNELS.has_op(MS_DOMAIN, "FusedMatMul"):
        return []  # a user's kernel decides how its products run
    mine = set(nodes)
    consumers = _consumers(graph)
    in_subgraphs: set[str] = set()
    for node in graph.nodes:
        for _, g in node.graphs():
            in_subgraphs |= g.free_names()
    protected = {v.name for v in graph.inputs} | {v.name for v in graph.outputs} | in_subgraphs
    index = {id(n): i for i, n in enumerate(graph.nodes)}

    def eligible(w: str) -> bool:
        value = graph.initializers.get(w)
        if w in protected or not isinstance(value, np.ndarray) or value.dtype != np.float32:
            return False
        if value.ndim != 2 or min(value.shape) < MIN_WEIGHT_DIM:
            return False
        for r in consumers.get(w, []):
            if r.op_type != "MatMul" or not _is_default(r) or index[id(r)] not in mine:
                return False
            if r.inputs[1] != w or r.inputs[0] == w or (_rank(graph, r.inputs[0]) or 0) < 2:
                return False
        return True

    renamed: dict[str, str] = {}
    feature_major: list[Node] = []
    taken = set(graph.initializers) | set(graph.value_info)
    for i in sorted(mine):
        node = graph.nodes[i]
        if node.op_type != "MatMul" or not _is_default(node) or len(node.inputs) != 2:
            continue
        a, w = node.inputs
        if w not in renamed:
            if not eligible(w):
                continue
            new = f"{w}_transposed"
            k = 0
            while new in taken:
                k += 1
                new = f"{w}_transposed_{k}"
            taken.add(new)
            # a view of W's own memory: BLAS reads it as W^T at no cost, and copying BERT-base's
            # 72 weight matrices cost 0.47 s of session build (the products ran no faster)
            graph.initializers[new] = graph.initializers.pop(w).T
            graph.value_info.pop(w, None)
            renamed[w] = new
        fused = Node(
            "FusedMatMul", [a, renamed[w]], list(node.outputs), {"transB": 1}, node.name, MS_DOMAIN, node.doc
        )
        graph.nodes[i] = fused
        if feature_major_ok(graph, node.outputs[0], consumers):
            feature_major.append(fused)
    if renamed:
        opsets.setdefault(MS_DOMAIN, 1)
    return feature_major
