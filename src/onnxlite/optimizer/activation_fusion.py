"""Activation fusion: ``act(Conv(...))`` becomes com.microsoft ``FusedConv`` and ``act(Gemm(...))``
com.microsoft ``FusedGemm`` (float32, as onnxruntime's CPU kernels).

FusedConv takes Relu, LeakyRelu, Sigmoid, Tanh, Clip (constant bounds) and HardSigmoid, with the
parameters in ``activation_params`` (alpha; min, max; alpha, beta). FusedGemm takes Relu,
LeakyRelu, Sigmoid, Tanh, HardSigmoid and Elu, with ``activation_alpha``/``activation_beta``.
The activation is applied to the same float32 values in the same order, so results match.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ..ir.graph import Node
from ._graphutil import GraphIndex, attr, in_qdq_unit, is_default
from .base import MS_DOMAIN, PatternPass

_F32 = np.finfo(np.float32)
_DEFAULTS: dict[str, list[tuple[str, float]]] = {
    "Relu": [],
    "Sigmoid": [],
    "Tanh": [],
    "LeakyRelu": [("alpha", 0.01)],
    "HardSigmoid": [("alpha", 0.2), ("beta", 0.5)],
    "Elu": [("alpha", 1.0)],
}
CONV_ACTS = frozenset({"Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "Clip"})
_GEMM_ACTS = frozenset({"Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "Elu"})


class ActivationFusion(PatternPass):
    name = "activation_fusion"
    keeps_types = True  # see base.Pass
    anchors = frozenset(CONV_ACTS | _GEMM_ACTS)

    def rewrite(self, act: Node, idx: GraphIndex) -> bool:
        if not is_default(act) or not act.inputs or len(act.outputs) != 1:
            return False
        base = idx.producer_of(act.inputs[0], ("Conv", "Gemm"))
        if base is None or idx.sole_consumer(act.inputs[0]) is not act or len(base.outputs) != 1:
            return False
        if (
            idx.elem_type(act.inputs[0]) != TensorProto.FLOAT
            or in_qdq_unit(base, idx)
            or in_qdq_unit(act, idx)
        ):
            return False
        fused = "FusedConv" if base.op_type == "Conv" else "FusedGemm"
        allowed = CONV_ACTS if fused == "FusedConv" else _GEMM_ACTS
        if act.op_type not in allowed or not idx.ctx.can_emit(MS_DOMAIN, fused):
            return False
        params = activation_params(act, idx)
        if params is None:
            return False
        attrs = dict(base.attrs)
        attrs["activation"] = act.op_type
        if fused == "FusedConv":
            if params:
                attrs["activation_params"] = params
        else:
            for key, value in zip(("activation_alpha", "activation_beta"), params):
                attrs[key] = value
        base.op_type, base.domain, base.attrs = fused, MS_DOMAIN, attrs
        out = act.outputs[0]
        idx.remove(act)
        idx.rename_output(base, base.outputs[0], out)
        idx.ctx.use_domain(MS_DOMAIN, 1)
        return True


def activation_params(act: Node, idx: GraphIndex) -> list[float] | None:
    """FusedConv's ``activation_params`` for ``act`` (None: bounds that are not constants)."""
    if act.op_type == "Clip":
        if idx.ctx.opset() >= 11:  # bounds are optional constant inputs
            bounds = []
            # An absent bound clamps nothing, not even infinities.
            for pos, default in ((1, -np.inf), (2, np.inf)):
                name = act.inputs[pos] if len(act.inputs) > pos else ""
                v = idx.scalar(name) if name else default
                if v is None:
                    return None
                bounds.append(v)
            return bounds
        return [float(attr(act, "min", _F32.min)), float(attr(act, "max", _F32.max))]
    return [float(attr(act, k, d)) for k, d in _DEFAULTS[act.op_type]]
