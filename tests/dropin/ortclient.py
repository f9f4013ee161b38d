"""A small client written against onnxruntime the way popular packages use it (image classifiers,
embedding and background-removal libraries): nothing here knows about onnxlite."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument


class Classifier:
    def __init__(self, model_path: str, threads: int = 1) -> None:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        providers = [p for p in wanted if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(model_path, sess_options=so, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = inp.shape
        self.input_type = inp.type
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.device = ort.get_device()
        self.version = ort.__version__

    def predict(self, batch: np.ndarray) -> np.ndarray:
        h, w = self.input_shape[2], self.input_shape[3]
        if batch.shape[2:] != (h, w):
            raise ValueError(f"expected images of {h}x{w}")
        return self.session.run(None, {self.input_name: batch.astype(np.float32)})[0]

    def predict_named(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(self.output_names[:1], {self.input_name: batch})[0]

    def try_bad_feed(self) -> str:
        try:
            self.session.run(None, {"no_such_input": np.zeros(1, np.float32)})
        except (InvalidArgument, Fail, ValueError) as e:
            return type(e).__name__
        return "no error"
