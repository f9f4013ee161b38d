"""Profiling in onnxruntime's Chrome-trace JSON format (enable_profiling / end_profiling)."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from typing import Any

import numpy as np

from .plan import Plan, Variant, store
from .types import elem_name, onnx_type


def _type_shape(values: list[Any]) -> list[dict[str, list[int]]]:
    out = []
    for v in values:
        if isinstance(v, (np.ndarray, np.generic)) or (hasattr(v, "dtype") and hasattr(v, "shape")):
            try:
                name = elem_name(onnx_type(v.dtype))
            except TypeError:
                name = str(v.dtype)
            out.append({name: [int(d) for d in v.shape]})
    return out


def _nbytes(values: list[Any]) -> int:
    return int(sum(v.nbytes for v in values if hasattr(v, "nbytes") and hasattr(v, "dtype")))


class Profiler:
    """Collects session and per-node events; ``write()`` saves them and returns the file name."""

    def __init__(self, options: Any) -> None:
        self.prefix = options.profile_file_prefix
        self.start_ns = time.perf_counter_ns()
        self.wall_start = datetime.now()
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _us(self, ns: int) -> int:
        return (ns - self.start_ns) // 1000

    def session_event(self, name: str, t0: int, t1: int) -> None:
        with self._lock:
            self.events.append(
                {
                    "cat": "Session",
                    "pid": os.getpid(),
                    "tid": threading.get_ident(),
                    "dur": (t1 - t0) // 1000,
                    "ts": self._us(t0),
                    "ph": "X",
                    "name": name,
                    "args": {},
                }
            )

    def run(self, plan: Plan, vals: list[Any], variant: Variant) -> list[Any]:
        """Execute ``variant`` step by step, timing each node."""
        t_run = time.perf_counter_ns()
        events = []
        tid = threading.get_ident()
        pid = os.getpid()
        for pos, (fn, ins, outs, free) in enumerate(variant.steps):
            step = plan.steps[variant.step_index[pos]]
            args_in = [vals[i] for i in ins]
            t0 = time.perf_counter_ns()
            try:
                res = fn(*args_in)
            except Exception as e:
                raise plan.step_error(variant, pos, vals, e) from e
            t1 = time.perf_counter_ns()
            store(vals, outs, res)
            outputs = [vals[o] for o in outs]
            params = [a for a, n in zip(args_in, step.node.inputs) if n in plan.graph.initializers]
            events.append(
                {
                    "cat": "Node",
                    "pid": pid,
                    "tid": tid,
                    "dur": (t1 - t0) // 1000,
                    "ts": self._us(t0),
                    "ph": "X",
                    "name": f"{step.node.name}_kernel_time",
                    "args": {
                        "op_name": step.node.op_type,
                        "provider": step.provider,
                        "node_index": str(variant.step_index[pos]),
                        "input_type_shape": _type_shape(args_in),
                        "output_type_shape": _type_shape(outputs),
                        "activation_size": str(_nbytes(args_in) - _nbytes(params)),
                        "parameter_size": str(_nbytes(params)),
                        "output_size": str(_nbytes(outputs)),
                    },
                }
            )
            for f in free:
                vals[f] = None
        t_end = time.perf_counter_ns()
        with self._lock:
            self.events.extend(events)
            self.events.append(
                {
                    "cat": "Session",
                    "pid": pid,
                    "tid": tid,
                    "dur": (t_end - t_run) // 1000,
                    "ts": self._us(t_run),
                    "ph": "X",
                    "name": "model_run",
                    "args": {},
                }
            )
        return [vals[i] for i in variant.fetch]

    def write(self) -> str:
        stamp = self.wall_start.strftime("%Y-%m-%d_%H-%M-%S")
        path = f"{self.prefix}_{stamp}.json"
        with self._lock, open(path, "w") as f:
            json.dump(self.events, f)
        return path
