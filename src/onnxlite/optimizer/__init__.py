"""Graph optimizer: passes over the IR, grouped into onnxruntime's optimization levels.

``optimize(model, level, disabled)`` rewrites ``model.graph`` in place (subgraphs too) and returns
the names of the passes that changed something. Levels follow ``GraphOptimizationLevel``; each
includes the lower ones. Every pass keeps outputs within 1e-5 (relative to the output's
magnitude) of the unoptimized model, and every fused node is an op onnxruntime also runs.
"""

from __future__ import annotations

from collections.abc import Collection

from ..errors import InvalidArgument
from ..ir.graph import Model
from .activation_fusion import ActivationFusion
from .attention_fusion import AttentionFusion
from .base import Pass, PassContext, PatternPass
from .bias_gelu_fusion import BiasGeluFusion
from .bn_mul_add_fold import BnMulAddFold
from .bn_relu_conv_fold import BnReluConvFold
from .constant_folding import ConstantFolding
from .contrib_qdq import ContribQDQToStandard
from .conv_add_fusion import ConvAddFusion
from .conv_bn_fold import ConvBnFold
from .conv_mul_add_fold import ConvMulAddFold
from .cse import CommonSubexpressions
from .dead_code import DeadCode
from .gelu_fusion import GeluFusion
from .identity_elimination import IdentityElimination
from .layernorm_fusion import LayerNormFusion
from .manager import run_passes
from .matmul_add_to_gemm import MatMulAddToGemm
from .matmul_scale_fusion import MatMulScaleFusion
from .reshape_fold import ReshapeFold
from .skip_layernorm_fusion import SkipLayerNormFusion
from .transpose_fold import TransposeFold

ALL_PASSES: dict[str, Pass] = {
    p.name: p
    for p in (
        ContribQDQToStandard(),
        ConstantFolding(),
        IdentityElimination(),
        DeadCode(),
        CommonSubexpressions(),
        ReshapeFold(),
        TransposeFold(),
        ConvBnFold(),
        ConvMulAddFold(),
        BnMulAddFold(),
        BnReluConvFold(),
        MatMulAddToGemm(),
        GeluFusion(),
        LayerNormFusion(),
        AttentionFusion(),
        ActivationFusion(),
        ConvAddFusion(),
        MatMulScaleFusion(),
        SkipLayerNormFusion(),
        BiasGeluFusion(),
    )
}

_BASIC = [
    "contrib_qdq_to_standard",
    "constant_folding",
    "identity_elimination",
    "dead_code",
    "cse",
    "reshape_fold",
    "transpose_fold",
    "conv_bn_fold",
    "conv_mul_add_fold",
    "bn_mul_add_fold",
    "bn_relu_conv_fold",
    "matmul_add_to_gemm",
    "gelu_fusion",
    "layernorm_fusion",
]
# Attention first: its output shape lets inference prove the residual Add's operands equal,
# which skip_layernorm_fusion needs.
_EXTENDED = [
    *_BASIC,
    "attention_fusion",
    "matmul_scale_fusion",
    "skip_layernorm_fusion",
    "bias_gelu_fusion",
    "conv_add_fusion",
    "activation_fusion",
]

# onnxruntime's GraphOptimizationLevel values. LAYOUT and ALL add layout transforms (NCHWc, NHWC)
# that only pay off with blocked native kernels; numpy kernels gain nothing from them.
LEVELS: dict[int, list[str]] = {
    0: [],
    1: _BASIC,
    2: _EXTENDED,
    3: list(_EXTENDED),
    99: list(_EXTENDED),
}


# onnxruntime's transformer names, so that disabled_optimizers written for it keep working.
# Several of its rules live in one pass here; disabling any of them disables that pass.
ORT_NAMES: dict[str, str] = {
    "ConstantFolding": "constant_folding",
    "CommonSubexpressionElimination": "cse",
    "ConstantSharing": "cse",
    "EliminateIdentity": "identity_elimination",
    "EliminateDropout": "identity_elimination",
    "EliminateSlice": "identity_elimination",
    "ExpandElimination": "identity_elimination",
    "CastElimination": "identity_elimination",
    "NoopElimination": "identity_elimination",
    "ConvBNFusion": "conv_bn_fold",
    "ConvMulFusion": "conv_mul_add_fold",
    "ConvAddFusion": "conv_mul_add_fold",
    "MatMulAddFusion": "matmul_add_to_gemm",
    "GemmSumFusion": "matmul_add_to_gemm",
    "TransposeOptimizer": "transpose_fold",
    "GemmTransposeFusion": "transpose_fold",
    "MatmulTransposeFusion": "transpose_fold",
    "ReshapeFusion": "reshape_fold",
    "GeluFusion": "gelu_fusion",
    "FastGeluFusion": "gelu_fusion",
    "LayerNormFusion": "layernorm_fusion",
    "ConvActivationFusion": "activation_fusion",
    "GemmActivationFusion": "activation_fusion",
    "ConvAddActivationFusion": "conv_add_fusion",
    "MatMulScaleFusion": "matmul_scale_fusion",
    "SkipLayerNormFusion": "skip_layernorm_fusion",
    "BiasGeluFusion": "bias_gelu_fusion",
    "AttentionFusion": "attention_fusion",
}


def optimize(model: Model, level: int, disabled: Collection[str] = ()) -> list[str]:
    """Optimize ``model`` in place at ``level``, skipping the passes named in ``disabled``
    (names of ``ALL_PASSES``, or onnxruntime's names from ``ORT_NAMES``).

    Returns the names of the passes that changed the model, in the order they first did.
    """
    unknown = sorted(n for n in disabled if n not in ALL_PASSES and n not in ORT_NAMES)
    if unknown:
        raise InvalidArgument(
            f"unknown optimizer name(s) {unknown} in disabled_optimizers; known: {sorted(ALL_PASSES)} "
            f"and onnxruntime's {sorted(ORT_NAMES)}"
        )
    off = {ORT_NAMES.get(n, n) for n in disabled}
    try:
        lvl = int(level)
    except (TypeError, ValueError):
        raise InvalidArgument(f"optimization level must be one of {sorted(LEVELS)}, got {level!r}") from None
    if lvl not in LEVELS:
        raise InvalidArgument(f"optimization level must be one of {sorted(LEVELS)}, got {level!r}")
    names = [n for n in LEVELS[lvl] if n not in off]
    return run_passes(model, [ALL_PASSES[n] for n in names], PassContext.for_model(model))


__all__ = [
    "ALL_PASSES",
    "LEVELS",
    "ORT_NAMES",
    "Pass",
    "PassContext",
    "PatternPass",
    "optimize",
    "run_passes",
]
