"""Static quantization: calibrate activation ranges, then insert QuantizeLinear/DequantizeLinear
pairs (QDQ), optionally folded into QLinear operators (QOperator).

Per-op rules are data: which inputs an op quantizes, whether its weight is per channel (and on which
axis), and whether its output shares its input's parameters (the "direct" ops that only move data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir.graph import Model, Node
from ._rewrite import Rewriter
from .calibrate import collect, create_calibrator
from .options import QuantConfig, StaticQuantConfig
from .qmath import QParams, compute_scale_zp, quantize_bias, quantize_weight
from .types import QuantFormat, QuantType, qrange

MS_DOMAIN = "com.microsoft"


@dataclass(frozen=True)
class OpRule:
    inputs: tuple[int, ...] | None  # indices of the inputs to quantize; None: all
    weight_axis: int | None = None  # per-channel axis of input 1 when it is a constant
    bias: int | None = None  # index of an int32 bias input (scale = input scale * weight scale)
    direct: bool = False  # output shares the input's scale / zero point


RULES: dict[str, OpRule] = {
    "Conv": OpRule((0, 1), weight_axis=0, bias=2),
    "ConvTranspose": OpRule((0, 1), weight_axis=1, bias=2),
    "Gemm": OpRule((0, 1), weight_axis=None, bias=2),  # axis from transB
    "MatMul": OpRule((0, 1), weight_axis=-1),
    "Add": OpRule((0, 1)),
    "Mul": OpRule((0, 1)),
    "Concat": OpRule(None),
    "Relu": OpRule((0,)),
    "Clip": OpRule((0,)),
    "LeakyRelu": OpRule((0,)),
    "Sigmoid": OpRule((0,)),
    "Softmax": OpRule((0,)),
    "AveragePool": OpRule((0,)),
    "GlobalAveragePool": OpRule((0,)),
    "MaxPool": OpRule((0,), direct=True),
    "GlobalMaxPool": OpRule((0,), direct=True),
    "Reshape": OpRule((0,), direct=True),
    "Transpose": OpRule((0,), direct=True),
    "Flatten": OpRule((0,), direct=True),
    "Squeeze": OpRule((0,), direct=True),
    "Unsqueeze": OpRule((0,), direct=True),
    "Resize": OpRule((0,), direct=True),
    "Slice": OpRule((0,), direct=True),
    "Split": OpRule((0,), direct=True),
    "Gather": OpRule((0,), direct=True),
}

_INT_DIRECT = {"MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Gather"}


# activations whose calibrated range exceeds this stay float (masks filled with float32 min)
MAX_REAL_RANGE = 1e6


class StaticQuantizer:
    def __init__(self, model: Model, cfg: StaticQuantConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.x = cfg.extra_options
        self.rw = Rewriter(model)
        self.selected: list[Node] = [
            n
            for n in model.graph.nodes
            if not n.domain and n.op_type in RULES and cfg.selects(n.name, n.op_type) and self._eligible(n)
        ]
        self.selected = self._drop_unfed_direct_ops(self.selected)
        self.quantized: list[Node] = []
        self.ranges: dict[str, tuple[float, float]] = {}
        self.qparams: dict[str, QParams] = {}
        self.fused_relu = 0

    def _drop_unfed_direct_ops(self, nodes: list[Node]) -> list[Node]:
        """As onnxruntime: a data-movement op is quantized only when a quantized op feeds it
        (ForceQuantizeNoInputCheck lifts this), so float regions get no useless Q/DQ pairs."""
        produced_q: set[str] = set()
        keep = []
        # 4-bit tensors: no runtime has int4 pooling / reshapes, keep data movement in float
        four_bit = self.cfg.activation_type in (QuantType.QInt4, QuantType.QUInt4)
        for n in nodes:  # graph order: producers first
            unfed = n.inputs[0] not in produced_q and not self.x.ForceQuantizeNoInputCheck
            if RULES[n.op_type].direct and (four_bit or unfed):
                continue
            keep.append(n)
            produced_q.update(n.outputs)
        return keep

    # -- what to quantize -----------------------------------------------------------------------

    def _eligible(self, n: Node) -> bool:
        rw = self.rw
        ins = self._inputs(n)
        if not ins or not all(rw.is_float32(i) for i in ins):
            return False
        if not rw.is_float32(n.outputs[0]) and not self._const_fold_ok(n):
            return False
        if n.op_type == "MatMul":
            const_b = rw.const(n.inputs[1]) is not None
            if not const_b and (self.x.MatMulConstBOnly or self.x.ExcludeActivationMatMul):
                return False
        return not (n.op_type == "Gemm" and n.attrs.get("transA", 0))

    def _const_fold_ok(self, n: Node) -> bool:
        return self.rw.graph.type_of(n.outputs[0]) is None  # unknown type: trust the inputs

    def _inputs(self, n: Node) -> list[str]:
        rule = RULES[n.op_type]
        idx = range(len(n.inputs)) if rule.inputs is None else rule.inputs
        return [n.inputs[i] for i in idx if i < len(n.inputs) and n.inputs[i]]

    def _activations(self) -> list[str]:
        rw = self.rw
        names: list[str] = []
        seen: set[str] = set()
        excl_out = set(self.x.OpTypesToExcludeOutputQuantization)
        for n in self.selected:
            cand = [i for i in self._inputs(n) if rw.const(i) is None]
            if n.op_type not in excl_out:
                cand.append(n.outputs[0])
            for t in cand:
                if t not in seen:
                    seen.add(t)
                    names.append(t)
        return names

    # -- calibration ----------------------------------------------------------------------------

    def calibrate(
        self, data: Any, progress: Callable[[int], None] | None = None
    ) -> dict[str, tuple[float, float]]:
        from ..ir.save import model_to_proto

        x = self.x
        cal = create_calibrator(
            self.cfg.calibrate_method,
            symmetric=x.CalibTensorRangeSymmetric,
            moving_average=x.CalibMovingAverage,
            averaging_constant=x.CalibMovingAverageConstant,
            percentile=x.CalibPercentile,
            num_bins=x.CalibNumBins,
            num_quantized_bins=x.CalibNumQuantizedBins,
        )
        tensors = self._activations()
        if data is None:
            raise ValueError("quantize_static needs a calibration_data_reader")
        self.ranges = collect(
            model_to_proto(self.model),
            tensors,
            data,
            cal,
            max_outputs=x.CalibMaxIntermediateOutputs,
            progress=progress,
        )
        return self.ranges

    # -- parameters -----------------------------------------------------------------------------

    def _act_params(self, t: str) -> QParams | None:
        if t in self.qparams:
            return self.qparams[t]
        ov = self.x.tensor_override(t) or {}
        qtype = ov.get("quant_type", self.cfg.activation_type)
        if "scale" in ov and "zero_point" in ov:
            p = QParams(
                np.asarray(ov["scale"], dtype=np.float32),
                np.asarray(ov["zero_point"]).astype(qtype.np_dtype),
                qtype,
            )
            self.qparams[t] = p
            return p
        r = self.ranges.get(t)
        if r is None and "rmin" not in ov:
            return None
        if r is not None and "rmin" not in ov and not max(abs(r[0]), abs(r[1])) <= MAX_REAL_RANGE:
            return None  # a sentinel such as an attention mask's -3.4e38: 8 bits cannot hold it
        rmin = ov.get("rmin", r[0] if r else 0.0)
        rmax = ov.get("rmax", r[1] if r else 0.0)
        sym = ov.get("symmetric", self.x.ActivationSymmetric)
        scale, zp = compute_scale_zp(
            rmin,
            rmax,
            qtype,
            symmetric=sym,
            reduce_range=ov.get("reduce_range", False),
            min_real_range=self.x.MinimumRealRange,
        )
        p = QParams(scale, zp, qtype)
        self.qparams[t] = p
        return p

    def _propagate_direct(self) -> None:
        """Data-movement ops keep their input's parameters on their output (in graph order)."""
        for n in self.selected:
            if RULES[n.op_type].direct and n.inputs[0] in self.qparams:
                for o in n.outputs:
                    if self.x.tensor_override(o) is None:
                        self.qparams[o] = self.qparams[n.inputs[0]]

    def _weight_axis(self, n: Node, w: np.ndarray) -> int | None:
        if not self.cfg.per_channel:
            return None
        ax = self.x.per_channel_axis(n.op_type)
        if ax is None:
            if n.op_type == "Gemm":
                ax = 0 if n.attrs.get("transB", 0) else 1
            else:
                ax = RULES[n.op_type].weight_axis
        if ax is None or w.ndim < 1:
            return None
        return ax % w.ndim

    # -- rewriting ------------------------------------------------------------------------------

    def _fuse_relu(self) -> None:
        """As onnxruntime: Conv/Gemm/MatMul/Add -> Relu loses the Relu when the Relu's output is
        quantized with zero point = qmin (asymmetric ranges start at 0): the Q clamps instead."""
        rw = self.rw
        if self.x.QDQKeepRemovableActivations:
            return
        sel = {id(n) for n in self.selected}
        drop: set[int] = set()
        for n in self.selected:
            if n.op_type not in ("Conv", "Gemm", "MatMul", "Add"):
                continue
            y = n.outputs[0]
            us = rw.consumers.get(y, [])
            if len(us) != 1 or y in rw.graph_outputs or us[0].op_type != "Relu" or id(us[0]) not in sel:
                continue
            r = us[0]
            z = r.outputs[0]
            zc = rw.consumers.get(z, [])
            if z in rw.graph_outputs or not zc or any(id(c) not in sel for c in zc):
                continue
            if any(rw.const(t) is None and self._act_params(t) is None for t in self._inputs(n)):
                continue  # n itself will stay float
            p = self._act_params(z)
            if p is None or p.qtype.is_float8 or int(p.zero_point) != qrange(p.qtype)[0]:
                continue
            n.outputs[0] = z
            rw.producer[z] = n
            drop.add(id(r))
        if drop:
            # a fused Relu runs as the clamp of its producer's int8 output: count it as int8
            self.quantized.extend(n for n in self.selected if id(n) in drop)
            self.selected = [n for n in self.selected if id(n) not in drop]
            rw.graph.nodes = [n for n in rw.graph.nodes if id(n) not in drop]
            self.fused_relu = len(drop)

    def run(self) -> None:
        rw = self.rw
        self._fuse_relu()
        for n in self.selected:
            for t in [i for i in self._inputs(n) if rw.const(i) is None] + [n.outputs[0]]:
                self._act_params(t)
        self._propagate_direct()
        qdq_of: dict[str, str] = {}  # float tensor -> dequantized tensor
        new_nodes: list[Node] = []
        pending: dict[str, list[Node]] = {}  # Q/DQ to emit right after a producer
        weight_cache: dict[tuple[str, int | None], tuple[str, QParams]] = {}
        selected = {id(n) for n in self.selected}
        excl_out = set(self.x.OpTypesToExcludeOutputQuantization)

        def qdq_for(t: str, consumer: Node) -> str | None:
            p = self.qparams.get(t)
            prod = rw.producer.get(t)
            if p is None or (prod is not None and prod.op_type in excl_out):
                return None
            if t in qdq_of and not self.x.DedicatedQDQPair:
                return qdq_of[t]
            q = rw.node(
                "QuantizeLinear",
                [t, rw.init(f"{t}_scale", p.scale), rw.init(f"{t}_zero_point", p.zero_point)],
                name=f"{t}_QuantizeLinear",
            )
            dq = rw.node(
                "DequantizeLinear", [q.outputs[0], q.inputs[1], q.inputs[2]], name=f"{t}_DequantizeLinear"
            )
            q.outputs[0] = rw.unique(f"{t}_quantized")
            dq.inputs[0] = q.outputs[0]
            dq.outputs[0] = rw.unique(f"{t}_dequantized")
            if rw.producer.get(t) is None:  # graph input: emit at the front
                new_nodes.insert(0, dq)
                new_nodes.insert(0, q)
            else:
                pending.setdefault(t, []).extend([q, dq])
            qdq_of[t] = dq.outputs[0]
            return dq.outputs[0]

        def weight_for(n: Node, idx: int) -> tuple[str, QParams] | None:
            name = n.inputs[idx]
            w = rw.const(name)
            if w is None or w.dtype != np.float32:
                return None
            axis = self._weight_axis(n, w) if idx == 1 else None
            key = (name, axis)
            if key in weight_cache:
                return weight_cache[key]
            ov = self.x.tensor_override(name) or {}
            if idx == 1 and n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
                wt = ov.get("quant_type", self.cfg.weight_type)
                sym = ov.get("symmetric", self.x.weight_symmetric(wt))
            else:  # constants of Add, Mul, Concat... are quantized as activations (one type per op)
                wt = ov.get("quant_type", self.cfg.activation_type)
                sym = ov.get("symmetric", self.x.ActivationSymmetric)
            q, p = quantize_weight(w, wt, axis=axis, symmetric=sym, reduce_range=self.cfg.reduce_range)
            s_n = rw.init(f"{name}_scale", p.scale)
            z_n = rw.init(f"{name}_zero_point", p.zero_point)
            attrs: dict[str, Any] = {"axis": axis} if axis is not None else {}
            if self.x.AddQDQPairToWeight:
                qn = rw.node("QuantizeLinear", [name, s_n, z_n], name=f"{name}_QuantizeLinear", **attrs)
                src = qn.outputs[0]
                new_nodes.append(qn)
            else:
                src = rw.init(f"{name}_quantized", q)
            dq = rw.node("DequantizeLinear", [src, s_n, z_n], name=f"{name}_DequantizeLinear", **attrs)
            new_nodes.append(dq)
            weight_cache[key] = (dq.outputs[0], p)
            return weight_cache[key]

        def bias_for(n: Node, idx: int, wp: QParams) -> str | None:
            name = n.inputs[idx]
            b = rw.const(name)
            xp = self.qparams.get(n.inputs[0])
            if b is None or xp is None or not self.x.QuantizeBias or b.ndim != 1:
                return None
            qb, s = quantize_bias(b, xp.scale, wp.scale)
            qn = rw.init(f"{name}_quantized", qb)
            sn = rw.init(f"{name}_quantized_scale", s.reshape(-1) if s.size > 1 else s.reshape(()))
            zn = rw.init(
                f"{name}_quantized_zero_point", np.zeros(s.shape if s.size > 1 else (), dtype=np.int32)
            )
            attrs: dict[str, Any] = {"axis": 0} if s.size > 1 else {}
            dq = rw.node("DequantizeLinear", [qn, sn, zn], name=f"{name}_DequantizeLinear", **attrs)
            new_nodes.append(dq)
            return dq.outputs[0]

        for n in self.rw.graph.nodes:
            if id(n) in selected and any(
                rw.const(t) is None and t not in self.qparams for t in self._inputs(n)
            ):
                selected.discard(id(n))  # an input stays float: the whole op stays float
            if id(n) in selected:
                rule = RULES[n.op_type]
                new_inputs = list(n.inputs)
                wp: QParams | None = None
                for i in range(len(n.inputs)) if rule.inputs is None else rule.inputs:
                    if i >= len(n.inputs) or not n.inputs[i]:
                        continue
                    t = n.inputs[i]
                    if rw.const(t) is not None:
                        r = weight_for(n, i)
                        if r is not None:
                            new_inputs[i] = r[0]
                            if i == 1:
                                wp = r[1]
                    else:
                        d = qdq_for(t, n)
                        if d is not None:
                            new_inputs[i] = d
                if (
                    rule.bias is not None
                    and wp is not None
                    and len(n.inputs) > rule.bias
                    and n.inputs[rule.bias]
                ):
                    bn = bias_for(n, rule.bias, wp)
                    if bn is not None:
                        new_inputs[rule.bias] = bn
                n.inputs = new_inputs
                self.quantized.append(n)
            new_nodes.append(n)
            # Q/DQ pairs made for this node's inputs (their producers come earlier; sorted below)
            for t in list(pending):
                new_nodes.extend(pending.pop(t))
        self.rw.graph.nodes = _toposort(new_nodes, self.rw)
        self._bump_opset()
        if _contrib_qdq(self.cfg):
            self._use_contrib_qdq()
        if self.cfg.quant_format is QuantFormat.QOperator:
            to_qoperator(self.rw, use_contrib=not self.x.QOperatorStandardOnly)
        _remove_dead(self.rw)
        self.rw.drop_unused_initializers()

    def _bump_opset(self) -> None:
        types = {p.qtype for p in self.qparams.values()} | {self.cfg.weight_type}
        need = required_opset(self.cfg, types)
        if self.model.opsets.get("", 1) < need:
            self.model.opsets[""] = need
            self.model.ir_version = max(self.model.ir_version, {10: 5, 13: 7, 19: 9, 21: 10}[need])

    def _use_contrib_qdq(self) -> None:
        """Move the integer Q/DQ nodes to the com.microsoft domain (float8 ones stay standard:
        the contrib ops do not take it)."""
        moved = False
        for n in self.rw.graph.nodes:
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or n.domain:
                continue
            zp = self.rw.const(n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
            if zp is not None and zp.dtype.kind in "iu":
                n.domain = MS_DOMAIN
                moved = True
        if moved:
            self.rw.use_domain(MS_DOMAIN)


def _contrib_qdq(cfg: QuantConfig) -> bool:
    return bool(cfg.extra_options.UseQDQContribOps) and getattr(cfg, "quant_format", None) is QuantFormat.QDQ


def required_opset(cfg: QuantConfig, types: set[QuantType] | None = None) -> int:
    """The default-domain opset the Q/DQ nodes need (per-axis parameters, 8-bit floats, 4 bits;
    com.microsoft Q/DQ take 16-bit and 4-bit types at any opset)."""
    types = (types or set()) | {cfg.weight_type, cfg.activation_type}
    need = 13 if cfg.per_channel else 10
    if any(t.is_float8 for t in types):
        need = max(need, 19)
    if any(t.needs_opset21 for t in types) and not _contrib_qdq(cfg):
        need = max(need, 21)
    return need


def _toposort(nodes: list[Node], rw: Rewriter) -> list[Node]:
    from ..ir.load import toposort

    g = rw.graph
    g.nodes = nodes
    avail = {v.name for v in g.inputs} | set(g.initializers)
    return toposort(g, avail)


def to_qoperator(rw: Rewriter, use_contrib: bool = True) -> None:
    """Fold DQ -> op -> Q groups into QLinear operators: QLinearConv / QLinearMatMul (standard),
    QGemm / QLinearAdd / QLinearMul / QLinearConcat / QLinear*Pool / QLinearSigmoid /
    QLinearLeakyRelu (com.microsoft, when ``use_contrib``); data-movement ops run on the quantized
    tensor directly. Groups that do not fit (per-axis activations, float outputs) stay as QDQ."""
    g = rw.graph
    dq_of: dict[str, Node] = {}
    q_by_input: dict[str, list[Node]] = {}
    consumers: dict[str, list[Node]] = {}
    for n in g.nodes:
        if n.op_type == "DequantizeLinear" and not n.domain:
            dq_of[n.outputs[0]] = n
        if n.op_type == "QuantizeLinear" and not n.domain:
            q_by_input.setdefault(n.inputs[0], []).append(n)
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.outputs}
    inits = g.initializers

    def scalar(name: str) -> bool:
        return name in inits and np.asarray(inits[name]).size == 1

    def triple(x: str, per_tensor: bool = True) -> list[str] | None:
        d = dq_of.get(x)
        if d is None or len(d.inputs) < 3 or not d.inputs[2]:
            return None
        if per_tensor and not scalar(d.inputs[1]):
            return None
        return [d.inputs[0], d.inputs[1], d.inputs[2]]

    def same_params(a: list[str], b: list[str]) -> bool:
        return all(
            x == y
            or (
                x in inits
                and y in inits
                and np.array_equal(inits[x], inits[y])
                and np.asarray(inits[x]).dtype == np.asarray(inits[y]).dtype
            )
            for x, y in zip(a, b)
        )

    removed: set[int] = set()
    replaced: dict[int, Node] = {}
    for n in g.nodes:
        if n.domain or not n.outputs:
            continue
        y = n.outputs[0]
        qs = q_by_input.get(y, [])
        if len(qs) != 1 or y in outputs or any(c is not qs[0] for c in consumers.get(y, [])):
            continue
        qn = qs[0]
        if len(qn.inputs) < 3 or not scalar(qn.inputs[1]):
            continue
        out_params = [qn.inputs[1], qn.inputs[2]]
        op, attrs = n.op_type, dict(n.attrs)
        domain = ""
        ins: list[str] | None = None
        if op in ("Conv", "MatMul"):
            a, b = triple(n.inputs[0]), triple(n.inputs[1], per_tensor=False)
            if a is None or b is None:
                continue
            ins = [*a, *b, *out_params]
            if op == "Conv" and len(n.inputs) > 2 and n.inputs[2]:
                bd = dq_of.get(n.inputs[2])
                if bd is None:
                    continue
                ins.append(bd.inputs[0])
            op = "QLinear" + op
        elif not use_contrib and op not in _INT_DIRECT:
            continue
        elif op == "Gemm":
            a, b = triple(n.inputs[0]), triple(n.inputs[1], per_tensor=False)
            if a is None or b is None or attrs.get("beta", 1.0) != 1.0 or attrs.get("alpha", 1.0) != 1.0:
                continue
            c = ""
            if len(n.inputs) > 2 and n.inputs[2]:
                bd = dq_of.get(n.inputs[2])
                if bd is None:
                    continue
                c = bd.inputs[0]
            ins, op, domain = [*a, *b, c, *out_params], "QGemm", MS_DOMAIN
            attrs.pop("beta", None)
        elif op in ("Add", "Mul"):
            a, b = triple(n.inputs[0]), triple(n.inputs[1])
            if a is None or b is None:
                continue
            ins, op, domain = [*a, *b, *out_params], "QLinear" + op, MS_DOMAIN
        elif op == "Concat":
            ts = [triple(x) for x in n.inputs]
            if any(t is None for t in ts):
                continue
            ins = [*out_params] + [v for t in ts for v in t]  # type: ignore[union-attr]
            op, domain = "QLinearConcat", MS_DOMAIN
        elif op in ("GlobalAveragePool", "AveragePool", "Sigmoid", "LeakyRelu"):
            a = triple(n.inputs[0])
            if a is None:
                continue
            ins, op, domain = [*a, *out_params], "QLinear" + op, MS_DOMAIN
        elif op in _INT_DIRECT:
            a = triple(n.inputs[0])
            if a is None or not same_params(a[1:], out_params):
                continue
            ins = [a[0], *n.inputs[1:]]
        else:
            continue
        if domain:
            rw.use_domain(domain)
        replaced[id(n)] = Node(op, ins, [qn.outputs[0]], attrs=attrs, name=n.name + "_quant", domain=domain)
        removed.add(id(qn))
    g.nodes = [replaced.get(id(n), n) for n in g.nodes if id(n) not in removed]
    _remove_dead(rw)


def _remove_dead(rw: Rewriter) -> None:
    g = rw.graph
    outputs = {o.name for o in g.outputs}
    changed = True
    while changed:
        used = {i for n in g.nodes for i in n.inputs} | outputs
        for n in g.nodes:
            for _, sub in n.graphs():
                used |= sub.free_names()
        keep = [
            n
            for n in g.nodes
            if any(o in used for o in n.outputs) or n.op_type not in ("DequantizeLinear", "QuantizeLinear")
        ]
        changed = len(keep) != len(g.nodes)
        g.nodes = keep


STATIC_DEFAULT_OPS = tuple(RULES)
QTYPES_8BIT = (QuantType.QInt8, QuantType.QUInt8)
