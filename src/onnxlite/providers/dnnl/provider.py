"""DnnlExecutionProvider: oneDNN primitives for float32 CNN/MLP ops and int8 conv/matmul.

``capability`` claims the nodes :meth:`supports` accepts and plans three things over them:

* an activation whose producer is a claimed Conv/Gemm/MatMul/BatchNormalization/binary op (and
  that producer's only consumer) becomes a post-op of the producer; the activation node then
  passes its input on;
* a DequantizeLinear -> Conv/MatMul -> QuantizeLinear group runs as one integer primitive
  (see :mod:`._qdq`); the Q/DQ nodes pass their input on;
* a value whose consumers are all claimed nodes (and which is no graph output) stays in the
  blocked layout oneDNN chose (a :class:`~._prim.DnnlTensor`); values leaving the provider are
  reordered to plain numpy arrays, so the rest of onnxlite only ever sees numpy.

Primitives are created on first use per input layout/shape and cached (thread-safe); weights
are reordered into oneDNN's layout once per weights object (an initializer: once per session).

Provider options (strings, as onnxruntime passes them): ``num_threads``, oneDNN's OpenMP threads
(default: OpenMP's own, OMP_NUM_THREADS or all cores; OpenMP keeps it per process in effect), and
onnxruntime's ``use_arena`` ("0"/"1"), accepted for compatibility (buffers come from the session's
CPU arena either way), and ``replay`` ("1", the default, or "0"): whether stretches of
consecutive oneDNN steps run as recorded replays of their primitive calls (see :mod:`._replay`).
Any other option is an error that lists these.

``supports`` declines what is not implemented (dtypes, attributes, unknown ranks, weight zero
points...), so the CPU provider takes it: never a different answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ...errors import InvalidArgument
from ...ir.graph import Graph, Node
from ...types import static_shape, type_shape
from ..base import ExecutionProvider, schema_version
from ..registry import NodeInfo
from . import _bnchain, _consts, _dynq, _qdq, _shuffle
from . import _lib as L
from ._conv import ACTIVATIONS, ConvKernel, fused_activation
from ._int8 import IntConvKernel, IntMatMulKernel, QConcatKernel
from ._ops import (
    BatchNormKernel,
    BinaryKernel,
    ClipKernel,
    ConcatKernel,
    EltwiseKernel,
    LayerNormKernel,
    LRNKernel,
    MatMulKernel,
    PoolKernel,
    ShuffleKernel,
    SkipLayerNormKernel,
    SoftmaxKernel,
    identity,
)
from ._replay import Segment, is_replay_safe, replay_safe

MS = "com.microsoft"
FLOAT = onnx.TensorProto.FLOAT
F32_MAX = float(np.finfo(np.float32).max)

# Activations: op -> (alg, (attribute, default) giving alpha then beta, default (alpha, beta)).
_ELTWISE: dict[str, tuple[int, tuple[tuple[str, float], ...], tuple[float, float]]] = {
    "Relu": (L.ELT_RELU, (), (0.0, 0.0)),
    "LeakyRelu": (L.ELT_RELU, (("alpha", 0.01),), (0.0, 0.0)),
    "Sigmoid": (L.ELT_LOGISTIC, (), (0.0, 0.0)),
    "Tanh": (L.ELT_TANH, (), (0.0, 0.0)),
    "Elu": (L.ELT_ELU, (("alpha", 1.0),), (0.0, 0.0)),
    "Exp": (L.ELT_EXP, (), (0.0, 0.0)),
    "Log": (L.ELT_LOG, (), (0.0, 0.0)),
    "Sqrt": (L.ELT_SQRT, (), (0.0, 0.0)),
    "Abs": (L.ELT_ABS, (), (0.0, 0.0)),
    "HardSigmoid": (L.ELT_HARDSIGMOID, (("alpha", 0.2), ("beta", 0.5)), (0.0, 0.0)),
    "HardSwish": (L.ELT_HARDSWISH, (), (1.0 / 6.0, 0.5)),
    "Mish": (L.ELT_MISH, (), (0.0, 0.0)),
}
_FUSABLE_INTO = {"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Sum", "BatchNormalization"}
_FUSABLE_ACT = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid"}


@dataclass
class _NodePlan:
    keep_blocked: bool = False  # the output may stay a DnnlTensor
    post: tuple[int, float, float] | None = None  # fused activation (producer side)
    passthrough: bool = False  # activation already applied by its producer
    extra: dict[str, Any] = field(default_factory=dict)


def _elem(graph: Graph, name: str) -> int | None:
    tp = graph.type_of(name) if name else None
    if tp is None or not tp.HasField("tensor_type"):
        return None
    return int(tp.tensor_type.elem_type)


def _rank(graph: Graph, name: str) -> int | None:
    tp = graph.type_of(name)
    if tp is None or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return None
    return len(tp.tensor_type.shape.dim)


def _f32_node(node: Node, graph: Graph, inputs: list[str] | None = None) -> bool:
    """The inputs (all, or those named) are known float32; outputs are float32 where known."""
    ins = node.inputs if inputs is None else inputs
    if not all(_elem(graph, n) == FLOAT for n in ins if n):
        return False
    return all(_elem(graph, n) in (None, FLOAT) for n in node.outputs if n)


def _const(graph: Graph, name: str) -> np.ndarray | None:
    v = graph.initializers.get(name) if name else None
    return v if isinstance(v, np.ndarray) else None


class DnnlExecutionProvider(ExecutionProvider):
    name = "DnnlExecutionProvider"
    device = "cpu"
    registry = None
    own_thread_pool = True  # OpenMP's, with one-thread twins of its primitives

    KNOWN_OPTIONS = ("num_threads", "use_arena", "replay")

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        unknown = sorted(set(self.options) - set(self.KNOWN_OPTIONS))
        if unknown:
            known = list(self.KNOWN_OPTIONS)
            raise InvalidArgument(
                f"DnnlExecutionProvider: unknown option(s) {unknown}; the known ones are {known}"
            )
        for name in ("use_arena", "replay"):
            if self.options.get(name, "1") not in ("0", "1"):
                raise InvalidArgument(
                    f"DnnlExecutionProvider option {name}={self.options[name]!r} must be '0' or '1'"
                )
        self.replay = self.options.get("replay", "1") == "1"
        lib = L.load()
        threads = self.options.get("num_threads", "0")
        try:
            n = int(threads)
        except ValueError:
            raise InvalidArgument(
                f"DnnlExecutionProvider option num_threads={threads!r} is not an integer"
            ) from None
        if n > 0:
            # OpenMP's thread count is per process in effect: the last provider setting it wins.
            lib.threads = n
        self._plans: dict[int, _NodePlan] = {}

    @classmethod
    def availability(cls) -> str | None:
        return L.load_error()

    # -- what it runs ---------------------------------------------------------------------------

    def supports(self, node: Node, graph: Graph, opsets: Mapping[str, int]) -> bool:
        dom = "" if node.domain in ("", "ai.onnx") else node.domain
        check = _CHECKS.get((dom, node.op_type))
        if check is None:
            return False
        try:
            return bool(check(node, graph, schema_version(node, opsets)))
        except Exception:
            return False

    def capability(self, graph: Graph, candidates: list[int], opsets: Mapping[str, int]) -> list[list[int]]:
        mine = [i for i in candidates if self.supports(graph.nodes[i], graph, opsets)]
        consumers: dict[str, list[Node]] = {}
        producer: dict[str, int] = {}
        for j, n in enumerate(graph.nodes):
            for name in n.inputs:
                if name:
                    consumers.setdefault(name, []).append(n)
            for name in n.outputs:
                producer[name] = j
        escaping = {v.name for v in graph.outputs}
        for n in graph.nodes:
            for _, sub in n.graphs():
                escaping |= sub.free_names()
        plans = {i: _NodePlan() for i in mine}
        cand = set(candidates)
        groups: dict[int, _qdq.QDQGroup] = {}
        for i in list(mine):
            group = _qdq.match(graph, i, cand, producer, consumers, escaping)
            if group is not None:
                groups[i] = group
        _qdq.shared_inputs_ok(groups, consumers, graph)
        for i in list(mine):
            pool = _qdq.match_pool(graph, i, cand, producer, consumers, escaping)
            if pool is None or any(j in plans and plans[j].passthrough for j in pool):
                continue
            plans[i].extra["output"] = graph.nodes[pool[1]].outputs[0]  # 8-bit in and out
            for j in pool:
                plans[j] = _NodePlan(passthrough=True)
                if j not in mine:
                    mine.append(j)
        for i in list(mine):
            qc = _qdq.match_concat(graph, i, cand, producer, consumers, escaping)
            if qc is None or any(
                j in plans and (plans[j].passthrough or plans[j].extra) for j in (*qc.dqs, qc.q)
            ):
                continue
            if plans[i].passthrough or plans[i].extra:
                continue
            plans[i].extra["qconcat"] = qc
            plans[i].extra["output"] = graph.nodes[qc.q].outputs[0]  # 8-bit in and out
            for j in (*qc.dqs, qc.q):
                plans[j] = _NodePlan(passthrough=True)
                if j not in mine:
                    mine.append(j)
        for i, group in groups.items():
            plans[i].extra["qdq"] = group
            plans[i].extra["output"] = graph.nodes[group.q].outputs[0]
            for k in (group.x_dq, group.w_dq, group.q, group.relu):
                if k is not None and not plans.get(k, _NodePlan()).passthrough:
                    plans[k] = _NodePlan(passthrough=True)
                    if k not in mine:
                        mine.append(k)
        for i in list(mine):
            chain = _dynq.match(graph, i, cand, consumers, escaping)
            if chain is None:
                continue
            kernels = _dynq.chain_kernels(chain, graph)
            for j, fn in kernels.items():
                plans[j] = _NodePlan(extra={"fn": fn})
                if j not in mine:
                    mine.append(j)
        for i in candidates:
            sh = _shuffle.match(graph, i, cand, producer, consumers, escaping)
            if sh is None or any(
                j in plans and (plans[j].passthrough or plans[j].extra) for j in (sh.first, sh.last)
            ):
                continue
            plans[sh.first] = _NodePlan(passthrough=True)
            plans[sh.last] = _NodePlan(passthrough=True)
            plans[i] = _NodePlan(extra={"shuffle": sh.groups, "output": graph.nodes[sh.last].outputs[0]})
            for j in (sh.first, i, sh.last):
                if j not in mine:
                    mine.append(j)
        for i in list(mine):
            if plans[i].passthrough or plans[i].extra:
                continue
            bnc = _bnchain.match(graph, i, set(mine), consumers, escaping)
            if bnc is None:
                continue
            parts = [(bnc.bn, "head"), (bnc.mul, "mul")] + ([(bnc.add, "add")] if bnc.add is not None else [])
            if any(plans[j].passthrough or plans[j].extra for j, _ in parts[1:]):
                continue
            for j, role in parts:
                plans[j] = _NodePlan(extra={"bn": (bnc, role)})
        mine.sort()
        claimed = {id(graph.nodes[i]) for i in mine}
        stable = set(graph.initializers)
        for j in candidates:
            if j in plans and (plans[j].passthrough or plans[j].extra):
                continue
            node = graph.nodes[j]
            if node.op_type == "DequantizeLinear":
                value = _consts.constant_dequantized(graph, node, consumers, claimed, escaping)
            else:
                value = _consts.constant_of_shape(graph, node, consumers, claimed, escaping)
            if value is not None:
                plans[j] = _NodePlan(extra={"constant": value})
                mine.append(j)
                stable.add(graph.nodes[j].outputs[0])
        mine.sort()
        for i in mine:
            node = graph.nodes[i]
            if node.op_type == "MatMul":
                plans[i].extra["packed"] = _rank(graph, node.inputs[1]) == 2
            if node.op_type == "DequantizeLinear":
                plans[i].extra["const_input"] = node.inputs[0] in stable
            if node.op_type in ("MatMul", "Gemm", "FusedGemm"):
                # Weights computed at run time are read in place rather than reordered per run.
                plans[i].extra["const_w"] = node.inputs[1] in stable
            if node.op_type == "Clip" and not plans[i].passthrough:
                bounds = _clip_bounds(node, graph)
                if bounds is not None and bounds[0] <= bounds[1]:
                    plans[i].extra["clip"] = bounds  # fixed: one eltwise primitive
        for i in list(mine):
            tail = _matmul_epilogue(graph, i, plans[i], set(candidates), consumers, escaping)
            if tail is not None:
                j, k, bias, post = tail
                plans[i].extra["bias"], plans[i].post = bias, post
                plans[i].extra["output"] = graph.nodes[j].outputs[0]
                plans[j] = _NodePlan(extra={"fn": _pass_on(k)})
                if j not in mine:
                    mine.append(j)
                    claimed.add(id(graph.nodes[j]))
        mine.sort()
        for i in mine:
            node = graph.nodes[i]
            if node.op_type not in _FUSABLE_INTO or node.domain not in ("", "ai.onnx"):
                continue
            if plans[i].post is not None:
                continue
            if plans[i].passthrough or "qdq" in plans[i].extra or "fn" in plans[i].extra:
                continue
            bn_role = plans[i].extra.get("bn")
            if bn_role is not None and bn_role[0].tail != i:
                continue
            out = plans[i].extra.get("output", node.outputs[0])
            users = consumers.get(out, [])
            if out in escaping or len(users) != 1 or id(users[0]) not in claimed:
                continue
            act = users[0]
            if act.op_type not in _FUSABLE_ACT or act.domain not in ("", "ai.onnx"):
                continue
            post = _activation_post(act, graph)
            if post is None:
                continue
            if (node.op_type == "BatchNormalization" or bn_role is not None) and act.op_type != "Relu":
                continue  # batch normalization fuses a plain ReLU only
            j = graph.nodes.index(act)
            plans[i].post = post
            plans[j].passthrough = True
            plans[i].extra["output"] = act.outputs[0]
        values = {
            graph.nodes[j].outputs[0]: p.extra["constant"] for j, p in plans.items() if "constant" in p.extra
        }
        for i in mine:
            node = graph.nodes[i]
            if node.op_type in _PREPACK and not plans[i].passthrough and not set(plans[i].extra) & _GROUPED:
                # weights to reorder at session creation: initializers, computed constants
                w = _const(graph, node.inputs[1])
                plans[i].extra["w_value"] = values.get(node.inputs[1]) if w is None else w
                if w is not None:
                    plans[i].extra["w_name"] = node.inputs[1]
                if len(node.inputs) > 2 and node.inputs[2]:
                    plans[i].extra["c_value"] = _const(graph, node.inputs[2])
                    if plans[i].extra["c_value"] is None:
                        plans[i].extra["c_value"] = values.get(node.inputs[2])
        for i in mine:
            node = graph.nodes[i]
            out = plans[i].extra.get("output", node.outputs[0] if node.outputs else "")
            users = consumers.get(out, [])
            plans[i].keep_blocked = bool(out) and out not in escaping and all(id(u) in claimed for u in users)
        for i, p in plans.items():
            self._plans[id(graph.nodes[i])] = p
        return _connected_groups(graph, mine, producer)

    def packed_constant(self, node: Node, name: str) -> Any:
        plan = self._plans.get(id(node))
        if plan is None or plan.extra.get("w_name") != name:
            return None
        return plan.extra.get("stand_in")

    def writes_fresh(self, node: Node, fn: Callable[..., Any]) -> bool:
        owner = getattr(fn, "__self__", fn)  # a bound into_z still makes a fresh value
        return isinstance(owner, ConvKernel)

    def inplace_variant(
        self, node: Node, owned: tuple[bool, ...], fn: Callable[..., Any]
    ) -> Callable[..., Any] | None:
        # FusedConv's residual input Z: the sum post-op accumulates into its buffer (as
        # onnxruntime's in-place sum), instead of into a copy
        if isinstance(fn, ConvKernel) and len(owned) > 3 and owned[3]:
            return fn.into_z
        return None

    def segmentable(self, fn: Callable[..., Any]) -> bool:
        owner = getattr(fn, "__self__", fn)  # a bound into_z
        return type(owner) in _REPLAY_SAFE or is_replay_safe(fn)

    def segment(
        self, steps: Sequence[tuple[Any, ...]], indices: Sequence[int], constants: Mapping[int, Any]
    ) -> Callable[[list[Any]], None] | None:
        return Segment(steps, indices, constants) if self.replay else None

    def compile(self, graph: Graph, group: list[int]) -> Callable[..., Any] | None:
        # Per-node kernels already hand blocked tensors to each other inside a group and reorder
        # only where a value leaves it (see capability), so no fused callable is needed.
        return None

    def kernel(self, info: NodeInfo, node: Node, opsets: Mapping[str, int]) -> Callable[..., Any]:
        plan = self._plans.get(id(node), _NodePlan())
        if plan.passthrough:
            return identity
        if "fn" in plan.extra:
            return plan.extra["fn"]
        if "shuffle" in plan.extra:
            return ShuffleKernel(plan.extra["shuffle"], plan.keep_blocked)
        if "bn" in plan.extra:
            bnc, role = plan.extra["bn"]
            head, mul, add = _bnchain.kernels(bnc)
            if role == ("mul" if bnc.add is None else "add"):
                bnc.kernel[:] = [BatchNormKernel(bnc.epsilon, plan.keep_blocked, relu=plan.post is not None)]
            return {"head": head, "mul": mul, "add": add}[role]
        if "constant" in plan.extra:
            value = plan.extra["constant"]

            def constant(*unused: Any) -> Any:
                return value

            return replay_safe(constant)
        group = plan.extra.get("qdq")
        if group is not None:
            return _build_qdq(info, group, plan.keep_blocked)
        qc = plan.extra.get("qconcat")
        if qc is not None:
            axis = int(info.attrs["axis"])
            return QConcatKernel(axis, qc.scales, qc.zps, qc.ys, qc.yzp, plan.keep_blocked)
        build = _BUILDERS[(info.domain, node.op_type)]
        return build(info, plan)


# Kernels whose work depends on their inputs' shapes and layouts only, every computed buffer
# coming from a primitive: they may run in segments. ClipKernel (bounds read as values) and the
# int8 kernels (scales computed per run) may not.
_REPLAY_SAFE = {
    ConvKernel,
    EltwiseKernel,
    PoolKernel,
    BatchNormKernel,
    SoftmaxKernel,
    LayerNormKernel,
    SkipLayerNormKernel,
    MatMulKernel,
    LRNKernel,
    BinaryKernel,
    ConcatKernel,
    ShuffleKernel,
    QConcatKernel,
}

_PREPACK = {"Conv", "FusedConv", "MatMul", "Gemm", "FusedGemm"}
_GROUPED = {"qdq", "fn", "bn", "constant", "shuffle", "qconcat"}


def _prepack(kernel: Any, info: NodeInfo, plan: _NodePlan) -> None:
    """Reorder the node's constant weights at session creation (else: on the first run)."""
    w = plan.extra.pop("w_value", None)  # the plan keeps no reference to the weights
    if w is None:
        return
    has_c = len(info.inputs) > 2 and bool(info.inputs[2])
    c = plan.extra.get("bias", plan.extra.get("c_value"))
    try:
        if isinstance(kernel, ConvKernel):
            shape = static_shape(info.input_types[0] if info.input_types else None)
            if shape is None:
                return
            kernel.prepack(shape, w, has_c)
        elif not has_c or c is not None:
            kernel.prepack(w, c)
        else:
            return
    except (L.DnnlError, ValueError):
        return  # shapes the run will report properly; packing waits for it
    if "w_name" in plan.extra:
        # The kernel keeps the packed weights; the plan may hand it this instead of the array.
        stand_in = np.broadcast_to(np.zeros((), w.dtype), w.shape)
        if kernel.adopt(w, stand_in):
            plan.extra["stand_in"] = stand_in


def _matmul_epilogue(
    graph: Graph,
    i: int,
    plan: _NodePlan,
    candidates: set[int],
    consumers: dict[str, list[Node]],
    escaping: set[str],
) -> tuple[int, int, np.ndarray, tuple[int, float, float] | None] | None:
    """(node, its input from the matmul, bias, post-op) of an Add of a constant bias or a
    com.microsoft BiasGelu after MatMul ``i`` with constant 2-D weights: the matmul's bias (and
    GELU post-op), one pass over the output instead of two or three (BERT's dense layers)."""
    node = graph.nodes[i]
    if node.op_type != "MatMul" or not plan.extra.get("packed") or not plan.extra.get("const_w"):
        return None
    if plan.passthrough or plan.post is not None or set(plan.extra) - {"packed", "const_w"}:
        return None
    w = _const(graph, node.inputs[1])
    out = node.outputs[0]
    users = consumers.get(out, [])
    if w is None or out in escaping or len(users) != 1:
        return None
    nxt = users[0]
    j = graph.nodes.index(nxt)
    if j not in candidates or len(nxt.inputs) != 2:
        return None
    k = nxt.inputs.index(out)
    bias = _const(graph, nxt.inputs[1 - k])
    n = w.shape[1]
    if bias is None or bias.dtype != np.float32 or bias.shape not in ((n,), (1, n)):
        return None
    if nxt.op_type == "Add" and nxt.domain in ("", "ai.onnx"):
        return j, k, bias.reshape(n), None
    if nxt.op_type == "BiasGelu" and nxt.domain == MS and k == 0:
        return j, k, bias.reshape(n), (L.ELT_GELU_ERF, 0.0, 0.0)
    return None


def _pass_on(k: int) -> Callable[..., Any]:
    """The kernel of a node whose work its producer did: input ``k`` is its result."""

    def pass_on(*xs: Any) -> Any:
        return xs[k]

    return replay_safe(pass_on)


def _connected_groups(graph: Graph, mine: list[int], producer: dict[str, int]) -> list[list[int]]:
    """The claimed nodes split into maximal groups connected by the values between them."""
    parent = {i: i for i in mine}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in mine:
        for name in graph.nodes[i].inputs:
            j = producer.get(name) if name else None
            if j is not None and j in parent:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in mine:
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


# -- support checks ---------------------------------------------------------------------------


def _conv_ok(node: Node, graph: Graph, version: int) -> bool:
    ins = node.inputs
    if len(ins) < 2 or not _f32_node(node, graph):
        return False
    r = _rank(graph, ins[0])
    if r is None or r not in (3, 4, 5) or _rank(graph, ins[1]) != r:
        return False
    if len(ins) > 2 and ins[2] and _rank(graph, ins[2]) != 1:
        return False
    a = node.attrs
    g = int(a.get("group", 1))
    w = _const(graph, ins[1])
    if g < 1 or (w is not None and w.shape[0] % g):
        return False
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        return False
    ks = a.get("kernel_shape")
    if ks is not None and w is not None and list(ks) != list(w.shape[2:]):
        return False
    if node.op_type == "FusedConv":
        if a.get("activation", "") not in ("", "Identity", *ACTIVATIONS):
            return False
    elif len(ins) > 3:
        return False
    return True


def _eltwise_ok(node: Node, graph: Graph, version: int) -> bool:
    if not _f32_node(node, graph, node.inputs[:1]):
        return False
    if node.op_type == "Clip":
        return True  # bounds (attributes, or inputs read at run time) of the same type
    if node.op_type == "Gelu":
        return node.attrs.get("approximate", "none") in ("none", "tanh")
    return len(node.inputs) == 1


def _pool_ok(node: Node, graph: Graph, version: int) -> bool:
    if not _f32_node(node, graph, node.inputs[:1]):
        return False
    if len([o for o in node.outputs if o]) != 1 or node.outputs[0] == "":
        return False
    r = _rank(graph, node.inputs[0])
    if r is None or r not in (3, 4, 5):
        return False
    a = node.attrs
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        return False
    if node.op_type == "AveragePool" and a.get("count_include_pad", 0) and a.get("ceil_mode", 0):
        return False  # ONNX does not count the ceil extension as padding; oneDNN would
    ks = a.get("kernel_shape")
    return node.op_type.startswith("Global") or (ks is not None and len(ks) == r - 2)


def _bn_ok(node: Node, graph: Graph, version: int) -> bool:
    if version < 7 or len(node.inputs) != 5 or not _f32_node(node, graph):
        return False
    if any(o for o in node.outputs[1:]):
        return False
    if int(node.attrs.get("training_mode", 0)) or int(node.attrs.get("spatial", 1)) != 1:
        return False
    r = _rank(graph, node.inputs[0])
    return r is not None and 2 <= r <= 5


def _axis_in_range(node: Node, rank: int, default: int) -> bool:
    """The node's axis lies within the rank: an invalid one is left to the CPU kernel, whose
    error names it."""
    return -rank <= int(node.attrs.get("axis", default)) < rank


def _softmax_ok(node: Node, graph: Graph, version: int) -> bool:
    r = _rank(graph, node.inputs[0])
    return (
        r is not None
        and r >= 1
        and _axis_in_range(node, r, 1 if version < 13 else -1)
        and _f32_node(node, graph, node.inputs[:1])
    )


def _ln_ok(node: Node, graph: Graph, version: int) -> bool:
    if any(o for o in node.outputs[1:]) or not _f32_node(node, graph):
        return False
    r = _rank(graph, node.inputs[0])
    return r is not None and r >= 1 and _axis_in_range(node, r, -1)


def _skip_ln_ok(node: Node, graph: Graph, version: int) -> bool:
    """Input and skip of one known shape (no broadcast) and 1-D parameters; the mean and
    inverse standard deviation outputs unused (oneDNN's inference primitive has none)."""
    ins = node.inputs
    if len(ins) < 3 or any(o for o in node.outputs[1:3]) or not _f32_node(node, graph):
        return False
    xd, sd = type_shape(graph.type_of(ins[0])), type_shape(graph.type_of(ins[1]))
    if xd is None or not 2 <= len(xd) <= 3 or xd != sd or any(d is None for d in xd):
        return False
    return all(_rank(graph, n) == 1 for n in ins[2:5] if n)


# A product whose constant weights have fewer elements than this is left to numpy: for such
# small layers a oneDNN call costs more (about 14 us against 5 us for a 64x64 layer at batch 1).
SMALL_WEIGHTS = 16384


def _small_weights(graph: Graph, name: str) -> bool:
    w = _const(graph, name)
    return w is not None and w.size < SMALL_WEIGHTS


def _matmul_ok(node: Node, graph: Graph, version: int) -> bool:
    if not _f32_node(node, graph) or _small_weights(graph, node.inputs[1]):
        return False
    ra, rb = _rank(graph, node.inputs[0]), _rank(graph, node.inputs[1])
    return ra is not None and rb is not None and ra >= 2 and rb >= 2 and max(ra, rb) <= 12


def _fused_matmul_ok(node: Node, graph: Graph, version: int) -> bool:
    """com.microsoft FusedMatMul between two computed tensors (attention's scaled scores): alpha
    as a linear post-op; transposed forms and constant weights stay with the CPU provider."""
    if any(int(node.attrs.get(k, 0)) for k in ("transA", "transB", "transBatchA", "transBatchB")):
        return False
    if _const(graph, node.inputs[1]) is not None:
        return False
    return _matmul_ok(node, graph, version)


_GEMM_ACTS = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "Elu"}


def _gemm_ok(node: Node, graph: Graph, version: int) -> bool:
    if node.op_type == "FusedGemm":
        if node.attrs.get("activation", "") not in ("", *_GEMM_ACTS):
            return False
    elif version < 7:
        return False
    if not _f32_node(node, graph) or _small_weights(graph, node.inputs[1]):
        return False
    if _rank(graph, node.inputs[0]) != 2 or _rank(graph, node.inputs[1]) != 2:
        return False
    if len(node.inputs) > 2 and node.inputs[2]:
        rc = _rank(graph, node.inputs[2])
        if rc is None or rc > 2:
            return False
    return True


def _add_ok(node: Node, graph: Graph, version: int) -> bool:
    # Broadcasting of numpy (opset 7+); Sum-6 and older binary ops need equal shapes.
    if len(node.inputs) < 2 or not _f32_node(node, graph):
        return False
    if version >= 7 or (node.op_type == "Sum" and version >= 6):
        ranks = [_rank(graph, n) for n in node.inputs]
        return None not in ranks and max(r or 0 for r in ranks) >= 1
    shapes = {static_shape(graph.type_of(n)) for n in node.inputs}
    return len(shapes) == 1 and None not in shapes and () not in shapes


def _concat_ok(node: Node, graph: Graph, version: int) -> bool:
    if version < 4 or not node.inputs or not _f32_node(node, graph):
        return False
    ranks = {_rank(graph, n) for n in node.inputs}
    if len(ranks) != 1 or None in ranks or 0 in ranks:
        return False
    return "axis" in node.attrs and _axis_in_range(node, ranks.pop() or 0, 0)


U8, S8, S32 = onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.INT32


def _size1(graph: Graph, name: str) -> bool:
    shape = static_shape(graph.type_of(name))
    return shape is not None and int(np.prod(shape)) == 1


def _zero_const(graph: Graph, name: str) -> bool:
    """Absent, or an initializer of zeros (oneDNN has no weight zero points)."""
    if not name:
        return True
    v = _const(graph, name)
    return v is not None and v.dtype == np.int8 and not np.any(v)


def _int_conv_ok(node: Node, graph: Graph, version: int) -> bool:
    ins = list(node.inputs) + [""] * 9
    quant = node.op_type == "QLinearConv"
    x, w = (ins[0], ins[3]) if quant else (ins[0], ins[1])
    xzp, wzp = (ins[2], ins[5]) if quant else (ins[2], ins[3])
    if _elem(graph, x) not in (U8, S8) or _elem(graph, w) != S8:
        return False
    r = _rank(graph, x)
    if r is None or r not in (3, 4, 5) or _rank(graph, w) != r or not _zero_const(graph, wzp):
        return False
    if xzp and (_elem(graph, xzp) != _elem(graph, x) or not _size1(graph, xzp)):
        return False
    if quant:
        xs, ws, ys, yzp, b = ins[1], ins[4], ins[6], ins[7], ins[8]
        if not all(_elem(graph, n) == FLOAT for n in (xs, ws, ys)):
            return False
        if not (_size1(graph, xs) and _size1(graph, ys) and (_rank(graph, ws) or 0) <= 1):
            return False
        if not yzp or _elem(graph, yzp) not in (U8, S8) or not _size1(graph, yzp):
            return False
        if b and _elem(graph, b) != S32:
            return False
    a = node.attrs
    return a.get("auto_pad", "NOTSET") in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _int_matmul_ok(node: Node, graph: Graph, version: int) -> bool:
    ins = list(node.inputs) + [""] * 8
    quant = node.op_type == "QLinearMatMul"
    a, b = (ins[0], ins[3]) if quant else (ins[0], ins[1])
    azp, bzp = (ins[2], ins[5]) if quant else (ins[2], ins[3])
    if _elem(graph, a) not in (U8, S8) or _elem(graph, b) != S8:
        return False
    ra = _rank(graph, a)
    if ra is None or ra < 2 or _rank(graph, b) != 2 or not _zero_const(graph, bzp):
        return False
    if azp and (_elem(graph, azp) != _elem(graph, a) or not _size1(graph, azp)):
        return False
    if quant:
        as_, bs, ys, yzp = ins[1], ins[4], ins[6], ins[7]
        if not all(_elem(graph, n) == FLOAT for n in (as_, bs, ys)):
            return False
        if not (_size1(graph, as_) and _size1(graph, ys) and (_rank(graph, bs) or 0) <= 1):
            return False
        if not yzp or _elem(graph, yzp) not in (U8, S8) or not _size1(graph, yzp):
            return False
    return True


def _q_ok(node: Node, graph: Graph, version: int) -> bool:
    """Per-tensor QuantizeLinear (float32 -> u8/s8) or DequantizeLinear (u8/s8 -> float32)."""
    ins = [*node.inputs, "", ""][:3]
    if len(node.inputs) > 3 or int(node.attrs.get("block_size", 0)) or not _size1(graph, ins[1]):
        return False
    if _elem(graph, ins[1]) != FLOAT or (ins[2] and not _size1(graph, ins[2])):
        return False
    quant = node.op_type == "QuantizeLinear"
    ints = (U8, S8)
    if quant:
        out_t = int(node.attrs.get("output_dtype", 0)) or (_elem(graph, ins[2]) if ins[2] else U8)
        return (
            _elem(graph, ins[0]) == FLOAT and out_t in ints and (not ins[2] or _elem(graph, ins[2]) == out_t)
        )
    if int(node.attrs.get("output_dtype", 0)) not in (0, FLOAT):
        return False
    return _elem(graph, ins[0]) in ints and (not ins[2] or _elem(graph, ins[2]) == _elem(graph, ins[0]))


def _lrn_ok(node: Node, graph: Graph, version: int) -> bool:
    size = int(node.attrs.get("size", 0))
    return size % 2 == 1 and _rank(graph, node.inputs[0]) == 4 and _f32_node(node, graph, node.inputs[:1])


_CHECKS: dict[tuple[str, str], Callable[[Node, Graph, int], bool]] = {
    ("", "Conv"): _conv_ok,
    (MS, "FusedConv"): _conv_ok,
    **{("", op): _eltwise_ok for op in (*_ELTWISE, "Clip", "Gelu")},
    ("", "MaxPool"): _pool_ok,
    ("", "AveragePool"): _pool_ok,
    ("", "GlobalAveragePool"): _pool_ok,
    ("", "GlobalMaxPool"): _pool_ok,
    ("", "BatchNormalization"): _bn_ok,
    ("", "Softmax"): _softmax_ok,
    ("", "LogSoftmax"): _softmax_ok,
    ("", "LayerNormalization"): _ln_ok,
    (MS, "SkipLayerNormalization"): _skip_ln_ok,
    ("", "MatMul"): _matmul_ok,
    (MS, "FusedMatMul"): _fused_matmul_ok,
    ("", "Gemm"): _gemm_ok,
    (MS, "FusedGemm"): _gemm_ok,
    ("", "LRN"): _lrn_ok,
    ("", "Add"): _add_ok,
    ("", "Sub"): _add_ok,
    ("", "Mul"): _add_ok,
    ("", "Div"): _add_ok,
    ("", "Sum"): _add_ok,
    ("", "Concat"): _concat_ok,
    ("", "QLinearConv"): _int_conv_ok,
    ("", "ConvInteger"): _int_conv_ok,
    ("", "QLinearMatMul"): _int_matmul_ok,
    ("", "MatMulInteger"): _int_matmul_ok,
    ("", "QuantizeLinear"): _q_ok,
    ("", "DequantizeLinear"): _q_ok,
}


def _clip_bounds(node: Node, graph: Graph) -> tuple[float, float] | None:
    """Clip's bounds when they are fixed: attributes (before opset 11), or inputs that are absent
    or initializers no feed can override (not graph inputs); None when read at run time."""
    if len(node.inputs) < 2:
        a = node.attrs
        return float(a.get("min", -F32_MAX)), float(a.get("max", F32_MAX))
    fed = {v.name for v in graph.inputs}
    bounds = []
    for k, default in ((1, -F32_MAX), (2, F32_MAX)):
        name = node.inputs[k] if len(node.inputs) > k else ""
        if not name:
            bounds.append(default)
            continue
        v = _const(graph, name)
        if v is None or name in fed or v.size != 1:
            return None
        bounds.append(float(v.reshape(())))
    return bounds[0], bounds[1]


def _activation_post(act: Node, graph: Graph) -> tuple[int, float, float] | None:
    a = act.attrs
    if act.op_type == "Clip":
        bounds = _clip_bounds(act, graph)  # bounds a feed may set are read at run time: not fused
        return None if bounds is None else fused_activation("Clip", list(bounds))
    if act.op_type == "LeakyRelu":
        return fused_activation("LeakyRelu", [a.get("alpha", 0.01)])
    if act.op_type == "HardSigmoid":
        return fused_activation("HardSigmoid", [a.get("alpha", 0.2), a.get("beta", 0.5)])
    return fused_activation(act.op_type, [])


# -- kernel builders --------------------------------------------------------------------------


def _build_conv(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    a = info.attrs
    post: list[tuple[str, Any]] = []
    if len(info.inputs) > 3 and info.inputs[3]:
        post.append(("sum", None))
    if info.op_type == "FusedConv":
        act = fused_activation(a.get("activation", ""), a.get("activation_params"))
        if act is not None:
            post.append(("eltwise", act))
    if plan.post is not None:
        post.append(("eltwise", plan.post))
    k = ConvKernel(
        group=int(a.get("group", 1)),
        strides=a.get("strides"),
        dilations=a.get("dilations"),
        pads=a.get("pads"),
        auto_pad=a.get("auto_pad", "NOTSET"),
        post=post,
        keep_blocked=plan.keep_blocked,
        # Even weights computed at run time are worth oneDNN's layout: the convolution costs
        # (output pixels) times the weight reorder.
        reorder_weights=True,
    )
    _prepack(k, info, plan)
    return k


def _build_eltwise(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    op, a = info.op_type, info.attrs
    if op == "Clip":
        fixed = plan.extra.get("clip")
        if fixed is not None:
            clip = fused_activation("Clip", list(fixed))
            assert clip is not None
            return EltwiseKernel(*clip, plan.keep_blocked)
        if info.version >= 11:
            return ClipKernel(plan.keep_blocked)
        k = ClipKernel(plan.keep_blocked)
        bounds = (np.float32(a.get("min", -F32_MAX)), np.float32(a.get("max", F32_MAX)))
        return lambda x: k(x, *bounds)
    if op == "Gelu":
        alg = L.ELT_GELU_TANH if a.get("approximate", "none") == "tanh" else L.ELT_GELU_ERF
        return EltwiseKernel(alg, 0.0, 0.0, plan.keep_blocked)
    alg, names, (alpha, beta) = _ELTWISE[op]
    vals = [float(a.get(n, d)) for n, d in names]
    if vals:
        alpha = vals[0]
    if len(vals) > 1:
        beta = vals[1]
    return EltwiseKernel(alg, alpha, beta, plan.keep_blocked)


def _build_pool(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    op, a = info.op_type, info.attrs
    if op.startswith("Global"):
        alg = L.POOL_MAX if op == "GlobalMaxPool" else L.POOL_AVG_EXCLUDE
        return PoolKernel(
            alg,
            kernel_shape=None,
            strides=None,
            pads=None,
            dilations=None,
            auto_pad="NOTSET",
            ceil_mode=0,
            keep_blocked=plan.keep_blocked,
        )
    if op == "MaxPool":
        alg = L.POOL_MAX
    else:
        alg = L.POOL_AVG_INCLUDE if int(a.get("count_include_pad", 0)) else L.POOL_AVG_EXCLUDE
    return PoolKernel(
        alg,
        kernel_shape=list(a["kernel_shape"]),
        strides=a.get("strides"),
        pads=a.get("pads"),
        dilations=a.get("dilations"),
        auto_pad=a.get("auto_pad", "NOTSET"),
        ceil_mode=int(a.get("ceil_mode", 0)),
        keep_blocked=plan.keep_blocked,
    )


def _build_bn(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    eps = float(info.attrs.get("epsilon", 1e-5))
    return BatchNormKernel(eps, plan.keep_blocked, relu=plan.post is not None)


def _build_softmax(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    legacy = info.version < 13
    axis = int(info.attrs.get("axis", 1 if legacy else -1))
    alg = L.SOFTMAX_ACCURATE if info.op_type == "Softmax" else L.SOFTMAX_ACCURATE + 1
    return SoftmaxKernel(alg, axis, legacy)


def _build_ln(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    return LayerNormKernel(int(info.attrs.get("axis", -1)), float(info.attrs.get("epsilon", 1e-5)))


def _build_matmul(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    k = MatMulKernel(
        bool(plan.extra.get("packed")),
        reorder_weights=bool(plan.extra.get("const_w", False)),
        post=plan.post,
    )
    _prepack(k, info, plan)
    bias = plan.extra.get("bias")
    if bias is None:
        return k

    def matmul_bias(a: Any, b: Any) -> Any:
        return k(a, b, bias)

    return replay_safe(matmul_bias)


def _build_fused_matmul(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    alpha = float(info.attrs.get("alpha", 1.0))
    return MatMulKernel(
        False, reorder_weights=False, post=None if alpha == 1.0 else (L.ELT_LINEAR, alpha, 0.0)
    )


def _fused_gemm_post(a: Mapping[str, Any]) -> tuple[int, float, float] | None:
    """FusedGemm's activation (``activation_alpha``/``_beta``, ONNX defaults) as a post-op."""
    act = a.get("activation", "")
    if not act:
        return None
    if act == "Elu":
        return (L.ELT_ELU, float(a.get("activation_alpha", 1.0)), 0.0)
    _, alpha, beta = ACTIVATIONS[act]
    # by name, defaults where absent; fused_activation passes on what the activation takes
    return fused_activation(act, [a.get("activation_alpha", alpha), a.get("activation_beta", beta)])


def _build_gemm(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    a = info.attrs
    k = MatMulKernel(
        True,
        reorder_weights=bool(plan.extra.get("const_w", False)),
        trans_a=bool(int(a.get("transA", 0))),
        trans_b=bool(int(a.get("transB", 0))),
        alpha=float(a.get("alpha", 1.0)),
        beta=float(a.get("beta", 1.0)),
        post=_fused_gemm_post(a) if info.op_type == "FusedGemm" else plan.post,
    )
    _prepack(k, info, plan)
    return k


def _build_lrn(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    a = info.attrs
    return LRNKernel(
        int(a["size"]),
        float(a.get("alpha", 1e-4)),
        float(a.get("beta", 0.75)),
        float(a.get("bias", 1.0)),
        plan.keep_blocked,
    )


def _build_int_conv(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    a = info.attrs
    quant = info.op_type == "QLinearConv"
    k = IntConvKernel(
        quant,
        group=int(a.get("group", 1)),
        strides=a.get("strides"),
        dilations=a.get("dilations"),
        pads=a.get("pads"),
        auto_pad=a.get("auto_pad", "NOTSET"),
    )
    if quant:

        def qlinear_conv(
            x: Any, xs: Any, xzp: Any, w: Any, ws: Any, wzp: Any, ys: Any, yzp: Any, b: Any = None
        ) -> Any:
            return k.run(x, xs, xzp, w, ws, ys, yzp, b)

        return replay_safe(qlinear_conv)

    def conv_integer(x: Any, w: Any, xzp: Any = None, wzp: Any = None) -> Any:
        return k.run(x, None, xzp, w, None, None, None, None)

    return replay_safe(conv_integer)


def _build_qdq(info: NodeInfo, g: _qdq.QDQGroup, keep_blocked: bool) -> Callable[..., Any]:
    """The Conv/MatMul of a QDQ group: quantized inputs in (its DequantizeLinear pass them on),
    the quantized output out (its QuantizeLinear passes it on)."""
    if info.op_type == "MatMul":
        mk = IntMatMulKernel(True, relu=g.post_relu)

        def qdq_matmul(a: Any, b: Any) -> Any:
            return mk.run(a, g.xs, g.xzp, b, g.ws, g.ys, g.yzp)

        return replay_safe(qdq_matmul)
    a = info.attrs
    ck = IntConvKernel(
        True,
        group=int(a.get("group", 1)),
        strides=a.get("strides"),
        dilations=a.get("dilations"),
        pads=a.get("pads"),
        auto_pad=a.get("auto_pad", "NOTSET"),
        relu=g.post_relu,
        keep_blocked=keep_blocked,
    )

    def qdq_conv(x: Any, w: Any, b: Any = None) -> Any:
        return ck.run(x, g.xs, g.xzp, w, g.ws, g.ys, g.yzp, None, bias_f32=b)

    return replay_safe(qdq_conv)


def _build_int_matmul(info: NodeInfo, plan: _NodePlan) -> Callable[..., Any]:
    if info.op_type == "QLinearMatMul":
        k = IntMatMulKernel(True)

        def qlinear_matmul(a: Any, as_: Any, azp: Any, b: Any, bs: Any, bzp: Any, ys: Any, yzp: Any) -> Any:
            return k.run(a, as_, azp, b, bs, ys, yzp)

        return replay_safe(qlinear_matmul)
    k = IntMatMulKernel(False)

    def matmul_integer(a: Any, b: Any, azp: Any = None, bzp: Any = None) -> Any:
        return k.run(a, None, azp, b, None, None, None)

    return replay_safe(matmul_integer)


_BUILDERS: dict[tuple[str, str], Callable[[NodeInfo, _NodePlan], Callable[..., Any]]] = {
    ("", "Conv"): _build_conv,
    (MS, "FusedConv"): _build_conv,
    **{("", op): _build_eltwise for op in (*_ELTWISE, "Clip", "Gelu")},
    ("", "MaxPool"): _build_pool,
    ("", "AveragePool"): _build_pool,
    ("", "GlobalAveragePool"): _build_pool,
    ("", "GlobalMaxPool"): _build_pool,
    ("", "BatchNormalization"): _build_bn,
    ("", "Softmax"): _build_softmax,
    ("", "LogSoftmax"): _build_softmax,
    ("", "LayerNormalization"): _build_ln,
    (MS, "SkipLayerNormalization"): lambda info, plan: SkipLayerNormKernel(
        float(info.attrs.get("epsilon", 1e-12))
    ),
    ("", "MatMul"): _build_matmul,
    (MS, "FusedMatMul"): _build_fused_matmul,
    ("", "Gemm"): _build_gemm,
    (MS, "FusedGemm"): _build_gemm,
    ("", "LRN"): _build_lrn,
    ("", "Add"): lambda info, plan: BinaryKernel(L.BINARY_ADD, plan.keep_blocked, plan.post),
    ("", "Sub"): lambda info, plan: BinaryKernel(L.BINARY_SUB, plan.keep_blocked, plan.post),
    ("", "Mul"): lambda info, plan: BinaryKernel(L.BINARY_MUL, plan.keep_blocked, plan.post),
    ("", "Div"): lambda info, plan: BinaryKernel(L.BINARY_DIV, plan.keep_blocked, plan.post),
    ("", "Sum"): lambda info, plan: BinaryKernel(L.BINARY_ADD, plan.keep_blocked, plan.post),
    ("", "Concat"): lambda info, plan: ConcatKernel(int(info.attrs["axis"]), plan.keep_blocked),
    ("", "QLinearConv"): _build_int_conv,
    ("", "ConvInteger"): _build_int_conv,
    ("", "QLinearMatMul"): _build_int_matmul,
    ("", "MatMulInteger"): _build_int_matmul,
    ("", "QuantizeLinear"): lambda info, plan: _dynq.QuantizeKernel(
        onnx.helper.tensor_dtype_to_np_dtype(int(info.attrs.get("output_dtype", 0)) or U8), plan.keep_blocked
    ),
    ("", "DequantizeLinear"): lambda info, plan: _dynq.DequantizeKernel(
        bool(plan.extra.get("const_input")), plan.keep_blocked
    ),
}
