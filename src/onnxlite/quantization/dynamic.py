"""Dynamic quantization: weights to int8 offline, activations quantized at run time.

Each per-op quantizer takes the node and returns the nodes that replace it (or None to keep it).
Only standard ONNX ops are emitted (DynamicQuantizeLinear, MatMulInteger, ConvInteger, Cast, Mul),
unless ``UseContribOps`` asks for com.microsoft DynamicQuantizeMatMul.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import TensorProto

from ..ir.graph import Node
from ._rewrite import Rewriter, reduce_max_node
from .options import QuantConfig
from .qmath import quantize_weight
from .types import QuantType


class DynamicQuantizer:
    def __init__(self, rw: Rewriter, cfg: QuantConfig) -> None:
        self.rw = rw
        self.cfg = cfg
        self.x = cfg.extra_options
        self._act_cache: dict[str, tuple[str, str, str | None]] = {}
        self._row_zp: dict[str, str] = {}  # asymmetric per-row activations: their zero points
        self.ops: dict[str, Callable[[Node], list[Node] | None]] = {
            "MatMul": self.matmul,
            "Gemm": self.gemm,
            "Conv": self.conv,
            "Gather": self.gather,
        }
        self.quantized: list[Node] = []

    # -- activations --------------------------------------------------------------------------

    def _activation(self, x: str, out: list[Node]) -> tuple[str, str, str | None]:
        """(quantized, scale, zero point) for activation ``x``, made once and shared by its users."""
        if x in self._act_cache:
            return self._act_cache[x]
        rw = self.rw
        if self.x.ActivationPerRow and not self.x.ActivationSymmetric:
            # asymmetric per-row: s = (max - min) / 255, zp = round(-min / s) per row (last axis);
            # MatMulInteger runs without a zero point, the matmul corrects with zp * colsum(W)
            mn = reduce_max_node(rw, x, -1, op="ReduceMin")
            mx = reduce_max_node(rw, x, -1)
            zero = rw.init(f"{x}_zero", np.array(0.0, dtype=np.float32))
            tiny = rw.init(f"{x}_tiny", np.array(1e-30, dtype=np.float32))
            c255 = rw.init(f"{x}_c255", np.array(255.0, dtype=np.float32))
            mn0 = rw.node("Min", [mn.outputs[0], zero])
            mx0 = rw.node("Max", [mx.outputs[0], zero])
            span = rw.node("Sub", [mx0.outputs[0], mn0.outputs[0]])
            sc0 = rw.node("Div", [span.outputs[0], c255])
            sc = rw.node("Max", [sc0.outputs[0], tiny], name=f"{x}_scale")
            neg = rw.node("Div", [mn0.outputs[0], sc.outputs[0]])
            zpf = rw.node("Neg", [neg.outputs[0]])
            zpr = rw.node("Round", [zpf.outputs[0]], name=f"{x}_zp")
            dv = rw.node("Div", [x, sc.outputs[0]])
            rd = rw.node("Round", [dv.outputs[0]])
            sh = rw.node("Add", [rd.outputs[0], zpr.outputs[0]])
            cl = rw.node("Clip", [sh.outputs[0], zero, c255])
            q = rw.node("Cast", [cl.outputs[0]], name=f"{x}_quant", to=TensorProto.UINT8)
            out += [mn, mx, mn0, mx0, span, sc0, sc, neg, zpf, zpr, dv, rd, sh, cl, q]
            res: tuple[str, str, str | None] = (q.outputs[0], sc.outputs[0], None)
            self._row_zp[x] = zpr.outputs[0]
        elif self.x.ActivationPerRow:
            # symmetric per-row scale s = max|x| / 127 over the last axis; stored as uint8 with zp 128
            ab = rw.node("Abs", [x], name=f"{x}_abs")
            mx = reduce_max_node(rw, ab.outputs[0], -1)
            tiny = rw.init(f"{x}_tiny", np.array(1e-30, dtype=np.float32))
            c127 = rw.init(f"{x}_c127", np.array(127.0, dtype=np.float32))
            c128 = rw.init(f"{x}_c128", np.array(128.0, dtype=np.float32))
            mxs = rw.node("Max", [mx.outputs[0], tiny])
            sc = rw.node("Div", [mxs.outputs[0], c127], name=f"{x}_scale")
            dv = rw.node("Div", [x, sc.outputs[0]])
            rd = rw.node("Round", [dv.outputs[0]])
            sh = rw.node("Add", [rd.outputs[0], c128])
            q = rw.node("Cast", [sh.outputs[0]], name=f"{x}_quant", to=TensorProto.UINT8)
            zp = rw.init(f"{x}_zp", np.array(128, dtype=np.uint8))
            out += [ab, mx, mxs, sc, dv, rd, sh, q]
            res = (q.outputs[0], sc.outputs[0], zp)
        else:
            n = rw.node("DynamicQuantizeLinear", [x], 3, name=f"{x}_QuantizeLinear")
            out.append(n)
            res = (n.outputs[0], n.outputs[1], n.outputs[2])
        self._act_cache[x] = res
        return res

    def _weight(
        self, name: str, w: np.ndarray, axis: int | None, symmetric: bool | None = None
    ) -> tuple[str, str, str]:
        wt = self.cfg.weight_type
        if wt not in (QuantType.QInt8, QuantType.QUInt8):
            raise ValueError(f"dynamic quantization supports QInt8 / QUInt8 weights, got {wt}")
        sym = self.x.weight_symmetric(wt) if symmetric is None else symmetric
        q, p = quantize_weight(w, wt, axis=axis, symmetric=sym, reduce_range=self.cfg.reduce_range)
        zp = p.zero_point
        if zp.size > 1 and np.all(zp == zp.flat[0]):
            zp = zp.reshape(-1)[:1].reshape(())  # one zero point: the form every runtime accepts
        rw = self.rw
        return (
            rw.init(f"{name}_quantized", q),
            rw.init(f"{name}_scale", p.scale),
            rw.init(f"{name}_zero_point", zp),
        )

    # -- per-op quantizers ----------------------------------------------------------------------

    def _matmul_core(self, node: Node, a: str, w: np.ndarray, wname: str, y: str) -> list[Node]:
        """y = a @ w with a float activation and a constant 2-D weight [K, N]."""
        rw = self.rw
        out: list[Node] = []
        axis = 1 if self.cfg.per_channel else None
        bq, bs, bzp = self._weight(wname, w, axis)
        if self.x.UseContribOps and not self.x.ActivationPerRow:
            rw.use_domain("com.microsoft")
            out.append(
                Node(
                    "DynamicQuantizeMatMul",
                    [a, bq, bs, bzp],
                    [y],
                    name=rw.unique(node.name + "_quant"),
                    domain="com.microsoft",
                )
            )
            return out
        aq, as_, azp = self._activation(a, out)
        mi = rw.node("MatMulInteger", [aq, bq, azp or "", bzp], name=f"{node.name}_MatMulInteger")
        cast = rw.node("Cast", [mi.outputs[0]], name=f"{node.name}_cast", to=TensorProto.FLOAT)
        if a in self._row_zp:
            # (q - zp) @ (Wq - wzp) = q @ (Wq - wzp) - zp * colsum(Wq - wzp)
            wq = rw.graph.initializers[bq].astype(np.float64)
            wz = np.asarray(rw.graph.initializers[bzp]).astype(np.float64)
            colsum = rw.init(f"{wname}_colsum", (wq - wz).sum(axis=0).astype(np.float32))
            corr = rw.node("Mul", [self._row_zp[a], colsum], name=f"{node.name}_zp_corr")
            sub = rw.node("Sub", [cast.outputs[0], corr.outputs[0]])
            m1 = rw.node("Mul", [sub.outputs[0], as_], name=f"{node.name}_mul_a")
            m2 = Node("Mul", [m1.outputs[0], bs], [y], name=rw.unique(f"{node.name}_mul_b"))
            out += [mi, cast, corr, sub, m1, m2]
        elif self.x.ActivationPerRow:
            m1 = rw.node("Mul", [cast.outputs[0], as_], name=f"{node.name}_mul_a")
            m2 = Node("Mul", [m1.outputs[0], bs], [y], name=rw.unique(f"{node.name}_mul_b"))
            out += [mi, cast, m1, m2]
        else:
            sc = rw.node("Mul", [as_, bs], name=f"{node.name}_scales_mul")
            m = Node(
                "Mul", [cast.outputs[0], sc.outputs[0]], [y], name=rw.unique(f"{node.name}_output_scale_mul")
            )
            out += [mi, cast, sc, m]
        return out

    def matmul(self, node: Node) -> list[Node] | None:
        rw = self.rw
        a, b = node.inputs[:2]
        w = rw.const(b)
        if w is None or rw.const(a) is not None:
            return (
                None if self.x.MatMulConstBOnly or self.x.ExcludeActivationMatMul else self._matmul_dyn(node)
            )
        if w.ndim != 2 or w.dtype != np.float32 or not rw.is_float32(a):
            return None
        return self._matmul_core(node, a, w, b, node.outputs[0])

    def _matmul_dyn(self, node: Node) -> list[Node] | None:
        """Both inputs computed at run time: quantize both with DynamicQuantizeLinear."""
        rw = self.rw
        a, b = node.inputs[:2]
        if not (rw.is_float32(a) and rw.is_float32(b)):
            return None
        out: list[Node] = []
        aq, as_, azp = self._activation_tensor(a, out)
        bq, bs, bzp = self._activation_tensor(b, out)
        mi = rw.node("MatMulInteger", [aq, bq, azp, bzp], name=f"{node.name}_MatMulInteger")
        cast = rw.node("Cast", [mi.outputs[0]], to=TensorProto.FLOAT)
        sc = rw.node("Mul", [as_, bs])
        m = Node(
            "Mul", [cast.outputs[0], sc.outputs[0]], [node.outputs[0]], name=rw.unique(f"{node.name}_out")
        )
        return [*out, mi, cast, sc, m]

    def _activation_tensor(self, x: str, out: list[Node]) -> tuple[str, str, str]:
        key = "__tensor__" + x
        if key not in self._act_cache:
            n = self.rw.node("DynamicQuantizeLinear", [x], 3, name=f"{x}_QuantizeLinear")
            out.append(n)
            self._act_cache[key] = (n.outputs[0], n.outputs[1], n.outputs[2])
        r = self._act_cache[key]
        return r[0], r[1], r[2] or ""

    def gemm(self, node: Node) -> list[Node] | None:
        rw = self.rw
        a, b = node.inputs[:2]
        c = node.inputs[2] if len(node.inputs) > 2 else ""
        w = rw.const(b)
        if w is None or node.attrs.get("transA", 0) or w.ndim != 2 or not rw.is_float32(a):
            return None
        if node.attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        alpha = float(node.attrs.get("alpha", 1.0))
        beta = float(node.attrs.get("beta", 1.0))
        if alpha != 1.0:
            w = (w * alpha).astype(np.float32)
        y = node.outputs[0]
        mm_out = rw.unique(f"{node.name}_matmul_out") if c else y
        out = self._matmul_core(node, a, w, b, mm_out)
        if c:
            cv = rw.const(c)
            if cv is not None and beta != 1.0:
                c = rw.init(f"{c}_scaled", (cv * beta).astype(np.float32))
            elif beta != 1.0:
                bn = rw.init(f"{node.name}_beta", np.array(beta, dtype=np.float32))
                m = rw.node("Mul", [c, bn])
                out.append(m)
                c = m.outputs[0]
            out.append(Node("Add", [mm_out, c], [y], name=rw.unique(f"{node.name}_bias_add")))
        return out

    def conv(self, node: Node) -> list[Node] | None:
        rw = self.rw
        x, wn = node.inputs[:2]
        bias = node.inputs[2] if len(node.inputs) > 2 else ""
        w = rw.const(wn)
        if w is None or w.dtype != np.float32 or not rw.is_float32(x):
            return None
        out: list[Node] = []
        axis = 0 if self.cfg.per_channel else None
        # per-channel ConvInteger needs one zero point (onnxruntime rejects a vector): symmetric
        wq, ws, wzp = self._weight(wn, w, axis, symmetric=True if axis is not None else None)
        if self.x.ActivationPerRow:  # rows mean nothing for images: convolutions stay per tensor
            xq, xs, xzp = self._activation_tensor(x, out)
        else:
            xq, xs, xzp_ = self._activation(x, out)
            xzp = xzp_ or ""
        attrs = dict(node.attrs)
        ci = rw.node("ConvInteger", [xq, wq, xzp, wzp], name=f"{node.name}_ConvInteger", **attrs)
        cast = rw.node("Cast", [ci.outputs[0]], to=TensorProto.FLOAT)
        m = w.shape[0]
        ws_val = rw.graph.initializers[ws]
        shape = [1, m] + [1] * (w.ndim - 2) if np.asarray(ws_val).size > 1 else []
        if shape:
            rw.graph.initializers[ws] = np.asarray(ws_val).reshape(shape)
        sc = rw.node("Mul", [xs, ws])
        y = node.outputs[0]
        mul_out = rw.unique(f"{node.name}_scaled") if bias else y
        mul = Node("Mul", [cast.outputs[0], sc.outputs[0]], [mul_out], name=rw.unique(f"{node.name}_mul"))
        out += [ci, cast, sc, mul]
        if bias:
            bv = rw.const(bias)
            if bv is not None:
                b = rw.init(
                    f"{bias}_reshaped", np.asarray(bv, dtype=np.float32).reshape([1, m] + [1] * (w.ndim - 2))
                )
            else:
                shp = rw.init(
                    f"{node.name}_bias_shape", np.array([1, m] + [1] * (w.ndim - 2), dtype=np.int64)
                )
                r = rw.node("Reshape", [bias, shp])
                out.append(r)
                b = r.outputs[0]
            out.append(Node("Add", [mul_out, b], [y], name=rw.unique(f"{node.name}_bias_add")))
        return out

    def gather(self, node: Node) -> list[Node] | None:
        """Embedding tables: int8 rows; per row scales when per_channel (gathered with the rows)."""
        rw = self.rw
        data, idx = node.inputs[:2]
        w = rw.const(data)
        if w is None or w.dtype != np.float32 or w.ndim != 2 or node.attrs.get("axis", 0) != 0:
            return None
        y = node.outputs[0]
        if self.cfg.per_channel:
            q, p = quantize_weight(w, QuantType.QInt8, axis=0, symmetric=True)
            qn = rw.init(f"{data}_quantized", q)
            sn = rw.init(f"{data}_scale", p.scale.reshape(-1, 1))
            g1 = rw.node("Gather", [qn, idx], name=f"{node.name}_q", axis=0)
            g2 = rw.node("Gather", [sn, idx], name=f"{node.name}_s", axis=0)
            cast = rw.node("Cast", [g1.outputs[0]], to=TensorProto.FLOAT)
            mul = Node("Mul", [cast.outputs[0], g2.outputs[0]], [y], name=rw.unique(f"{node.name}_mul"))
            return [g1, g2, cast, mul]
        q, p = quantize_weight(
            w, self.cfg.weight_type, axis=None, symmetric=self.x.weight_symmetric(self.cfg.weight_type)
        )
        qn = rw.init(f"{data}_quantized", q)
        sn = rw.init(f"{data}_scale", p.scale)
        zn = rw.init(f"{data}_zero_point", p.zero_point)
        g = rw.node("Gather", [qn, idx], name=f"{node.name}_q", axis=0)
        dq = Node("DequantizeLinear", [g.outputs[0], sn, zn], [y], name=rw.unique(f"{node.name}_dq"))
        return [g, dq]

    def run(self) -> None:
        g = self.rw.graph
        new_nodes: list[Node] = []
        for node in g.nodes:
            fn = self.ops.get(node.op_type) if not node.domain else None
            repl = None
            if fn is not None and self.cfg.selects(node.name, node.op_type):
                repl = fn(node)
            if repl is None:
                new_nodes.append(node)
            else:
                new_nodes.extend(repl)
                self.quantized.append(node)
        g.nodes = new_nodes
        self.rw.drop_unused_initializers()


DYNAMIC_DEFAULT_OPS = ("MatMul", "Gemm", "Conv", "Gather")
