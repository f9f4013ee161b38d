"""Which plan steps only compute shapes, and so give the same values for the same input shapes.

A value's *shape* is fixed by the input shapes when every op on the way computes its output
shape from its input shapes (and attributes), or from the values of inputs that are themselves
fixed by the input shapes (a Reshape's target computed from a Shape). A step's *value* is fixed
when it is a Shape or Size of such a value, or shape arithmetic on those and constants. Anything
else (NonZero, Unique, TopK with a computed k, control flow, an op not listed) ends the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Ops of shape arithmetic (deterministic, no subgraphs): a step of these whose inputs all derive
# from the input shapes and constants gives the same values for the same input shapes.
_SHAPE_OPS = frozenset(
    (
        *("Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Reshape"),
        *("Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Max", "Min"),
        *("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Where"),
        *("ConstantOfShape", "Range", "Expand", "Tile", "Identity", "Transpose"),
        *("ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin"),
    )
)
# Ops whose output shapes follow from their input shapes and attributes alone, whatever the
# input values; and those whose listed inputs' values set the output shape. Any other op (NonZero,
# Unique, TopK with a computed k, control flow, ...) may give a shape the inputs' shapes do not fix.
_SHAPE_FROM_SHAPES = frozenset(
    (
        *("Add", "Sub", "Mul", "Div", "Pow", "Mod", "Neg", "Abs", "Sqrt", "Exp", "Log", "Erf"),
        *("Relu", "Sigmoid", "Tanh", "Gelu", "Softmax", "LogSoftmax", "Cast", "Identity", "Dropout"),
        *("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Where"),
        *("IsNaN", "IsInf", "Floor", "Ceil", "Round", "Reciprocal", "Max", "Min", "Sum", "Clip"),
        *("MatMul", "Gemm", "Conv", "Transpose", "Gather", "GatherElements", "Concat", "Flatten"),
        *("LayerNormalization", "BatchNormalization", "Shape", "Size", "Einsum", "CumSum", "Trilu"),
        *("MaxPool", "AveragePool", "GlobalAveragePool", "LeakyRelu", "Elu", "HardSigmoid"),
        *("FusedConv", "FusedMatMul", "FusedGemm", "BiasGelu", "FastGelu", "SkipLayerNormalization"),
        *("EmbedLayerNormalization", "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization"),
        *("QuantizeLinear", "DequantizeLinear", "MatMulInteger", "DynamicQuantizeLinear"),
        *("QLinearConv", "QLinearMatMul", "ConvInteger", "Attention", "Softplus", "HardSwish"),
    )
)
_SHAPE_FROM_VALUES: dict[str, tuple[int, ...]] = {
    "Reshape": (1,),
    "Expand": (1,),
    "Tile": (1,),
    "ConstantOfShape": (0,),
    "Range": (0, 1, 2),
    "Slice": (1, 2, 3, 4),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "Split": (1,),
    "Pad": (1, 3),
    "ReduceSum": (1,),
    "ReduceMean": (1,),
    "ReduceMax": (1,),
    "ReduceMin": (1,),
    "ReduceProd": (1,),
}


def shape_only_steps(
    steps: Sequence[Any],
    fed: set[int],
    const: set[int],
    fetch: Sequence[int],
    banned: frozenset[int],
    none_slot: int = 0,
) -> tuple[frozenset[int], tuple[int, ...]]:
    """(indices of the steps whose values the input shapes fix, none in ``banned`` or fed by one;
    the slots those steps hand to other steps or to ``fetch``). Steps are (fn, ins, outs, node)
    records in run order; ``fed`` are the slots the caller fills, ``const`` the constant ones."""
    known = const | {none_slot}
    fixed = fed | known  # slots whose shape the input shapes fix
    derived: set[int] = set()  # slots whose value they fix
    chosen: list[int] = []
    for idx, st in enumerate(steps):
        node, op = st.node, st.node.op_type
        plain = not node.graphs() and len(st.ins) == len(node.inputs)
        if plain and all(i in fixed for i in st.ins):
            by_value = [st.ins[k] for k in _SHAPE_FROM_VALUES.get(op, ()) if k < len(st.ins)]
            if op in _SHAPE_FROM_SHAPES or (
                op in _SHAPE_FROM_VALUES and all(i in derived or i in known for i in by_value)
            ):
                fixed.update(st.outs)
        if idx in banned or not plain or node.domain not in ("", "ai.onnx") or op not in _SHAPE_OPS:
            continue
        if op in ("Shape", "Size"):
            ok = bool(st.ins) and st.ins[0] in fixed
        else:
            ok = all(i in derived or i in known for i in st.ins) and any(i in derived for i in st.ins)
        if ok:
            chosen.append(idx)
            derived.update(st.outs)
    picked = set(chosen)
    boundary = {o for o in fetch if o in derived}
    for idx, st in enumerate(steps):
        if idx not in picked:
            boundary.update(i for i in st.ins if i in derived)
    return frozenset(picked), tuple(sorted(boundary))
