"""Constant folding: nodes whose inputs are all constants become initializers.

Also folds ``Shape``/``Size`` of statically known shapes and the shape arithmetic after them
(``Gather``/``Slice``/``Concat``/``Unsqueeze`` of partly static shapes, see :mod:`._shapevec`),
and a ``Where`` whose condition folded to all-true or all-false. Values are computed with
onnxlite's own CPU kernels, so a folded value is exactly what the unoptimized model computes.

Never folded: random ops, ops with subgraphs, ops outside the ONNX domain, nodes producing a
graph output (its name must stay a node output), and results much larger than their inputs,
except ``ConstantOfShape``: models ship weights that way to stay small, and running it on every
call costs more than keeping the weights (onnxruntime folds it too), up to WEIGHT_LIMIT elements.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.graph import Graph, Node
from ._evaluate import evaluate
from ._graphutil import GraphIndex, constant_node_value, is_default
from ._shapevec import ShapeVecs
from .base import PassContext

# A folded output may grow up to this many elements beyond the size of the inputs it replaces.
FOLD_LIMIT = 1 << 16
WEIGHT_LIMIT = 1 << 28  # ConstantOfShape outputs up to 1 GiB of float32

_SHAPE_OPS = frozenset(
    {"Shape", "Size", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Cast", "Identity"}
)

NEVER_FOLD = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
        "Dropout",  # random in training mode; identity_elimination removes the inference form
        # A DequantizeLinear of constant weights is half of a QDQ unit that quantization-aware
        # providers run as one integer op; folding it would also store the weights 4x larger.
        "DequantizeLinear",
        "If",
        "Loop",
        "Scan",
        "SequenceMap",
    }
)


class ConstantFolding:
    name = "constant_folding"

    def __call__(self, graph: Graph, ctx: PassContext) -> bool:
        idx = GraphIndex(graph, ctx)
        vecs = ShapeVecs(idx)
        changed = False
        for node in list(graph.nodes):
            if not idx.alive(node) or not is_default(node) or node.op_type in NEVER_FOLD:
                continue
            if node.graphs() or any(o in idx.graph_outputs for o in node.outputs):
                continue
            if (
                self._fold(node, idx, vecs)
                or self._simplify_where(node, idx)
                or self._rebuild_shape(node, idx, vecs)
            ):
                changed = True
        if changed:
            idx.commit()
        return changed

    def _fold(self, node: Node, idx: GraphIndex, vecs: ShapeVecs) -> bool:
        values = self._constant_outputs(node, idx, vecs)
        if values is None:
            return False
        idx.remove(node)
        for name, value in zip(node.outputs, values):
            if name:
                idx.add_initializer(name, value, exact=True)
        return True

    def _constant_outputs(self, node: Node, idx: GraphIndex, vecs: ShapeVecs) -> list[np.ndarray] | None:
        op = node.op_type
        if op == "Constant":
            value = constant_node_value(node)
            return None if value is None else [value]
        if len(node.outputs) == 1 and op in _SHAPE_OPS and not _all_const(node, idx):
            if op == "Size":
                shape = idx.static_shape(node.inputs[0])
                if shape is not None:
                    return [np.array(math.prod(shape), dtype=np.int64)]
            else:
                v = vecs.get(node.outputs[0])
                if v is not None and v.known:
                    return [v.array()]
        if op == "ConstantOfShape":
            # the index builds this value (np.full) without binding a kernel per node: light
            # models ship hundreds of weights this way
            full = idx.const(node.outputs[0], limit=WEIGHT_LIMIT)
            if full is not None:
                return [full]
        if op == "Equal" and len(node.inputs) == 2:
            eq = vecs.equal(node)
            if eq is not None:
                return [eq]
        return self._evaluate(node, idx)

    def _evaluate(self, node: Node, idx: GraphIndex) -> list[np.ndarray] | None:
        inputs: dict[str, np.ndarray] = {}
        stored = 0
        for name in node.inputs:
            if not name or name in inputs:
                continue
            v = idx.const(name, limit=FOLD_LIMIT)
            if v is None:
                return None
            inputs[name] = v
            stored += _stored_size(name, v, idx)
        if not inputs:
            return None  # input-free ops other than Constant are random or custom
        limit = max(stored, WEIGHT_LIMIT if node.op_type == "ConstantOfShape" else FOLD_LIMIT)
        for o in node.outputs:
            shape = idx.static_shape(o) if o else None
            if shape is not None and math.prod(shape) > limit:
                return None
        res = evaluate(node, inputs, idx.ctx)
        if res is None:
            return None
        out: list[np.ndarray] = []
        for name, r in zip(node.outputs, res):
            if not name:
                out.append(np.empty(0))
                continue
            if isinstance(r, np.generic):
                r = np.asarray(r)
            if not isinstance(r, np.ndarray) or r.size > limit or r.dtype == object:
                return None
            if r.base is not None or not r.flags.writeable or not r.flags.c_contiguous:
                r = np.array(r)  # owned and writable: views would pin their bases
            out.append(r)
        return out

    def _simplify_where(self, node: Node, idx: GraphIndex) -> bool:
        """Where(c, x, y) with c all true (false) and no broadcasting -> x (y)."""
        if node.op_type != "Where" or len(node.inputs) != 3:
            return False
        cond = idx.const(node.inputs[0], limit=FOLD_LIMIT)
        if cond is None or cond.size == 0 or cond.dtype != np.bool_:
            return False
        if cond.all():
            keep = node.inputs[1]
        elif not cond.any():
            keep = node.inputs[2]
        else:
            return False
        out = node.outputs[0]
        shapes = [idx.static_shape(n) for n in (*node.inputs, out)]
        if any(s is None for s in shapes) or len(set(shapes)) != 1:
            return False
        if idx.pinned(out):
            return False
        idx.replace_uses(out, keep)
        idx.remove(node)
        return True

    def _rebuild_shape(self, node: Node, idx: GraphIndex, vecs: ShapeVecs) -> bool:
        """A shape vector that a Where selects (torch's ``expand(-1)`` guard) becomes
        ``Concat(Gather(Shape(v), [k]) | constants)``, which shape inference can follow."""
        if node.op_type != "Where" or idx.const(node.inputs[0]) is None:
            return False
        vec = vecs.get(node.outputs[0])
        if vec is None or vec.known or vec.scalar or vec.dtype != np.int64:
            return False
        parts: list[str] = []
        run: list[int] = []
        new: list[Node] = []
        shapes: dict[str, str] = {}
        ctx = idx.ctx
        for j, v in enumerate(vec.values):
            if v is not None:
                run.append(v)
                continue
            origin = vec.origin(j)
            if origin is None:
                return False
            if run:
                parts.append(idx.add_initializer(f"{node.name}_dims", np.array(run, dtype=np.int64)))
                run = []
            src, k = origin
            if src not in shapes:
                shapes[src] = ctx.fresh(f"{src}_shape")
                new.append(Node("Shape", [src], [shapes[src]], {}, ctx.fresh("Shape")))
            index = idx.add_initializer(f"{node.name}_axis", np.array([k], dtype=np.int64))
            part = ctx.fresh(f"{src}_dim{k}")
            new.append(Node("Gather", [shapes[src], index], [part], {"axis": 0}, ctx.fresh("Gather")))
            parts.append(part)
        if run:
            parts.append(idx.add_initializer(f"{node.name}_dims", np.array(run, dtype=np.int64)))
        new.append(Node("Concat", parts, [node.outputs[0]], {"axis": 0}, ctx.fresh("Concat")))
        idx.remove(node)
        for n in new:
            idx.insert(n, node)
        return True


def _all_const(node: Node, idx: GraphIndex) -> bool:
    return all(idx.const(i, limit=FOLD_LIMIT) is not None for i in node.inputs if i)


def _stored_size(name: str, value: np.ndarray, idx: GraphIndex) -> int:
    """What an input costs in the model as it is: a ConstantOfShape costs its shape vector."""
    node = idx.producer.get(name)
    if node is not None and node.op_type == "ConstantOfShape":
        shape = idx.const(node.inputs[0]) if node.inputs else None
        return 1 + (0 if shape is None else int(shape.size))
    return int(value.size)
