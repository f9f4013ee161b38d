"""Common subexpression elimination, and sharing of equal constants.

Two nodes with the same op, domain, attributes and inputs compute the same values, unless the op
is random; the later one is removed and its readers read the earlier one's outputs.
Initializers with equal dtype, shape and values are merged first, so that ``Mul(x, c1)`` and
``Mul(x, c2)`` with equal ``c1``/``c2`` meet, and so do two convolutions of one input by equal
weights (tied weights exported twice; constant-filled placeholder weights). Small ones are
compared by their bytes; larger ones by a sample of their elements first, then in full.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..ir.graph import Graph, Node
from ._graphutil import GraphIndex
from .base import MS_DOMAIN, PassContext
from .constant_folding import NEVER_FOLD

_SMALL = 64  # initializers up to this many elements are keyed by their bytes
_SAMPLE = 64  # elements of a larger initializer in its key; equal keys are then compared in full


class CommonSubexpressions:
    name = "cse"
    keeps_types = True  # see base.Pass

    def __call__(self, graph: Graph, ctx: PassContext) -> bool:
        idx = GraphIndex(graph, ctx)
        changed = self._share_constants(idx)
        seen: dict[Any, Node] = {}
        for node in graph.nodes:
            if node.domain not in ("", "ai.onnx", MS_DOMAIN) or node.op_type in NEVER_FOLD:
                continue
            if "Random" in node.op_type or "Dropout" in node.op_type:
                continue
            if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                continue  # each QDQ unit keeps its own Q/DQ pair (onnxruntime does the same)
            if node.graphs() or not node.outputs:
                continue
            try:
                key = (
                    node.domain or "",
                    node.op_type,
                    tuple(node.inputs),
                    len(node.outputs),
                    _attrs_key(node.attrs),
                    _attrs_key(node.opset_override or {}),
                )
                hash(key)
            except TypeError:
                continue
            first = seen.get(key)
            if first is None:
                seen[key] = node
                continue
            if any(o and o in idx.graph_outputs for o in node.outputs):
                continue
            if any(bool(a) != bool(b) for a, b in zip(first.outputs, node.outputs)):
                continue  # an optional output one node skips
            idx.remove(node)
            for a, b in zip(first.outputs, node.outputs):
                if b:
                    idx.replace_uses(b, a)
            changed = True
        if changed:
            idx.commit()
        return changed

    def _share_constants(self, idx: GraphIndex) -> bool:
        g = idx.graph
        canon: dict[Any, list[str]] = {}
        changed = False
        for name, arr in list(g.initializers.items()):
            if not isinstance(arr, np.ndarray) or arr.dtype == object or arr.size == 0:
                continue
            if idx.overridable(name) or name in idx.graph_outputs:
                continue
            if not (idx.users(name) or idx.implicit.get(name)):
                continue
            key = (arr.dtype.str, arr.shape, _fingerprint(arr))
            names = canon.setdefault(key, [])
            keep = next((k for k in names if _equal(g.initializers[k], arr)), None)
            if keep is None:
                names.append(name)
            else:
                idx.replace_uses(name, keep)
                idx.drop_if_unused(name)
                changed = True
        return changed


def _fingerprint(arr: np.ndarray) -> bytes:
    if arr.size <= _SMALL:
        return arr.tobytes()
    flat = arr.reshape(-1)
    return flat[:: -(-flat.size // _SAMPLE)].tobytes() + flat[-1:].tobytes()


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same bytes (so -0.0 and 0.0 stay apart): a merge must not change any value."""
    if a is b:  # one array under two names (see _graphutil.scaled)
        return True
    if a.size <= _SMALL:
        return a.tobytes() == b.tobytes()
    return bool(np.array_equal(_bytes(a), _bytes(b)))


_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _bytes(a: np.ndarray) -> np.ndarray:
    """The array's bytes as unsigned words of its item size (fewer elements to compare)."""
    flat = np.ascontiguousarray(a).reshape(-1)
    return flat.view(_UINT.get(flat.dtype.itemsize, np.uint8))


def _attrs_key(attrs: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, _value_key(v)) for k, v in attrs.items()))


def _value_key(v: Any) -> Any:
    t = type(v)
    # the common attribute values first (every node's attributes are keyed on every call)
    if t is int or t is str:
        return v
    if t is list and all(type(x) is int for x in v):
        return tuple(v)
    if isinstance(v, np.ndarray):
        return ("tensor", v.dtype.str, v.shape, v.tobytes() if v.dtype != object else tuple(v.flat))
    if isinstance(v, list):
        return tuple(_value_key(x) for x in v)
    if isinstance(v, dict):
        return _attrs_key(v)
    if isinstance(v, float) and v != v:
        return ("nan",)
    if isinstance(v, (int, float, str, bytes, bool)) or v is None:
        return v
    # TypeProto and other protobuf messages compare by their serialization.
    ser = getattr(v, "SerializeToString", None)
    if ser is not None:
        return ("proto", type(v).__name__, ser())
    raise TypeError(f"unhashable attribute value {type(v).__name__}")
