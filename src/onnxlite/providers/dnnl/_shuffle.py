"""Channel shuffle (ShuffleNet): Reshape [N, C, H, W] -> [N, g, C/g, H, W], Transpose
perm [0, 2, 1, 3, 4], Reshape back to [N, C, H, W], matched as one oneDNN shuffle.

Without it the blocked activations leave oneDNN twice per shuffle (reordered to plain arrays
for the CPU provider's Reshape/Transpose and back): ShuffleNet has 16 of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ...ir.graph import Graph, Node
from ...types import static_shape

FLOAT = onnx.TensorProto.FLOAT


@dataclass
class Shuffle:
    first: int  # the Reshape to groups
    transpose: int
    last: int  # the Reshape back
    groups: int


def _static_shape(graph: Graph, name: str) -> tuple[int, ...] | None:
    """The float32 value's shape when every dim is known."""
    tp = graph.type_of(name)
    return static_shape(tp) if tp is not None and tp.tensor_type.elem_type == FLOAT else None


def _reshaped(node: Node, graph: Graph, src: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape a Reshape with a constant target gives ``src`` (0 copies, -1 infers)."""
    if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
        return None
    target = graph.initializers.get(node.inputs[1])
    if not isinstance(target, np.ndarray) or target.ndim != 1 or int(node.attrs.get("allowzero", 0)):
        return None
    dims = [int(v) if int(v) != 0 else (src[i] if i < len(src) else -2) for i, v in enumerate(target)]
    if -2 in dims or dims.count(-1) > 1 or any(d < -1 for d in dims):
        return None
    total = int(np.prod(src))
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        if known == 0 or total % known:
            return None
        dims[dims.index(-1)] = total // known
    return tuple(dims) if int(np.prod(dims)) == total else None


def match(
    graph: Graph,
    i: int,
    candidates: set[int],
    producer: dict[str, int],
    consumers: dict[str, list[Node]],
    escaping: set[str],
) -> Shuffle | None:
    """The channel shuffle whose Transpose is node ``i``, when all three nodes are candidates
    and the values between them are read by nothing else."""
    tr = graph.nodes[i]
    if tr.op_type != "Transpose" or tr.domain not in ("", "ai.onnx"):
        return None
    if list(tr.attrs.get("perm", [])) != [0, 2, 1, 3, 4]:
        return None
    j = producer.get(tr.inputs[0])
    if j is None or j not in candidates:
        return None
    first = graph.nodes[j]
    users = consumers.get(tr.outputs[0], [])
    if len(users) != 1 or tr.outputs[0] in escaping:
        return None
    last = users[0]
    k = graph.nodes.index(last)
    if k not in candidates or last.inputs[0] != tr.outputs[0]:
        return None
    mid = first.outputs[0]
    if mid in escaping or len(consumers.get(mid, [])) != 1:
        return None
    src = _static_shape(graph, first.inputs[0])
    if src is None or len(src) != 4:
        return None
    grouped = _reshaped(first, graph, src)
    n, c, h, w = src
    if grouped is None or len(grouped) != 5 or grouped[0] != n or grouped[3:] != (h, w):
        return None
    g = grouped[1]
    if g < 1 or g * grouped[2] != c:
        return None
    if _reshaped(last, graph, (n, grouped[2], g, h, w)) != src:
        return None
    return Shuffle(j, i, k, g)
