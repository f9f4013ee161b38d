"""Graph-editing helpers shared by the quantizers: unique names, initializers, type queries."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from ..ir.graph import Model, Node

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}


class Rewriter:
    """Wraps an IR model: makes unique names and initializers; answers type and use questions."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.graph = model.graph
        g = self.graph
        self._names = (
            {v.name for v in g.inputs}
            | set(g.initializers)
            | {o for n in g.nodes for o in n.outputs}
            | {n.name for n in g.nodes}
        )
        self.consumers: dict[str, list[Node]] = {}
        self.producer: dict[str, Node] = {}
        for n in g.nodes:
            for i in n.inputs:
                self.consumers.setdefault(i, []).append(n)
            for o in n.outputs:
                self.producer[o] = n
        self.graph_outputs = {o.name for o in g.outputs}

    @property
    def opset(self) -> int:
        return self.model.opsets.get("", 1)

    def unique(self, hint: str) -> str:
        name = hint
        i = 1
        while name in self._names:
            name = f"{hint}_{i}"
            i += 1
        self._names.add(name)
        return name

    def init(self, hint: str, value: Any) -> str:
        name = self.unique(hint)
        self.graph.initializers[name] = np.asarray(value)
        return name

    def node(
        self,
        op_type: str,
        inputs: list[str],
        outputs: list[str] | int = 1,
        *,
        name: str = "",
        domain: str = "",
        **attrs: Any,
    ) -> Node:
        if isinstance(outputs, int):
            base = name or op_type
            outputs = [
                self.unique(f"{base}_out{i}" if outputs > 1 else f"{base}_out") for i in range(outputs)
            ]
        return Node(
            op_type,
            list(inputs),
            list(outputs),
            attrs=dict(attrs),
            name=self.unique(name or op_type),
            domain=domain,
        )

    def const(self, name: str) -> np.ndarray | None:
        """The initializer's value, or None when the value is computed at run time."""
        if name in self.graph.initializers and name not in {v.name for v in self.graph.inputs}:
            return self.graph.initializers[name]
        return None

    def is_float(self, name: str) -> bool:
        c = self.const(name)
        if c is not None:
            return np.asarray(c).dtype.kind == "f"
        tp = self.graph.type_of(name)
        if tp is None or not tp.HasField("tensor_type"):
            return False
        return tp.tensor_type.elem_type in _FLOAT_TYPES

    def is_float32(self, name: str) -> bool:
        c = self.const(name)
        if c is not None:
            return np.asarray(c).dtype == np.float32
        tp = self.graph.type_of(name)
        return tp is not None and tp.HasField("tensor_type") and tp.tensor_type.elem_type == TensorProto.FLOAT

    def use_domain(self, domain: str, version: int = 1) -> None:
        self.model.opsets.setdefault(domain, version)

    def drop_unused_initializers(self) -> None:
        used = {i for n in self.graph.nodes for i in n.inputs} | self.graph_outputs
        for _, sub in ((k, g) for n in self.graph.nodes for k, g in n.graphs()):
            used |= sub.free_names()
        for k in list(self.graph.initializers):
            if k not in used and k not in {v.name for v in self.graph.inputs}:
                del self.graph.initializers[k]


def reduce_max_node(rw: Rewriter, x: str, axis: int, keepdims: int = 1, op: str = "ReduceMax") -> Node:
    """ReduceMax (or ReduceMin) over one axis, for the model's opset (axes became an input in 18)."""
    if rw.opset >= 18:
        ax = rw.init("axes", np.array([axis], dtype=np.int64))
        return rw.node(op, [x, ax], keepdims=keepdims)
    return rw.node(op, [x], axes=[axis], keepdims=keepdims)


def save_model(model: Model, path: str, *, use_external_data_format: bool = False) -> None:
    import os

    import onnx

    from ..ir.save import model_to_proto

    proto = model_to_proto(model)
    if use_external_data_format:
        onnx.save_model(
            proto,
            path,
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=os.path.basename(path) + ".data",
            size_threshold=1024,
        )
    else:
        onnx.save_model(proto, path)


def upgrade_opset(model: Model, version: int) -> Model:
    """The model converted to default-domain opset ``version`` (ops whose signature changed, such
    as Dropout's ratio becoming an input, are rewritten by onnx's version converter)."""
    import warnings

    from onnx import version_converter

    from ..ir.load import load_model
    from ..ir.save import model_to_proto
    from .preprocess import fold_constants

    try:
        proto = version_converter.convert_version(model_to_proto(model), version)
        new = load_model(proto)
    except Exception as e:
        warnings.warn(
            f"could not convert the model from opset {model.opsets.get('', 1)} to {version} ({e}); "
            "only its opset number is raised, check the quantized model",
            stacklevel=3,
        )
        return model
    fold_constants(new)
    return new


def load_ir(model_input: Any) -> Model:
    import os

    from ..ir.load import load_model

    if isinstance(model_input, (str, os.PathLike)):
        model_input = os.fspath(model_input)
    model = load_model(model_input)
    from .preprocess import fold_constants

    fold_constants(model)  # weights held by Constant nodes become initializers the quantizers see
    return model
