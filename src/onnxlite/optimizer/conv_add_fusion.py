"""Residual fusion: ``act(Conv(x) + z)`` becomes com.microsoft ``FusedConv(x, W, B, Z=z)`` with
``act`` as its activation (float32, same shapes, as onnxruntime's FusedConv defines Z).

The sum is done on the same float32 values in the same order (the convolution's result, then
plus z, then the activation), so results match; the kernels add z into the convolution's output
(oneDNN: a sum post-op), one pass over the tensor instead of two or three. ResNet-50 has 16 of
these, ShuffleNet 13 (as ``Sum`` of two).
"""

from __future__ import annotations

from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, in_qdq_unit, is_default
from .activation_fusion import CONV_ACTS, activation_params
from .base import MS_DOMAIN, PatternPass


class ConvAddFusion(PatternPass):
    name = "conv_add_fusion"
    keeps_types = True  # see base.Pass
    anchors = frozenset({"Add", "Sum"})

    def rewrite(self, add: Node, idx: GraphIndex) -> bool:
        if not is_default(add) or len(add.inputs) != 2 or len(add.outputs) != 1 or not all(add.inputs):
            return False
        if not idx.ctx.can_emit(MS_DOMAIN, "FusedConv") or add.inputs[0] == add.inputs[1]:
            return False
        for k in (0, 1):
            conv = _conv_without_tail(add.inputs[k], add, idx)
            if conv is None:
                continue
            z = add.inputs[1 - k]
            shape = idx.static_shape(conv.outputs[0])
            if shape is None or idx.static_shape(z) != shape or idx.elem_type(z) != TensorProto.FLOAT:
                continue
            if idx.elem_type(conv.outputs[0]) != TensorProto.FLOAT or in_qdq_unit(conv, idx):
                continue
            attrs = {
                key: v for key, v in conv.attrs.items() if key not in ("activation", "activation_params")
            }
            out = add.outputs[0]
            tail = idx.sole_consumer(out)
            removed = [conv, add]
            if (
                tail is not None
                and is_default(tail)
                and tail.op_type in CONV_ACTS
                and len(tail.outputs) == 1
                and not idx.pinned(out)
            ):
                params = activation_params(tail, idx)
                if params is not None:
                    attrs["activation"] = tail.op_type
                    if params:
                        attrs["activation_params"] = params
                    out = tail.outputs[0]
                    removed.append(tail)
            x, w = conv.inputs[0], conv.inputs[1]
            b = conv.inputs[2] if len(conv.inputs) > 2 else ""
            # At the Add's place: z may be computed after the convolution.
            fused = Node("FusedConv", [x, w, b, z], [out], attrs=attrs, domain=MS_DOMAIN, name=conv.name)
            anchor = removed[-1]
            idx.remove(*removed)
            idx.insert(fused, anchor)
            idx.ctx.use_domain(MS_DOMAIN, 1)
            return True
        return False


def _conv_without_tail(name: str, add: Node, idx: GraphIndex) -> Node | None:
    """The Conv (or FusedConv with neither activation nor Z) producing ``name`` for ``add`` alone."""
    conv = idx.producer_of(name, ("Conv", "FusedConv"))
    if conv is None or len(conv.outputs) != 1 or idx.sole_consumer(name) is not add or idx.pinned(name):
        return None
    if conv.op_type == "Conv":
        return conv if is_default(conv) else None
    if conv.domain != MS_DOMAIN or conv.attrs.get("activation", "") not in ("", "Identity"):
        return None
    return conv if len(conv.inputs) < 4 or not conv.inputs[3] else None
