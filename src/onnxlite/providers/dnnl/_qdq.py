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
    if node.op_type not in ("Conv", "MatMul") or node.domain not in ("", "ai.onnx"):
        return None
    if len(node.inputs) < 2 or not node.outputs or node.outputs[0] in escaping:
        return None

    def only_user(name: str, user: Node) -> bool:
        us = consumers.get(name, [])
        return name not in escaping and len(us) == 1 and us[0] is user

    def dq_of(name: str) -> int | None:
        j = producer.get(name)
        if j is None or j not in candidates:
            return None
        n = graph.nodes[j]
        if n.op_type != "DequantizeLinear" or n.domain not in ("", "ai.onnx"):
            return None
        if int(n.attrs.get("block_size", 0)) or not only_user(name, node):
            return None
        return j

    jx, jw = dq_of(node.inputs[0]), dq_of(node.inputs[1])
    users = consumers.get(node.outputs[0], [])
    if jx is None or jw is None or len(users) != 1:
        return None
    q = users[0]
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
    conv = node.op_type == "Conv"
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
    return QDQGroup(i, jx, jw, jq, xs, xzp, ws, ys, yzp)
