"""Helpers shared by the passes: a producer/consumer index with edit operations, constants,
shapes and attribute access."""

from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np
import onnx
from onnx import helper

from ..ir.gradient import TRAINING_DOMAIN, function_values
from ..ir.graph import Graph, Node, ValueInfo
from ..ir.load import toposort
from ..types import np_dtype, onnx_type
from .base import PassContext

# A fusion may materialize a ConstantOfShape weight (models exported with weights stripped use
# them) up to this many elements; constant folding keeps its own, smaller limit.
MATERIALIZE_LIMIT = 1 << 24

Dim = int | str | None


def is_default(node: Node) -> bool:
    return node.domain in ("", "ai.onnx")


def attr(node: Node, name: str, default: Any = None) -> Any:
    return node.attrs.get(name, default)


def constant_node_value(node: Node) -> np.ndarray | None:
    """The value of a Constant node, whichever attribute holds it."""
    a = node.attrs
    if "value" in a or "sparse_value" in a:
        v = a.get("value", a.get("sparse_value"))
        return v if isinstance(v, np.ndarray) else None
    if "value_float" in a:
        return np.array(a["value_float"], dtype=np.float32)
    if "value_floats" in a:
        return np.array(a["value_floats"], dtype=np.float32)
    if "value_int" in a:
        return np.array(a["value_int"], dtype=np.int64)
    if "value_ints" in a:
        return np.array(a["value_ints"], dtype=np.int64)
    if "value_string" in a:
        return np.array(a["value_string"], dtype=object)
    if "value_strings" in a:
        return np.array(a["value_strings"], dtype=object)
    return None


def scaled(w: np.ndarray, f: np.ndarray, memo: dict[Any, Any] | None = None) -> np.ndarray:
    """``w * f`` (``f`` broadcasting over ``w``) computed in float64 and rounded once to w's
    dtype, in one pass without a float64 copy of ``w`` (folds rescale every weight).

    With ``memo`` (a pass's, e.g. ``GraphIndex.cache``), the same ``w`` object scaled by equal
    factors again returns the same result object: layers that share weights and normalization
    parameters (common subexpression elimination merged them) fold to one array, which the next
    merge recognises without comparing contents (ResNet-50's constant-filled light model: 11 ms
    of a session's creation).
    """
    if memo is None:
        return _scaled(w, f)
    key = (id(w), f.dtype.str, f.shape, f.tobytes())
    hit = memo.get(key)
    if hit is not None and hit[0]() is w:
        return hit[1]
    out = _scaled(w, f)
    memo[key] = (weakref.ref(w), out)  # not keeping w alive: a replaced weight is freed
    return out


def _scaled(w: np.ndarray, f: np.ndarray) -> np.ndarray:
    out = np.empty(w.shape, w.dtype)
    np.multiply(w, f, out=out, dtype=np.float64, casting="same_kind")
    return out


def rename_free(graph: Graph, old: str, new: str) -> None:
    """Rename an outer-scope value read inside ``graph`` (a subgraph), recursively."""
    for n in graph.nodes:
        if old in n.inputs:
            n.inputs[:] = [new if x == old else x for x in n.inputs]
        for _, sub in n.graphs():
            rename_free(sub, old, new)
    for o in graph.outputs:
        if o.name == old:
            o.name = new


def tensor_type(dtype: Any, shape: Any = None) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(onnx_type(np.dtype(dtype)), shape)


class GraphIndex:
    """Producers and consumers of one graph's values, kept current by the edit methods.

    Removed nodes are only marked; inserted nodes are placed before an anchor node. ``commit``
    writes the new node list back in a valid topological order.
    """

    def __init__(self, graph: Graph, ctx: PassContext) -> None:
        self.graph = graph
        self.ctx = ctx
        self.producer: dict[str, Node] = {}
        self.consumers: dict[str, list[Node]] = {}
        self.implicit: dict[str, list[Node]] = {}  # value -> nodes whose subgraphs read it
        self.graph_outputs = {o.name for o in graph.outputs}
        if ctx.opset(TRAINING_DOMAIN):
            self.graph_outputs |= function_values(graph)  # kept as they are, as outputs are
        self.graph_inputs = {v.name for v in graph.inputs}
        self._dropped_inputs: set[str] = set()  # left out of graph.inputs at commit
        self._removed: set[int] = set()
        self._before: dict[int, list[Node]] = {}
        self._const_cache: dict[str, np.ndarray] = {}
        self.cache: dict[str, Any] = {}  # per-pass memos (e.g. shape vectors)
        for n in graph.nodes:
            self._link(n)

    # -- structure --------------------------------------------------------------------------

    def _link(self, n: Node) -> None:
        for o in n.outputs:
            if o:
                self.producer[o] = n
        for i in n.inputs:
            if i:
                self.consumers.setdefault(i, []).append(n)
        for _, sub in n.graphs():
            for name in sub.free_names():
                self.implicit.setdefault(name, []).append(n)

    def _unlink(self, n: Node) -> None:
        for o in n.outputs:
            if o and self.producer.get(o) is n:
                del self.producer[o]
        for i in n.inputs:
            if i:
                _drop_one(self.consumers.get(i), n)
        for _, sub in n.graphs():
            for name in sub.free_names():
                _drop_one(self.implicit.get(name), n)

    def alive(self, n: Node) -> bool:
        return id(n) not in self._removed

    def users(self, name: str) -> list[Node]:
        return self.consumers.get(name, [])

    def pinned(self, name: str) -> bool:
        """A graph output or read by a subgraph: the value must keep its name and producer."""
        return name in self.graph_outputs or bool(self.implicit.get(name))

    def n_uses(self, name: str) -> int:
        return len(self.users(name)) + len(self.implicit.get(name, ())) + (name in self.graph_outputs)

    def sole_consumer(self, name: str) -> Node | None:
        """The one node reading ``name`` (once), when nothing else (graph output, subgraph) does."""
        users = self.users(name)
        if len(users) != 1 or self.pinned(name):
            return None
        return users[0]

    def only_used_by(self, name: str, nodes: list[Node]) -> bool:
        """Whether every use of ``name`` is an input of one of ``nodes``."""
        if self.pinned(name):
            return False
        ids = {id(n) for n in nodes}
        users = self.users(name)
        return bool(users) and all(id(u) in ids for u in users)

    def producer_of(self, name: str, op_type: str | tuple[str, ...] | None = None) -> Node | None:
        n = self.producer.get(name) if name else None
        if n is None or (op_type is not None and not _op_is(n, op_type)):
            return None
        return n

    # -- edits --------------------------------------------------------------------------------

    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of ``old`` (nodes and subgraphs, not graph outputs) read ``new``."""
        users = self.consumers.pop(old, [])
        for c in users:
            if old in c.inputs:
                c.inputs[:] = [new if x == old else x for x in c.inputs]
        self.consumers.setdefault(new, []).extend(users)
        for holder in self.implicit.pop(old, []):
            for _, sub in holder.graphs():
                rename_free(sub, old, new)
            self.implicit.setdefault(new, []).append(holder)

    def set_input(self, node: Node, pos: int, name: str) -> None:
        old = node.inputs[pos]
        if old:
            _drop_one(self.consumers.get(old), node)
        node.inputs[pos] = name
        if name:
            self.consumers.setdefault(name, []).append(node)

    def remove(self, *nodes: Node) -> None:
        for n in nodes:
            if self.alive(n):
                self._unlink(n)
                self._removed.add(id(n))

    def insert(self, node: Node, anchor: Node) -> Node:
        """Add ``node`` to the graph just before ``anchor`` (which may itself be removed)."""
        if not node.name:
            node.name = self.ctx.fresh(node.op_type)
        self.ctx.names.add(node.name)
        self.ctx.names.update(node.outputs)
        self._link(node)
        self._before.setdefault(id(anchor), []).append(node)
        return node

    def rename_output(self, node: Node, old: str, new: str) -> None:
        """Have ``node`` produce ``new`` instead of ``old`` (readers of ``old`` are not touched)."""
        node.outputs[:] = [new if o == old else o for o in node.outputs]
        if self.producer.get(old) is node:
            del self.producer[old]
        self.producer[new] = node

    def commit(self) -> None:
        if self._dropped_inputs:
            self.graph.inputs = [v for v in self.graph.inputs if v.name not in self._dropped_inputs]
            self._dropped_inputs.clear()
        out: list[Node] = []

        def emit(n: Node) -> None:
            for b in self._before.pop(id(n), []):
                emit(b)
            if self.alive(n):
                out.append(n)

        for n in self.graph.nodes:
            emit(n)
        available = {v.name for v in self.graph.inputs} | set(self.graph.initializers)
        self.graph.nodes = toposort(Graph(self.graph.name, out, [], [], {}), available)

    # -- initializers and constants -----------------------------------------------------------

    def overridable(self, name: str) -> bool:
        """An initializer the caller may feed (IR >= 4 and also a graph input): not a constant."""
        return not self.ctx.legacy_initializers and name in self.graph_inputs

    def const(self, name: str, limit: int = MATERIALIZE_LIMIT) -> np.ndarray | None:
        """The value of ``name`` when it is a constant: initializer, Constant or ConstantOfShape."""
        if not name:
            return None
        arr = self.graph.initializers.get(name)
        if arr is not None:
            return None if self.overridable(name) else arr
        cached = self._const_cache.get(name)
        if cached is not None:
            return cached if cached.size <= limit else None
        node = self.producer.get(name)
        if node is None or not is_default(node):
            return None
        val: np.ndarray | None = None
        if node.op_type == "Constant":
            val = constant_node_value(node)
        elif node.op_type == "ConstantOfShape" and node.inputs:
            shape = self.const(node.inputs[0])
            if shape is None or shape.ndim != 1 or shape.dtype.kind not in "iu":
                return None
            if (shape < 0).any() or math.prod(int(s) for s in shape) > limit:
                return None
            fill = node.attrs.get("value")
            if fill is None:
                fill = np.zeros(1, dtype=np.float32)
            val = self.ctx.filled(tuple(int(s) for s in shape), fill)
        if val is not None:
            self._const_cache[name] = val
        return val

    def scalar(self, name: str) -> float | None:
        """A one-element numeric constant as a float, else None."""
        v = self.const(name, limit=16)
        if v is None or v.size != 1 or v.dtype.kind not in "fiu":
            return None
        return float(v.reshape(-1)[0])

    def drop_if_unused(self, name: str) -> None:
        """Forget the constant ``name`` now if nothing reads it any more, so that a fold that
        replaced it does not hold both copies until dead-code removal (folding the weights of
        every layer at once would otherwise keep each layer's old weights alive too)."""
        if not name or self.n_uses(name) or self.overridable(name):
            return
        self._const_cache.pop(name, None)
        if self.graph.initializers.pop(name, None) is not None and name in self.graph_inputs:
            # IR 3 lists every initializer as a graph input too: both go (as in dead_code),
            # the input at commit (one pass over the inputs, not one per dropped name)
            self._dropped_inputs.add(name)
            self.graph_inputs.discard(name)

    def add_initializer(self, base: str, value: np.ndarray, exact: bool = False) -> str:
        name = base if exact else self.ctx.fresh(base)
        self.ctx.names.add(name)
        self.graph.initializers[name] = value
        if self.ctx.legacy_initializers:
            # IR 3 lists every initializer as a graph input too (onnx.checker insists).
            if name in self._dropped_inputs:  # a name dropped earlier in this pass comes back
                self.graph.inputs = [v for v in self.graph.inputs if v.name != name]
                self._dropped_inputs.discard(name)
            self.graph.inputs.append(ValueInfo(name, tensor_type(value.dtype, value.shape)))
            self.graph_inputs.add(name)
        return name

    # -- types --------------------------------------------------------------------------------

    def dims(self, name: str) -> list[Dim] | None:
        """The value's dims (int, symbolic name or None) when its rank is known."""
        tp = self.graph.type_of(name) if name else None
        if tp is not None and tp.HasField("tensor_type") and tp.tensor_type.HasField("shape"):
            out: list[Dim] = []
            for d in tp.tensor_type.shape.dim:
                if d.HasField("dim_value"):
                    out.append(int(d.dim_value))
                else:
                    out.append(d.dim_param or None)
            return out
        shape, _ = self._const_meta(name)
        return None if shape is None else list(shape)

    def rank(self, name: str) -> int | None:
        d = self.dims(name)
        return None if d is None else len(d)

    def static_shape(self, name: str) -> tuple[int, ...] | None:
        d = self.dims(name)
        if d is None or not all(isinstance(x, int) for x in d):
            return None
        return tuple(d)  # type: ignore[arg-type]

    def elem_type(self, name: str) -> int:
        """The ONNX element type (0 when unknown)."""
        tp = self.graph.type_of(name) if name else None
        if tp is not None and tp.HasField("tensor_type") and tp.tensor_type.elem_type:
            return int(tp.tensor_type.elem_type)
        _, dt = self._const_meta(name)
        if dt is not None:
            try:
                return onnx_type(dt)
            except (KeyError, TypeError):
                return 0
        return 0

    def _const_meta(self, name: str) -> tuple[tuple[int, ...] | None, np.dtype | None]:
        """Shape and dtype of a constant without materializing a ConstantOfShape."""
        node = self.producer.get(name) if name else None
        if node is not None and is_default(node) and node.op_type == "ConstantOfShape":
            shape = self.const(node.inputs[0]) if node.inputs else None
            fill = node.attrs.get("value")
            dt = np.dtype(np.float32) if fill is None else fill.dtype
            if shape is None or shape.ndim != 1:
                return None, dt
            return tuple(int(s) for s in shape), dt
        c = self.const(name)
        return (None, None) if c is None else (c.shape, c.dtype)

    def dtype(self, name: str) -> np.dtype | None:
        et = self.elem_type(name)
        if not et:
            return None
        try:
            return np_dtype(et)
        except (KeyError, TypeError):
            return None

    def set_type(self, name: str, like: str) -> None:
        """Give the new value ``name`` the known type of ``like``."""
        tp = self.graph.type_of(like)
        if tp is not None:
            self.graph.value_info[name] = tp


def same_dim(a: Dim, b: Dim) -> bool:
    """Provably equal dims: equal sizes, or the same symbolic name."""
    if a is None or b is None:
        return False
    return a == b


def _op_is(n: Node, op_type: str | tuple[str, ...]) -> bool:
    if isinstance(op_type, str):
        return n.op_type == op_type and is_default(n)
    return n.op_type in op_type and is_default(n)


def _drop_one(lst: list[Node] | None, n: Node) -> None:
    if lst:
        for k, c in enumerate(lst):
            if c is n:
                del lst[k]
                return


def in_qdq_unit(node: Node, idx: GraphIndex) -> bool:
    """Whether ``node`` reads a DequantizeLinear or feeds a QuantizeLinear: quantization-aware
    providers run such a unit as one integer op, which a fused op type would hide from them."""
    for i in node.inputs:
        p = idx.producer.get(i) if i else None
        if p is not None and p.op_type == "DequantizeLinear":
            return True
    return any(u.op_type == "QuantizeLinear" for o in node.outputs if o for u in idx.users(o))


def other_input(node: Node, name: str) -> str | None:
    """For a two-input node that reads ``name`` once, the other input."""
    a, b = ([*node.inputs, "", ""])[:2]
    if a == name and b != name:
        return b
    if b == name and a != name:
        return a
    return None


def const_after(node: Node, idx: GraphIndex, producer_op: str) -> tuple[Node, np.ndarray] | None:
    """For a default-domain binary node with one constant input whose other input comes from a
    ``producer_op`` node read by this node alone: (that producer, the constant)."""
    if not is_default(node):
        return None
    split = split_const(node, idx)
    if split is None:
        return None
    x, c = split
    producer = idx.producer_of(x, producer_op)
    if producer is None or idx.sole_consumer(x) is not node:
        return None
    return producer, c


def split_const(node: Node, idx: GraphIndex) -> tuple[str, np.ndarray] | None:
    """For a binary node with exactly one constant input: (the other input, the constant)."""
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    ca, cb = idx.const(a), idx.const(b)
    if cb is not None and ca is None:
        return a, cb
    if ca is not None and cb is None:
        return b, ca
    return None
