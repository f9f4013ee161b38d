"""Partial evaluation of shape vectors: small integer tensors built from ``Shape`` outputs.

Exporters compute Reshape/Expand targets at run time from ``Shape(x)`` even when most dims are
static. A shape vector records, per element, the known integer or None for a dim known only at
run time — which is never negative. That is enough to fold ``Gather(Shape(x), 1)`` when dim 1 is
static, and torch's ``Where(Equal(shape, -1), 1, shape)`` guard, whose Equal is all false.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default

_MAX_LEN = 64


Origin = tuple[str, int] | None  # (value, axis) whose dim an element is


@dataclass(frozen=True)
class ShapeVec:
    values: tuple[int | None, ...]  # None: a run-time dim (>= 0)
    scalar: bool  # a 0-D tensor (one value)
    dtype: np.dtype
    origins: tuple[Origin, ...] = ()  # per element, when it is a dim of some value

    def origin(self, i: int) -> Origin:
        return self.origins[i] if i < len(self.origins) else None

    def derive(self, picks: list[int], scalar: bool, dtype: np.dtype | None = None) -> ShapeVec:
        """The vector of elements ``picks`` (with their origins)."""
        return ShapeVec(
            tuple(self.values[p] for p in picks),
            scalar,
            self.dtype if dtype is None else dtype,
            tuple(self.origin(p) for p in picks),
        )

    @property
    def known(self) -> bool:
        return all(v is not None for v in self.values)

    def array(self) -> np.ndarray:
        a = np.array([int(v) for v in self.values], dtype=self.dtype)  # type: ignore[arg-type]
        return a.reshape(()) if self.scalar else a


class ShapeVecs:
    """Shape vectors of a graph's values, computed on demand and memoized."""

    def __init__(self, idx: GraphIndex) -> None:
        self.idx = idx
        self._memo: dict[str, ShapeVec | None] = {}

    def get(self, name: str) -> ShapeVec | None:
        if name in self._memo:
            return self._memo[name]
        self._memo[name] = None  # guards against cycles through malformed graphs
        v = self._compute(name)
        self._memo[name] = v
        return v

    def _compute(self, name: str) -> ShapeVec | None:
        c = self.idx.const(name, limit=_MAX_LEN)
        if c is not None:
            if c.dtype.kind not in "iu" or c.ndim > 1 or c.size > _MAX_LEN:
                return None
            return ShapeVec(tuple(int(v) for v in c.reshape(-1)), c.ndim == 0, c.dtype)
        node = self.idx.producer.get(name)
        if node is None or not is_default(node) or len(node.outputs) != 1:
            return None
        fn = getattr(self, f"_op_{node.op_type}", None)
        return fn(node) if fn is not None else None

    # -- ops that move dims around without arithmetic ------------------------------------------

    def _op_Shape(self, node: Node) -> ShapeVec | None:
        dims = self.idx.dims(node.inputs[0])
        if dims is None:
            return None
        x = node.inputs[0]
        vals = tuple(d if isinstance(d, int) else None for d in dims)
        r = len(vals)
        start, end = attr(node, "start", 0), attr(node, "end", r)
        start = min(max(start + r if start < 0 else start, 0), r)
        end = min(max(end + r if end < 0 else end, 0), r)
        full = ShapeVec(vals, False, np.dtype(np.int64), tuple((x, k) for k in range(r)))
        return full.derive(list(range(start, end)), False)

    def _op_Identity(self, node: Node) -> ShapeVec | None:
        return self.get(node.inputs[0])

    def _op_Cast(self, node: Node) -> ShapeVec | None:
        from ..types import np_dtype

        v = self.get(node.inputs[0])
        to = np_dtype(int(attr(node, "to", 0))) if attr(node, "to") else None
        if v is None or to is None or to.kind not in "iu":
            return None
        if to.itemsize < 4 and not v.known:
            return None  # a run-time dim may not fit
        return ShapeVec(v.values, v.scalar, to, v.origins)

    def _op_Gather(self, node: Node) -> ShapeVec | None:
        v = self.get(node.inputs[0])
        idx = self.idx.const(node.inputs[1], limit=_MAX_LEN)
        if v is None or v.scalar or idx is None or attr(node, "axis", 0) not in (0, -1):
            return None
        n = len(v.values)
        if idx.ndim > 1 or ((idx < -n) | (idx >= n)).any():
            return None
        return v.derive([int(i) + n if i < 0 else int(i) for i in idx.reshape(-1)], idx.ndim == 0)

    def _axes(self, node: Node, pos: int) -> list[int] | None:
        if len(node.inputs) > pos and node.inputs[pos]:
            a = self.idx.const(node.inputs[pos])
            return None if a is None else [int(x) for x in a.reshape(-1)]
        a = attr(node, "axes")
        return None if a is None else [int(x) for x in a]

    def _op_Unsqueeze(self, node: Node) -> ShapeVec | None:
        v = self.get(node.inputs[0])
        if v is None or not v.scalar or self._axes(node, 1) not in ([0], [-1]):
            return None
        return v.derive([0], False)

    def _op_Squeeze(self, node: Node) -> ShapeVec | None:
        v = self.get(node.inputs[0])
        axes = self._axes(node, 1)
        if v is None or v.scalar or len(v.values) != 1 or axes not in (None, [0], [-1]):
            return None
        return v.derive([0], True)

    def _op_Concat(self, node: Node) -> ShapeVec | None:
        if attr(node, "axis") not in (0, -1):
            return None
        parts = [self.get(i) for i in node.inputs if i]
        if not parts or any(p is None or p.scalar for p in parts):
            return None
        if len({p.dtype for p in parts if p is not None}) != 1:
            return None
        vals = tuple(x for p in parts if p is not None for x in p.values)
        origins = tuple(p.origin(i) for p in parts if p is not None for i in range(len(p.values)))
        if len(vals) > _MAX_LEN:
            return None
        return ShapeVec(vals, False, parts[0].dtype, origins)  # type: ignore[union-attr]

    def _op_Reshape(self, node: Node) -> ShapeVec | None:
        v = self.get(node.inputs[0])
        shape = self.idx.const(node.inputs[1]) if len(node.inputs) > 1 else None
        if v is None or shape is None or shape.ndim != 1 or shape.size > 1:
            return None
        n = len(v.values)
        if shape.size == 0:
            return v.derive([0], True) if n == 1 else None
        if int(shape[0]) in (-1, n):
            return v.derive(list(range(n)), False)
        return None

    def _op_Slice(self, node: Node) -> ShapeVec | None:
        v = self.get(node.inputs[0])
        if v is None or v.scalar:
            return None
        if len(node.inputs) >= 3:
            consts = [self.idx.const(i) if i else None for i in node.inputs[1:5]]
            if (
                consts[0] is None
                or consts[1] is None
                or any(c is None for c, i in zip(consts[2:], node.inputs[3:5]) if i)
            ):
                return None
            starts, ends = consts[0], consts[1]
            axes = consts[2] if len(consts) > 2 and consts[2] is not None else None
            steps = consts[3] if len(consts) > 3 and consts[3] is not None else None
        else:
            starts, ends = np.array(attr(node, "starts", [])), np.array(attr(node, "ends", []))
            axes = np.array(attr(node, "axes")) if attr(node, "axes") is not None else None
            steps = None
        if (
            starts.size != 1
            or ends.size != 1
            or (axes is not None and int(axes.reshape(-1)[0]) not in (0, -1))
        ):
            return None
        step = 1 if steps is None else int(steps.reshape(-1)[0])
        if step == 0:
            return None
        n = len(v.values)
        positions = list(range(n))[slice(*_clamp(int(starts[0]), int(ends[0]), step, n))]
        return v.derive(positions, False)

    def _op_Where(self, node: Node) -> ShapeVec | None:
        cond = self.idx.const(node.inputs[0], limit=_MAX_LEN)
        x, y = self.get(node.inputs[1]), self.get(node.inputs[2])
        if cond is None or x is None or y is None or cond.dtype != np.bool_ or x.dtype != y.dtype:
            return None
        n = max(cond.size, len(x.values), len(y.values))
        if (
            cond.ndim > 1
            or x.scalar != y.scalar
            or any(k not in (1, n) for k in (cond.size, len(x.values), len(y.values)))
        ):
            return None
        c = np.broadcast_to(cond.reshape(-1), (n,))
        vals, origins = [], []
        for i in range(n):
            src = x if c[i] else y
            j = 0 if len(src.values) == 1 else i
            vals.append(src.values[j])
            origins.append(src.origin(j))
        return ShapeVec(tuple(vals), x.scalar and cond.ndim == 0, x.dtype, tuple(origins))

    def equal(self, node: Node) -> np.ndarray | None:
        """The value of Equal(a, b) when every element is decided (a run-time dim is never < 0)."""
        a, b = self.get(node.inputs[0]), self.get(node.inputs[1])
        if a is None or b is None or (a.known and b.known):
            return None  # plain constants are the constant folder's job
        la, lb = len(a.values), len(b.values)
        if la != lb and 1 not in (la, lb):
            return None
        n = max(la, lb)
        out = []
        for i in range(n):
            x, y = a.values[0 if la == 1 else i], b.values[0 if lb == 1 else i]
            if x is not None and y is not None:
                out.append(x == y)
            elif (x is None and y is not None and y < 0) or (y is None and x is not None and x < 0):
                out.append(False)
            else:
                return None
        res = np.array(out, dtype=np.bool_)
        return res.reshape(()) if a.scalar and b.scalar else res


def _clamp(start: int, end: int, step: int, n: int) -> tuple[int, int, int]:
    """ONNX Slice clamping for one axis, expressed as Python slice bounds."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if step > 0:
        start, end = min(max(start, 0), n), min(max(end, 0), n)
        return start, end, step
    start = min(max(start, -1), n - 1)
    end = min(max(end, -1), n - 1)
    return start, (None if end < 0 else end), step  # type: ignore[return-value]
