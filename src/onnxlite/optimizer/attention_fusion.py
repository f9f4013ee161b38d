"""Attention fusion: BERT self-attention as exported by torch becomes com.microsoft ``Attention``.

Matched, from the Softmax outwards::

    q = Transpose(Reshape(X @ Wq + bq, [B, S, N, D]), [0, 2, 1, 3])     (k, v alike)
    scores = (q [* a]) @ (Transpose(Reshape(k), [0, 2, 3, 1]) [* b])     or FusedMatMul(transB=1)
    scores = scores / c  (or * c);  scores = scores + mask               (each optional)
    p = Softmax(scores, -1);  p = Where(IsNaN(p), 0, p)                  (guard optional)
    out = Reshape(Transpose(p @ v, [0, 2, 1, 3]), [B, S, N * D])

Wq/Wk/Wv/bq/bk/bv must be constants of one shape; every Reshape target and Transpose
permutation must be exactly the head split/merge, with N, D agreeing across q, k, v and the
output; intermediates may have no other readers. The mask is either HF's extended padding mask
``(1 - float(mask[:, None, None, :])) * c`` — passed as the raw 2-D ``mask_index`` (int32) with
``mask_filter_value=c`` — or any additive 4-D mask whose last two dims are provably (S, S),
passed as ``attention_bias``. The scale is the product of the constants found (``scale``
attribute when it is not 1/sqrt(D)). A NaN guard in the pattern is kept, applied to the
fused output, so fully masked rows still give 0. Anything else is left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, is_default, same_dim
from ._shapevec import ShapeVecs
from .base import MS_DOMAIN, PatternPass


@dataclass
class _Match:
    x: str = ""
    weights: list[np.ndarray] = field(default_factory=list)
    biases: list[np.ndarray | None] = field(default_factory=list)
    heads: tuple[int, int] = (0, 0)  # (N, D)
    scale: float = 1.0
    mask: tuple[str, str] | None = None  # ("raw", mask2d) or ("bias", value)
    mask_filter: float | None = None
    guard: bool = False
    nodes: list[Node] = field(default_factory=list)
    out: Node | None = None


class AttentionFusion(PatternPass):
    name = "attention_fusion"
    anchors = frozenset({"Softmax"})

    def rewrite(self, softmax: Node, idx: GraphIndex) -> bool:
        if not is_default(softmax) or not idx.ctx.can_emit(MS_DOMAIN, "Attention"):
            return False
        m = _Match()
        if not (
            _softmax_axis_ok(softmax, idx) and self._scores(softmax, idx, m) and self._output(softmax, idx, m)
        ):
            return False
        internal = m.nodes
        for n in internal:
            if n is m.out:
                continue
            for o in n.outputs:
                if o and not idx.only_used_by(o, internal):
                    return False
        self._emit(m, idx)
        return True

    # -- matching -----------------------------------------------------------------------------

    def _scores(self, softmax: Node, idx: GraphIndex, m: _Match) -> bool:
        cur = softmax.inputs[0]
        add = idx.producer_of(cur, "Add")
        if add is not None:
            for k in (0, 1):
                s, mask = add.inputs[k], add.inputs[1 - k]
                if self._qk(s, idx, m, probe=True):
                    if not self._mask(mask, idx, m):
                        return False
                    m.nodes.append(add)
                    cur = s
                    break
            else:
                return False
        return self._qk(cur, idx, m, probe=False)

    def _qk(self, name: str, idx: GraphIndex, m: _Match, probe: bool) -> bool:
        """scores [/ c | * c] <- MatMul/FusedMatMul(q, k); fills m unless probing."""
        scale = 1.0
        nodes: list[Node] = []
        p = idx.producer.get(name)
        if p is not None and is_default(p) and p.op_type in ("Div", "Mul") and len(p.inputs) == 2:
            c = idx.scalar(p.inputs[1])
            if c is not None and c != 0:
                scale = 1.0 / c if p.op_type == "Div" else c
                nodes.append(p)
                p = idx.producer.get(p.inputs[0])
        if p is None:
            return False
        if p.op_type == "MatMul" and is_default(p):
            k_perm = [0, 2, 3, 1]
        elif p.op_type == "FusedMatMul" and p.domain == MS_DOMAIN:
            flags = (
                attr(p, "transA", 0),
                attr(p, "transB", 0),
                attr(p, "transBatchA", 0),
                attr(p, "transBatchB", 0),
            )
            if flags == (0, 0, 0, 0):  # a MatMul whose scales matmul_scale_fusion took in
                k_perm = [0, 2, 3, 1]
            elif flags == (0, 1, 0, 0):
                k_perm = [0, 2, 1, 3]
            else:
                return False
            scale *= float(attr(p, "alpha", 1.0))
        else:
            return False
        nodes.append(p)
        q_side, k_side = p.inputs[0], p.inputs[1]
        q_scaled = _scaled(q_side, idx)
        k_scaled = _scaled(k_side, idx)
        if q_scaled is not None:
            q_side, f, n = q_scaled
            scale, nodes = scale * f, [*nodes, n]
        if k_scaled is not None:
            k_side, f, n = k_scaled
            scale, nodes = scale * f, [*nodes, n]
        q = self._head_split(q_side, [0, 2, 1, 3], idx)
        k = self._head_split(k_side, k_perm, idx)
        if q is None or k is None or q[0] != k[0] or q[1] != k[1]:
            return False
        if probe:
            return True
        m.x, m.heads, m.scale = q[0], q[1], scale
        m.weights, m.biases = [q[2], k[2]], [q[3], k[3]]
        m.nodes += nodes + q[4] + k[4]
        return True

    def _head_split(self, name: str, perm: list[int], idx: GraphIndex) -> tuple[Any, ...] | None:
        """Transpose(Reshape(X @ W + b, [B, S, N, D]), perm) -> (X, (N, D), W, b, nodes)."""
        t = idx.producer_of(name, "Transpose")
        if t is None or list(attr(t, "perm", [])) != perm:
            return None
        r = idx.producer_of(t.inputs[0], "Reshape")
        if r is None or len(r.inputs) != 2:
            return None
        lin = r.inputs[0]
        add = idx.producer_of(lin, "Add")
        nodes = [t, r]
        bias = None
        mm_out = lin
        if add is not None:
            for k in (0, 1):
                c = idx.const(add.inputs[k])
                if c is not None and idx.producer_of(add.inputs[1 - k], "MatMul") is not None:
                    bias, mm_out = c, add.inputs[1 - k]
                    nodes.append(add)
                    break
            else:
                return None
        mm = idx.producer_of(mm_out, "MatMul")
        w = idx.const(mm.inputs[1]) if mm is not None else None
        if mm is None or w is None or w.ndim != 2 or w.dtype != np.float32:
            return None
        nodes.append(mm)
        x = mm.inputs[0]
        xd = idx.dims(x)
        if xd is None or len(xd) != 3 or xd[2] != w.shape[0] or idx.elem_type(x) != TensorProto.FLOAT:
            return None
        hidden = w.shape[1]
        if bias is not None and (bias.shape != (hidden,) or bias.dtype != np.float32):
            return None
        heads = _split_target(_target(r, idx), x, xd, hidden, idx)
        if heads is None:
            return None
        return x, heads, w, bias, nodes

    def _mask(self, mask: str, idx: GraphIndex, m: _Match) -> bool:
        raw = _raw_mask(mask, idx)
        if raw is not None:
            m.mask, m.mask_filter = ("raw", raw[0]), raw[1]
            return True
        d = idx.dims(mask)
        if d is not None and len(d) == 4 and idx.elem_type(mask) == TensorProto.FLOAT:
            m.mask = ("bias", mask)  # dims 2, 3 are checked against (S, S) once S is known
            return True
        return False

    def _output(self, softmax: Node, idx: GraphIndex, m: _Match) -> bool:
        probs = softmax.outputs[0]
        nodes = [softmax]
        guard = _nan_guard(probs, idx)
        if guard is not None:
            probs = guard[-1].outputs[0]
            nodes += guard
            m.guard = True
        mm = idx.sole_consumer(probs)
        if mm is None or not is_default(mm) or mm.op_type != "MatMul" or mm.inputs[0] != probs:
            return False
        v = self._head_split(mm.inputs[1], [0, 2, 1, 3], idx)
        if v is None or v[0] != m.x or v[1] != m.heads or v[2].shape != m.weights[0].shape:
            return False
        t = idx.sole_consumer(mm.outputs[0])
        if t is None or t.op_type != "Transpose" or list(attr(t, "perm", [])) != [0, 2, 1, 3]:
            return False
        r = idx.sole_consumer(t.outputs[0])
        if r is None or r.op_type != "Reshape" or r.inputs[0] != t.outputs[0]:
            return False
        xd = idx.dims(m.x)
        n, d = m.heads
        if xd is None or len(r.inputs) != 2:
            return False
        if not _merge_target(_target(r, idx), m.x, xd, n * d, idx):
            return False
        s = xd[1]
        if m.mask is not None and m.mask[0] == "bias":
            md = idx.dims(m.mask[1]) or []
            if len(md) != 4 or not (same_dim(md[2], s) and same_dim(md[3], s)):
                return False
        if m.mask is not None and m.mask[0] == "raw":
            md = idx.dims(m.mask[1]) or []  # the raw mask covers every key: (B, S)
            if len(md) != 2 or not same_dim(md[1], s):
                return False
        if any(w.shape != m.weights[0].shape for w in (*m.weights, v[2])):
            return False
        m.weights.append(v[2])
        m.biases.append(v[3])
        m.nodes += nodes + [mm, t, r] + v[4]
        m.out = r
        return True

    # -- rewriting ----------------------------------------------------------------------------

    def _emit(self, m: _Match, idx: GraphIndex) -> None:
        ctx = idx.ctx
        hidden = m.weights[0].shape[1]
        w = np.concatenate(m.weights, axis=1)
        b = np.concatenate([np.zeros(hidden, np.float32) if x is None else x for x in m.biases])
        assert m.out is not None
        anchor = m.out
        inputs = [
            m.x,
            idx.add_initializer("attention_qkv_weight", w),
            idx.add_initializer("attention_qkv_bias", b),
        ]
        n, d = m.heads
        attrs: dict[str, object] = {"num_heads": n}
        if abs(m.scale * math.sqrt(d) - 1.0) > 1e-6:
            attrs["scale"] = float(m.scale)
        if m.mask is not None and m.mask[0] == "raw":
            inputs.append(self._int32_mask(m.mask[1], idx, anchor))
            attrs["mask_filter_value"] = float(m.mask_filter)  # type: ignore[arg-type]
        elif m.mask is not None:
            inputs += ["", "", m.mask[1]]
        out = m.out.outputs[0]
        att_out = ctx.fresh(f"{out}_attention") if m.guard else out
        idx.remove(*m.nodes)
        idx.insert(Node("Attention", inputs, [att_out], attrs, ctx.fresh("Attention"), MS_DOMAIN), anchor)
        idx.set_type(att_out, out)
        if m.guard:
            isnan = ctx.fresh(f"{out}_isnan")
            zero = idx.add_initializer("attention_zero", np.zeros(1, np.float32))
            idx.insert(Node("IsNaN", [att_out], [isnan], {}, ctx.fresh("IsNaN")), anchor)
            idx.insert(Node("Where", [isnan, zero, att_out], [out], {}, ctx.fresh("Where")), anchor)
        ctx.use_domain(MS_DOMAIN, 1)

    def _int32_mask(self, mask: str, idx: GraphIndex, anchor: Node) -> str:
        if idx.elem_type(mask) == TensorProto.INT32:
            return mask
        cache = idx.cache.setdefault("attention_masks", {})
        if mask not in cache:
            # One Cast shared by every layer, placed before the first; commit() orders the rest.
            name = idx.ctx.fresh(f"{mask}_int32")
            idx.insert(Node("Cast", [mask], [name], {"to": TensorProto.INT32}, idx.ctx.fresh("Cast")), anchor)
            cache[mask] = name
        return cache[mask]


def _softmax_axis_ok(softmax: Node, idx: GraphIndex) -> bool:
    axis = attr(softmax, "axis", -1 if idx.ctx.opset() >= 13 else 1)
    return axis in (-1, 3)


def _scaled(name: str, idx: GraphIndex) -> tuple[str, float, Node] | None:
    """name = Mul(y, c) with scalar constant c -> (y, c, node)."""
    p = idx.producer_of(name, "Mul")
    if p is None or len(p.inputs) != 2:
        return None
    for k in (0, 1):
        c = idx.scalar(p.inputs[k])
        if c is not None and idx.const(p.inputs[1 - k]) is None:
            return p.inputs[1 - k], c, p
    return None


Elem = int | tuple[str, int]  # a known value, or dim k of value v


def _target(reshape: Node, idx: GraphIndex) -> list[Elem] | None:
    """A Reshape's target elements: constants, or dims of other values (from Shape chains).
    With allowzero a 0 is a literal size, which no head split has: None then."""
    name = reshape.inputs[1]
    c = idx.const(name)
    if c is not None:
        if c.ndim != 1 or (attr(reshape, "allowzero", 0) and (c == 0).any()):
            return None
        return [int(v) for v in c]
    if attr(reshape, "allowzero", 0):
        return None
    vecs = idx.cache.get("shapevecs")
    if vecs is None:
        vecs = idx.cache["shapevecs"] = ShapeVecs(idx)
    vec = vecs.get(name)
    if vec is None or vec.scalar:
        return None
    out: list[Elem] = []
    for j, v in enumerate(vec.values):
        origin = vec.origin(j)
        if v is not None:
            out.append(v)
        elif origin is not None:
            out.append(origin)
        else:
            return None
    return out


def _split_target(
    t: list[Elem] | None, x: str, xd: list, hidden: int, idx: GraphIndex
) -> tuple[int, int] | None:
    """(N, D) when Reshape target ``t`` turns [B, S, hidden] (dims of x) into [B, S, N, D]."""
    if t is None or len(t) != 4 or not _keeps(t[1], 1, x, xd, idx):
        return None
    n, d = t[2], t[3]
    if not isinstance(n, int) or not isinstance(d, int):
        return None
    if t[0] == -1 and n > 0 and d > 0:
        pass  # the batch is what remains once S, N and D are pinned down
    elif not _keeps(t[0], 0, x, xd, idx):
        return None
    if n == -1 and d > 0 and hidden % d == 0:
        n = hidden // d
    elif d == -1 and n > 0 and hidden % n == 0:
        d = hidden // n
    if n <= 0 or d <= 0 or n * d != hidden:
        return None
    return n, d


def _merge_target(t: list[Elem] | None, x: str, xd: list, hidden: int, idx: GraphIndex) -> bool:
    """Whether Reshape target ``t`` turns [B, S, N, D] into [B, S, N*D] (B, S: dims of x)."""
    if t is None or len(t) != 3 or not _keeps(t[1], 1, x, xd, idx):
        return False
    if t[0] == -1:  # the batch is what remains once S and the hidden size are pinned down
        return t[2] == hidden
    return _keeps(t[0], 0, x, xd, idx) and t[2] in (hidden, -1)


def _keeps(t: Elem, j: int, x: str, xd: list, idx: GraphIndex) -> bool:
    """Whether target element ``t`` at position ``j`` reproduces dim j of ``x``: 0 (copy), the
    same static size, or that very dim read through Shape."""
    if isinstance(t, int):
        return t == 0 or (isinstance(xd[j], int) and xd[j] == t)
    v, k = t
    if v == x and k == j:
        return True
    vd = idx.dims(v)
    return vd is not None and k < len(vd) and same_dim(vd[k], xd[j])


def _nan_guard(probs: str, idx: GraphIndex) -> list[Node] | None:
    """Where(IsNaN(p), 0, p): [IsNaN, Where]."""
    users = idx.users(probs)
    if len(users) != 2 or idx.pinned(probs):
        return None
    isnan = next((u for u in users if u.op_type == "IsNaN" and is_default(u)), None)
    where = next((u for u in users if u.op_type == "Where" and is_default(u)), None)
    if isnan is None or where is None or where.inputs[0] != isnan.outputs[0] or where.inputs[2] != probs:
        return None
    zero = idx.const(where.inputs[1])
    if zero is None or zero.size != 1 or zero.reshape(-1)[0] != 0:
        return None
    return [isnan, where]


def _raw_mask(mask: str, idx: GraphIndex) -> tuple[str, float] | None:
    """HF's ``(1 - float(m[:, None, None, :])) * c`` -> (m, c), m a 2-D graph value."""
    mul = idx.producer_of(mask, "Mul")
    if mul is None or len(mul.inputs) != 2:
        return None
    for k in (0, 1):
        c = idx.scalar(mul.inputs[k])
        sub = idx.producer_of(mul.inputs[1 - k], "Sub")
        if c is None or sub is None or idx.scalar(sub.inputs[0]) != 1.0:
            continue
        cur, axes, casts = sub.inputs[1], [], 0
        while True:
            p = idx.producer.get(cur)
            if p is None or not is_default(p):
                break
            if p.op_type == "Cast":
                casts += 1
            elif p.op_type == "Unsqueeze":
                a = _unsqueeze_axes(p, idx)
                if a is None:
                    return None
                axes.append(a)
            else:
                break
            cur = p.inputs[0]
        d = idx.dims(cur)
        if casts > 1 or d is None or len(d) != 2 or not _adds_axes_1_2(axes):
            return None
        if idx.elem_type(cur) not in (
            TensorProto.INT64,
            TensorProto.INT32,
            TensorProto.FLOAT,
            TensorProto.BOOL,
            TensorProto.INT8,
            TensorProto.UINT8,
        ):
            return None
        return cur, c
    return None


def _unsqueeze_axes(node: Node, idx: GraphIndex) -> list[int] | None:
    if len(node.inputs) > 1:
        a = idx.const(node.inputs[1])
        return None if a is None else [int(v) for v in a.reshape(-1)]
    a = attr(node, "axes")
    return None if a is None else [int(v) for v in a]


def _adds_axes_1_2(steps: list[list[int]]) -> bool:
    """Unsqueezes (listed outermost first) that turn [B, T] into [B, 1, 1, T]."""
    shape = ["b", "t"]
    for axes in reversed(steps):
        r = len(shape) + len(axes)
        for a in sorted(x + r if x < 0 else x for x in axes):
            shape.insert(a, "1")
    return shape == ["b", "1", "1", "t"]
