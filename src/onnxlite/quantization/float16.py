"""float32 -> float16 conversion (onnxconverter_common's convert_float_to_float16 semantics):
``keep_io_types`` keeps float32 graph inputs/outputs behind Casts; ``op_block_list`` and
``node_block_list`` keep nodes in float32, with Casts at the boundaries."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import TensorProto, helper

from ..ir.graph import Node
from ._rewrite import Rewriter, load_ir, save_model
from .api import QuantizeReport, _count

DEFAULT_OP_BLOCK_LIST = (
    "ArrayFeatureExtractor",
    "Binarizer",
    "CastMap",
    "CategoryMapper",
    "DictVectorizer",
    "FeatureVectorizer",
    "Imputer",
    "LabelEncoder",
    "LinearClassifier",
    "LinearRegressor",
    "Normalizer",
    "OneHotEncoder",
    "RandomUniformLike",
    "SVMClassifier",
    "SVMRegressor",
    "Scaler",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "ZipMap",
    "NonMaxSuppression",
    "TopK",
    "RoiAlign",
    "Range",
    "CumSum",
    "Min",
    "Max",
    "Upsample",
)
# float inputs that stay float32 even in a float16 node (the spec types them separately)
_KEEP_F32_INPUTS = {"Resize": {1, 2}, "Upsample": {1}}
FP16_MAX = 65504.0


def _to_fp16(a: np.ndarray, min_positive_val: float, max_finite_val: float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    tiny = (np.abs(a) < min_positive_val) & (a != 0)
    a = np.where(tiny, np.sign(a) * min_positive_val, a)
    a = np.where(np.isfinite(a), np.clip(a, -max_finite_val, max_finite_val), a)
    return a.astype(np.float16)


def _f16_type(tp: Any) -> Any:
    if tp is None or not tp.HasField("tensor_type") or tp.tensor_type.elem_type != TensorProto.FLOAT:
        return tp
    new = type(tp)()
    new.CopyFrom(tp)
    new.tensor_type.elem_type = TensorProto.FLOAT16
    return new


def convert_model_float16(
    model_input: Any,
    model_output: str | os.PathLike[str],
    min_positive_val: float = 1e-7,
    max_finite_val: float = 1e4,
    keep_io_types: bool = False,
    op_block_list: Sequence[str] | None = None,
    node_block_list: Sequence[str] | None = None,
) -> QuantizeReport:
    """Convert a model to float16 and save it; returns which nodes run in float16."""
    model = load_ir(model_input)
    report = QuantizeReport(op_counts=_count(model.graph.nodes))
    rw = Rewriter(model)
    g = model.graph
    ops_blocked = set(DEFAULT_OP_BLOCK_LIST if op_block_list is None else op_block_list)
    nodes_blocked = set(node_block_list or ())
    max_finite_val = min(max_finite_val, FP16_MAX)

    f32: set[str] = set()  # tensors that are float32 in the new graph
    f16: set[str] = set()
    for v in g.inputs:
        if rw.is_float32(v.name) and v.name not in g.initializers:
            if keep_io_types:
                f32.add(v.name)
            else:
                f16.add(v.name)
                v.type = _f16_type(v.type)
    users_of: dict[str, list[tuple[Node, int]]] = {}
    for n in g.nodes:
        for i, x in enumerate(n.inputs):
            users_of.setdefault(x, []).append((n, i))
    blocked = {
        id(n)
        for n in g.nodes
        if n.op_type in ops_blocked
        or n.name in nodes_blocked
        or n.domain not in ("", "ai.onnx")
        or n.graphs()
    }
    # initializers: float16 where every user is a converted node reading it as a float16 input
    for name, arr in list(g.initializers.items()):
        if np.asarray(arr).dtype != np.float32:
            continue
        uses = users_of.get(name, [])
        if uses and all(
            id(n) not in blocked and i not in _KEEP_F32_INPUTS.get(n.op_type, ()) for n, i in uses
        ):
            g.initializers[name] = _to_fp16(arr, min_positive_val, max_finite_val)
            f16.add(name)
        else:
            f32.add(name)
    cast_cache: dict[tuple[str, int], str] = {}
    new_nodes: list[Node] = []
    converted: list[Node] = []

    def cast(x: str, to: int) -> str:
        key = (x, to)
        if key not in cast_cache:
            c = rw.node("Cast", [x], name=f"{x}_to_{'fp16' if to == TensorProto.FLOAT16 else 'fp32'}", to=to)
            new_nodes.append(c)
            cast_cache[key] = c.outputs[0]
        return cast_cache[key]

    for n in g.nodes:
        if id(n) in blocked:
            n.inputs = [cast(x, TensorProto.FLOAT) if x in f16 else x for x in n.inputs]
            f32.update(o for o in n.outputs if rw.is_float32(o))
            new_nodes.append(n)
            continue
        keep = _KEEP_F32_INPUTS.get(n.op_type, set())
        ins = []
        for i, x in enumerate(n.inputs):
            if i in keep and x in f16:
                x = cast(x, TensorProto.FLOAT)
            elif i not in keep and x in f32:
                x = cast(x, TensorProto.FLOAT16)
            ins.append(x)
        n.inputs = ins
        if n.op_type == "Cast" and n.attrs.get("to") == TensorProto.FLOAT:
            n.attrs["to"] = TensorProto.FLOAT16
        elif n.op_type in ("Constant", "ConstantOfShape"):
            val = n.attrs.get("value")
            if isinstance(val, np.ndarray) and val.dtype == np.float32:
                n.attrs["value"] = _to_fp16(val, min_positive_val, max_finite_val)
        elif (
            n.op_type in ("EyeLike", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike")
            and n.attrs.get("dtype") == TensorProto.FLOAT
        ):
            n.attrs["dtype"] = TensorProto.FLOAT16
        for o in n.outputs:
            if rw.is_float32(o) or (g.type_of(o) is None and any(x in f16 for x in n.inputs)):
                f16.add(o)
        new_nodes.append(n)
        converted.append(n)
    # graph outputs
    for v in g.outputs:
        if v.name not in f16:
            continue
        if keep_io_types:
            inner = rw.unique(v.name + "_fp16")
            for n in new_nodes:
                n.outputs = [inner if o == v.name else o for o in n.outputs]
                n.inputs = [inner if x == v.name else x for x in n.inputs]
            new_nodes.append(
                Node(
                    "Cast",
                    [inner],
                    [v.name],
                    attrs={"to": TensorProto.FLOAT},
                    name=rw.unique(v.name + "_to_fp32"),
                )
            )
        else:
            v.type = _f16_type(v.type) or helper.make_tensor_type_proto(TensorProto.FLOAT16, None)
    g.nodes = new_nodes
    g.value_info = {}
    report.quantized = _count(converted)
    save_model(model, os.fspath(model_output))
    return report


def convert_float_to_float16(
    model: Any,
    min_positive_val: float = 1e-7,
    max_finite_val: float = 1e4,
    keep_io_types: bool = False,
    disable_shape_infer: bool = False,
    op_block_list: Sequence[str] | None = None,
    node_block_list: Sequence[str] | None = None,
) -> Any:
    """onnxconverter_common's signature: ModelProto (or path) in, float16 ModelProto out."""
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.onnx")
        convert_model_float16(
            model, p, min_positive_val, max_finite_val, keep_io_types, op_block_list, node_block_list
        )
        return onnx.load(p)
