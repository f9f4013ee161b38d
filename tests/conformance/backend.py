"""An onnx.backend adapter over onnxlite's public API, as onnxruntime wires its conformance tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

import onnxlite


class OnnxliteRep(BackendRep):
    def __init__(self, session: onnxlite.InferenceSession) -> None:
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        if isinstance(inputs, dict):
            feeds = inputs
        elif isinstance(inputs, (list, tuple)):
            feeds = dict(zip(self.input_names, inputs))
        else:
            feeds = {self.input_names[0]: inputs}
        return tuple(self.session.run(None, feeds))


class OnnxliteBackend(Backend):
    # the session's providers (None: onnxlite's default list, best first)
    providers: list[str] | None = None

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return True

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"

    @classmethod
    def prepare(cls, model: Any, device: str = "CPU", **kwargs: Any) -> OnnxliteRep:
        if isinstance(model, onnx.ModelProto):
            model = model.SerializeToString()
        return OnnxliteRep(onnxlite.InferenceSession(model, providers=cls.providers))

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        return cls.prepare(model, device).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU", **kwargs: Any) -> Any:
        raise NotImplementedError("the suite runs models, not bare nodes")


class CpuOnlyBackend(OnnxliteBackend):
    """The CPU provider alone: its numpy kernels for the ops another provider would claim."""

    providers = ["CPUExecutionProvider"]


np.seterr(all="ignore")
