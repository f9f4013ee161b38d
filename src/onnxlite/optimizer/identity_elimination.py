"""Remove nodes whose output equals an input: Identity, Dropout at inference, and no-op Cast,
CastLike, Reshape, Expand, Slice, Transpose, Pad, Tile, Flatten, single-input Concat/Sum/Mean/
Max/Min.

Readers of the output read the input instead. When the output is a graph output its name must
survive, so the input's producer is renamed to produce it (impossible, and skipped, when the input
is a graph input, an initializer or another graph output).
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default
from .base import PatternPass

_INT_MAX_ISH = 2**31 - 1  # exporters write INT_MAX / INT64_MAX for "to the end"


class IdentityElimination(PatternPass):
    name = "identity_elimination"
    keeps_types = True  # see base.Pass
    anchors = frozenset(
        {
            "Identity",
            "Dropout",
            "Cast",
            "CastLike",
            "Reshape",
            "Expand",
            "Slice",
            "Transpose",
            "Pad",
            "Tile",
            "Flatten",
            "Concat",
            "Sum",
            "Mean",
            "Max",
            "Min",
        }
    )

    def rewrite(self, node: Node, idx: GraphIndex) -> bool:
        if not is_default(node) or not node.inputs or not node.outputs or not node.inputs[0]:
            return False
        if not _is_noop(node, idx):
            return False
        return bypass(node, node.inputs[0], idx)


def bypass(node: Node, src: str, idx: GraphIndex) -> bool:
    """Remove ``node``, whose first output equals ``src``; other outputs must be unused."""
    out = node.outputs[0]
    if any(o and idx.n_uses(o) for o in node.outputs[1:]) or src == out:
        return False
    if out not in idx.graph_outputs:
        idx.remove(node)
        idx.replace_uses(out, src)
        return True
    producer = idx.producer.get(src)
    if producer is None or src in idx.graph_outputs:
        return False
    idx.remove(node)
    idx.rename_output(producer, src, out)
    idx.replace_uses(src, out)
    return True


def _is_noop(node: Node, idx: GraphIndex) -> bool:
    op, x = node.op_type, node.inputs[0]
    n_in = len([i for i in node.inputs if i])
    if op == "Identity":
        return True
    if op == "Dropout":
        if len(node.inputs) > 2 and node.inputs[2]:
            mode = idx.const(node.inputs[2])
            return mode is not None and not mode.any()
        return True
    if op in ("Concat", "Sum", "Mean", "Max", "Min"):
        return n_in == 1
    if op == "Cast":
        et = idx.elem_type(x)
        return bool(et) and et == attr(node, "to")
    if op == "CastLike":
        et = idx.elem_type(x)
        return bool(et) and et == idx.elem_type(node.inputs[1])
    if op == "Transpose":
        perm = attr(node, "perm")
        if perm is None:
            return idx.rank(x) in (0, 1)
        return list(perm) == list(range(len(perm)))
    if op == "Flatten":
        return idx.rank(x) == 2 and attr(node, "axis", 1) in (1, -1)
    dims = idx.dims(x)
    if dims is None:
        return False
    if op == "Reshape":
        return _reshape_noop(node, idx, dims)
    if op == "Expand":
        shape = idx.const(node.inputs[1]) if len(node.inputs) > 1 else None
        return shape is not None and _expand_noop(dims, [int(s) for s in shape.reshape(-1)])
    if op == "Slice":
        return _slice_noop(node, idx, dims)
    if op == "Pad":
        pads = idx.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
        if pads is None:
            pads = np.array(attr(node, "pads", attr(node, "paddings", [1])))
        return pads.size > 0 and not pads.any()
    if op == "Tile":
        reps = idx.const(node.inputs[1]) if len(node.inputs) > 1 else None
        return reps is not None and reps.size == len(dims) and bool((reps == 1).all())
    return False


def _reshape_noop(node: Node, idx: GraphIndex, dims: list) -> bool:
    if len(node.inputs) > 1:
        shape = idx.const(node.inputs[1])
    else:  # Reshape-1 keeps the shape as an attribute
        shape = np.array(attr(node, "shape")) if attr(node, "shape") is not None else None
    if shape is None or shape.ndim != 1 or shape.size != len(dims):
        return False
    allowzero = attr(node, "allowzero", 0)
    free = 0
    for s, d in zip(shape.tolist(), dims):
        if s == 0 and not allowzero:
            continue
        if s == -1:
            free += 1
        elif not (isinstance(d, int) and d == s):
            return False
    # One -1 among dims that all match is the remaining dim itself.
    return free <= 1


def _expand_noop(dims: list, shape: list[int]) -> bool:
    if len(shape) > len(dims):
        return False
    for s, d in zip(reversed(shape), reversed(dims)):
        if s != 1 and not (isinstance(d, int) and d == s):
            return False
    return True


def _slice_noop(node: Node, idx: GraphIndex, dims: list) -> bool:
    if len(node.inputs) >= 3:
        consts = [idx.const(i) if i else None for i in node.inputs[1:5]]
        starts, ends = consts[0], consts[1]
        axes = consts[2] if len(consts) > 2 else None
        steps = consts[3] if len(consts) > 3 else None
        if starts is None or ends is None:
            return False
        if any(c is None and i for c, i in zip(consts[2:], node.inputs[3:5])):
            return False
    else:
        starts, ends = np.array(attr(node, "starts", [])), np.array(attr(node, "ends", []))
        axes = np.array(attr(node, "axes")) if attr(node, "axes") is not None else None
        steps = None
    r = len(dims)
    ax = list(range(starts.size)) if axes is None else [int(a) + r if a < 0 else int(a) for a in axes]
    st = [1] * starts.size if steps is None else [int(s) for s in steps.reshape(-1)]
    for a, s, e, step in zip(ax, starts.reshape(-1).tolist(), ends.reshape(-1).tolist(), st):
        if step != 1 or not 0 <= a < r:
            return False
        d = dims[a]
        if s != 0 and not (isinstance(d, int) and s <= -d):
            return False
        if e < _INT_MAX_ISH and not (isinstance(d, int) and e >= d):
            return False
    return True
