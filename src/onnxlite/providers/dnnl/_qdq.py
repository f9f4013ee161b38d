"""QDQ groups: DequantizeLinear -> Conv/MatMul -> QuantizeLinear run as one integer primitive.

``match`` recognises the group around a float Conv or MatMul: its activation and weights come
from DequantizeLinear nodes used by it alone, the weights are an s8 initializer with zero zero
points, every scale and zero point is an initializer (per tensor; the weights' may be per output
channel), and its output feeds one QuantizeLinear alone. The two DequantizeLinear and the
QuantizeLinear then pass their input on, and the Conv/MatMul computes the quantized output
from the quantized inputs, as the int8 kernels do (a float bias is used as is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from ...ir.graph import Graph, Node

FLOAT, U8, S8 = onnx.TensorProto.FLOAT, onnx.TensorProto.UINT8, onnx.TensorProto.INT8


@dataclass
class QDQGroup:
    conv: int  # node indices
    x_dq: int
    w_dq: int
    q: int
    relu: int | None  # a Relu node between the Conv/MatMul and the QuantizeLinear
    post_relu: bool  # a ReLU post-op (that node, or FusedConv's activation)
    xs: np.ndarray
    xzp: np.ndarray
    ws: np.ndarray
    ys: np.ndarray
    yzp: np.ndarray


def _init(graph: Graph, name: str) -> np.ndarray | None:
    v = graph.initializers.get(name) if name else None
    return v if isinstance(v, np.ndarray) else None


def _scalar(v: np.ndarray | None, dtypes: tuple[Any, ...]) -> bool:
    return v is not None and v.size == 1 and v.dtype in dtypes


def match(
    graph: Graph,
    i: int,
    candidates: set[int],
    producer: dict[str, int],
    consumers: dict[str, list[Node]],
    escaping: set[str],
) -> QDQGroup | None:
    node = graph.nodes[i]
    fused_relu = False
    if node.op_type == "FusedConv" and node.domain == "com.microsoft":
        # Conv + Relu fused by the optimizer ahead of the QuantizeLinear; no Z input
        act = node.attrs.get("activation", "")
        if act not in ("", "Identity", "Relu") or len(node.inputs) > 3:
            return None
        fused_relu = act == "Relu"
    elif node.op_type not in ("Conv", "MatMul") or node.domain not in ("", "ai.onnx"):
        return None
    if len(node.inputs) < 2 or not node.outputs or node.outputs[0] in escaping:
        return None

    def only_user(name: str, user: Node) -> bool:
        us = consumers.get(name, [])
        return name not in escaping and len(us) == 1 and us[0] is user

    def dq_of(name: str, shared: bool) -> int | None:
        j = producer.get(name)
        if j is None or j not in candidates:
            return None
        n = graph.nodes[j]
        if n.op_type != "DequantizeLinear" or n.domain not in ("", "ai.onnx"):
            return None
        if int(n.attrs.get("block_size", 0)):
            return None
        if shared:  # every user must be a group too: see ``shared_inputs_ok``
            return j if name not in escaping else None
        return j if only_user(name, node) else None

    jx, jw = dq_of(node.inputs[0], True), dq_of(node.inputs[1], False)
    users = consumers.get(node.outputs[0], [])
    if jx is None or jw is None or len(users) != 1:
        return None
    q = users[0]
    relu: int | None = None
    if q.op_type == "Relu" and fused_relu:
        return None
    if q.op_type == "Relu" and q.domain in ("", "ai.onnx") and only_user(node.outputs[0], q):
        after = consumers.get(q.outputs[0], [])
        if len(after) != 1 or q.outputs[0] in escaping:
            return None
        relu = graph.nodes.index(q)
        if relu not in candidates:
            return None
        q = after[0]
    if q.op_type != "QuantizeLinear" or q.domain not in ("", "ai.onnx"):
        return None
    jq = graph.nodes.index(q)
    if jq not in candidates or len(q.inputs) < 3:
        return None
    dx, dw = graph.nodes[jx], graph.nodes[jw]
    xin = [*dx.inputs, "", ""][:3]
    win = [*dw.inputs, "", ""][:3]
    xs, xzp = _init(graph, xin[1]), _init(graph, xin[2])
    ys, yzp = _init(graph, q.inputs[1]), _init(graph, q.inputs[2])
    w, ws, wzp = _init(graph, win[0]), _init(graph, win[1]), _init(graph, win[2])
    if not (_scalar(xs, (np.float32,)) and _scalar(xzp, (np.uint8, np.int8))):
        return None
    if not (_scalar(ys, (np.float32,)) and _scalar(yzp, (np.uint8, np.int8))):
        return None
    if "output_dtype" in q.attrs and int(q.attrs["output_dtype"]) not in (U8, S8):
        return None
    if w is None or w.dtype != np.int8 or ws is None or ws.dtype != np.float32 or ws.ndim > 1:
        return None
    if win[2] and (wzp is None or np.any(wzp)):
        return None
    tp = graph.type_of(xin[0])
    if tp is None or tp.tensor_type.elem_type not in (U8, S8):
        return None
    conv = node.op_type != "MatMul"
    if conv and w.ndim not in (3, 4, 5):
        return None
    if not conv and w.ndim != 2:
        return None
    if ws.size > 1:
        axis = int(dw.attrs.get("axis", 1))
        if ws.size != w.shape[0 if conv else 1] or axis % w.ndim != (0 if conv else 1):
            return None
    if len(node.inputs) > 2 and node.inputs[2]:
        bt = graph.type_of(node.inputs[2])
        if bt is None or bt.tensor_type.elem_type != FLOAT:
            return None
    if conv and node.attrs.get("auto_pad", "NOTSET") not in (
        "NOTSET",
        "VALID",
        "SAME_UPPER",
        "SAME_LOWER",
    ):
        return None
    assert xs is not None and xzp is not None and ys is not None and yzp is not None
    return QDQGroup(i, jx, jw, jq, relu, fused_relu or relu is not None, xs, xzp, ws, ys, yzp)


def shared_inputs_ok(groups: dict[int, QDQGroup], consumers: dict[str, list[Node]], graph: Graph) -> None:
    """Drop groups whose activation DequantizeLinear also feeds a node outside every group (it
    passes the quantized tensor on, which only the groups can read); to a fixed point."""
    changed = True
    while changed:
        changed = False
        heads = {id(graph.nodes[i]) for i in groups}
        for i, g in list(groups.items()):
            name = graph.nodes[g.x_dq].outputs[0]
            if not all(id(u) in heads for u in consumers.get(name, [])):
                del groups[i]
                changed = True


def match_pool(
    graph: Graph,
    i: int,
    candidates: set[int],
    producer: dict[str, int],
    consumers: dict[str, list[Node]],
    escaping: set[str],
) -> tuple[int, int] | None:
    """(DequantizeLinear, QuantizeLinear) around MaxPool ``i`` with the same scale and zero point
    on both sides: max pooling commutes with that monotonic map, so it runs on the 8-bit tensor
    and gives the same bytes."""
    node = graph.nodes[i]
    if node.op_type != "MaxPool" or node.domain not in ("", "ai.onnx") or len(node.outputs) > 1:
        return None
    j = producer.get(node.inputs[0])
    out = node.outputs[0]
    users = consumers.get(out, [])
    if j is None or j not in candidates or out in escaping or len(users) != 1:
        return None
    dq, q = graph.nodes[j], users[0]
    if dq.op_type != "DequantizeLinear" or q.op_type != "QuantizeLinear":
        return None
    if node.inputs[0] in escaping or len(consumers.get(node.inputs[0], [])) != 1:
        return None
    k = graph.nodes.index(q)
    x, y = _scale_zp(graph, dq), _scale_zp(graph, q)
    if k not in candidates or x is None or y is None or not _q_output_ok(q, y[1]):
        return None
    (xs, xzp), (ys, yzp) = x, y
    if xs.item() != ys.item() or xzp.dtype != yzp.dtype or xzp.item() != yzp.item():
        return None
    return j, k


def _scale_zp(
    graph: Graph, node: Node, zp_types: tuple[Any, ...] = (np.uint8, np.int8)
) -> tuple[np.ndarray, np.ndarray] | None:
    """A QuantizeLinear's or DequantizeLinear's scale (float32) and 8-bit zero point, when both
    are per-tensor initializers."""
    if node.domain not in ("", "ai.onnx") or len(node.inputs) < 3:
        return None
    s, z = _init(graph, node.inputs[1]), _init(graph, node.inputs[2])
    if s is None or z is None or not (_scalar(s, (np.float32,)) and _scalar(z, zp_types)):
        return None
    return s, z


def _q_output_ok(q: Node, zp: np.ndarray) -> bool:
    """A QuantizeLinear's output_dtype, if set, is its zero point's."""
    return int(q.attrs.get("output_dtype", 0)) in (0, U8 if zp.dtype == np.uint8 else S8)


@dataclass
class QConcat:
    """DequantizeLinear (per input) -> Concat -> QuantizeLinear, all scales and zero points per
    tensor: the Concat requantizes the 8-bit inputs into the 8-bit output (see
    ``_int8.QConcatKernel``); the DequantizeLinear and QuantizeLinear nodes pass their input on."""

    dqs: list[int]
    q: int
    scales: list[float]
    zps: list[int]
    ys: float
    yzp: np.ndarray  # its dtype is the output's


def match_concat(
    graph: Graph,
    i: int,
    candidates: set[int],
    producer: dict[str, int],
    consumers: dict[str, list[Node]],
    escaping: set[str],
) -> QConcat | None:
    node = graph.nodes[i]
    if node.op_type != "Concat" or node.domain not in ("", "ai.onnx") or not node.inputs:
        return None
    out = node.outputs[0]
    users = consumers.get(out, [])
    if out in escaping or len(users) != 1 or users[0].op_type != "QuantizeLinear":
        return None
    q = users[0]
    k = graph.nodes.index(q)
    y = _scale_zp(graph, q)
    if k not in candidates or y is None or not _q_output_ok(q, y[1]):
        return None
    ys, yzp = y
    dqs, scales, zps = [], [], []
    for name in node.inputs:
        j = producer.get(name) if name else None
        if j is None or j not in candidates or name in escaping or len(consumers.get(name, [])) != 1:
            return None
        dq = graph.nodes[j]
        x = _scale_zp(graph, dq, (yzp.dtype.type,)) if dq.op_type == "DequantizeLinear" else None
        if x is None:
            return None
        xs, xzp = x
        dqs.append(j)
        scales.append(float(xs.item()))
        zps.append(int(xzp.item()))
    return QConcat(dqs, k, scales, zps, float(ys.item()), yzp.reshape(()))
