"""CUDAExecutionProvider: float32/float16 CNN and transformer ops on an NVIDIA GPU through CuPy.

The kernels (``_math``, ``_nn``, ``_tensor``) are written against an array namespace: cupy here,
where ``matmul`` is a cuBLAS GEMM and Conv uses cuDNN when CuPy exposes it. Values produced by
the provider stay on the GPU; the plan copies values at the boundaries with other providers, and
the nodes this provider declines (``supports``: op, version, element types, attributes) run on
the CPU provider. Initializers are copied to the device once per session, not once per run.

Provider options (strings, as onnxruntime passes them):

* ``device_id``: the CUDA device (default 0);
* ``gpu_mem_limit``: bytes CuPy's memory pool of that device may hold (process-wide: the pool is
  shared with every session and with other CuPy users on that device);
* ``cudnn_conv_algo_search``: ``EXHAUSTIVE`` benchmarks cuDNN's algorithms once per shape,
  ``HEURISTIC`` / ``DEFAULT`` take cuDNN's choice;
* ``arena_extend_strategy`` and ``do_copy_in_default_stream`` are accepted for compatibility:
  CuPy's pool grows in its own way and every copy runs on CuPy's current stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from ...errors import InvalidArgument
from ...ir.graph import Graph, Node
from ..base import ExecutionProvider, schema_version
from ..registry import NodeInfo
from . import _math, _nn, _tensor  # noqa: F401  (the modules register their kernel builders)
from ._backend import BUILDERS, Backend, cupy_backend, device_count, load_error
from ._math import BINARY, FUSED_ACTIVATIONS, MS, UNARY

T = onnx.TensorProto
FLOATS = frozenset((T.FLOAT, T.FLOAT16))
INTS = frozenset((T.INT32, T.INT64))
NUMERIC = (
    FLOATS | INTS | frozenset((T.DOUBLE, T.INT8, T.INT16, T.UINT8, T.UINT16, T.UINT32, T.UINT64, T.BOOL))
)
BOOL = frozenset((T.BOOL,))


@dataclass(frozen=True)
class CudaOptions:
    device_id: int = 0
    gpu_mem_limit: int | None = None
    conv_auto_tune: bool = False


_ALGO_SEARCH = {"EXHAUSTIVE": True, "HEURISTIC": False, "DEFAULT": False}
_ARENA = ("kNextPowerOfTwo", "kSameAsRequested")
_BOOLS = ("0", "1", "true", "false", "True", "False")
KNOWN_OPTIONS = (
    "device_id",
    "gpu_mem_limit",
    "cudnn_conv_algo_search",
    "arena_extend_strategy",
    "do_copy_in_default_stream",
)


def parse_options(options: Mapping[str, str]) -> CudaOptions:
    """Typed options from onnxruntime's string options; InvalidArgument names the bad one."""

    def bad(key: str, want: str) -> InvalidArgument:
        return InvalidArgument(
            f"CUDAExecutionProvider option {key}={options[key]!r} is invalid: expected {want}"
        )

    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise InvalidArgument(
            f"CUDAExecutionProvider: unknown option(s) {unknown}; the known ones are {list(KNOWN_OPTIONS)}"
        )

    def integer(key: str, low: int) -> int | None:
        if key not in options:
            return None
        try:
            v = int(str(options[key]).strip())
        except ValueError:
            raise bad(key, f"an integer >= {low}") from None
        if v < low:
            raise bad(key, f"an integer >= {low}")
        return v

    device_id = integer("device_id", 0) or 0
    limit = integer("gpu_mem_limit", 1)
    algo = options.get("cudnn_conv_algo_search", "DEFAULT")
    if algo not in _ALGO_SEARCH:
        raise bad("cudnn_conv_algo_search", f"one of {list(_ALGO_SEARCH)}")
    if options.get("arena_extend_strategy", _ARENA[0]) not in _ARENA:
        raise bad("arena_extend_strategy", f"one of {list(_ARENA)}")
    if str(options.get("do_copy_in_default_stream", "1")) not in _BOOLS:
        raise bad("do_copy_in_default_stream", "0 or 1")
    return CudaOptions(device_id, limit, _ALGO_SEARCH[algo])


class CUDAExecutionProvider(ExecutionProvider):
    name = "CUDAExecutionProvider"
    device = "cuda"
    registry = None

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.config = parse_options(self.options)
        self.be = self._make_backend(self.config)
        # initializers by memory layout (the plan holds read-only views of them), from capability
        self._initializers: dict[tuple[Any, ...], np.ndarray] = {}
        self._on_device: dict[int, tuple[np.ndarray, Any]] = {}  # id -> (host, device copy)

    @classmethod
    def availability(cls) -> str | None:
        return load_error()

    def _make_backend(self, cfg: CudaOptions) -> Backend:
        """CuPy on the configured device, with its memory pool limit set."""
        n = device_count()
        if cfg.device_id >= n:
            raise InvalidArgument(
                f"CUDAExecutionProvider option device_id={cfg.device_id}: CuPy sees {n} CUDA device(s)"
            )
        import cupy

        if cfg.gpu_mem_limit is not None:
            with cupy.cuda.Device(cfg.device_id):
                cupy.get_default_memory_pool().set_limit(size=cfg.gpu_mem_limit)
        return cupy_backend(cfg.device_id, cfg.conv_auto_tune)

    # -- what it runs ---------------------------------------------------------------------------

    def supports(self, node: Node, graph: Graph, opsets: Mapping[str, int]) -> bool:
        dom = "" if node.domain in ("", "ai.onnx") else node.domain
        check = CHECKS.get((dom, node.op_type))
        if check is None or (dom, node.op_type) not in BUILDERS:
            return False
        try:
            return bool(check(node, graph, schema_version(node, opsets)))
        except Exception:  # an attribute of an unexpected form: leave the node to the CPU
            return False

    def capability(self, graph: Graph, candidates: list[int], opsets: Mapping[str, int]) -> list[list[int]]:
        for value in graph.initializers.values():
            if isinstance(value, np.ndarray):
                self._initializers[self._layout(value)] = value
        return super().capability(graph, candidates, opsets)

    def kernel(self, info: NodeInfo, node: Node, opsets: Mapping[str, int]) -> Callable[..., Any]:
        fn = BUILDERS[(info.domain, node.op_type)](info, self.be)
        be = self.be
        if not (be.gpu and be.device_id):
            return fn

        def on_device(*args: Any) -> Any:
            with be.context():
                return fn(*args)

        return on_device

    # -- copies ---------------------------------------------------------------------------------

    @staticmethod
    def _layout(a: np.ndarray) -> tuple[Any, ...]:
        return (a.__array_interface__["data"][0], a.shape, a.strides, a.dtype.str)

    def to_device(self, value: Any) -> Any:
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            hit = self._on_device.get(id(value))
            if hit is not None and hit[0] is value:
                return hit[1]
            if self._layout(value) in self._initializers:
                with self.be.context():
                    dev = self.be.to_device(value)
                self._on_device[id(value)] = (value, dev)
                return dev
        if value is None or isinstance(value, list):
            return value
        with self.be.context():
            return self.be.to_device(value)

    def to_cpu(self, value: Any) -> Any:
        if value is None or isinstance(value, (np.ndarray, np.generic, list)):
            return value
        return self.be.to_host(value)


# -- support checks -----------------------------------------------------------------------------


def _elem(graph: Graph, name: str) -> int | None:
    tp = graph.type_of(name) if name else None
    if tp is None or not tp.HasField("tensor_type"):
        return None
    return int(tp.tensor_type.elem_type) or None  # 0: undefined


def _rank(graph: Graph, name: str) -> int | None:
    tp = graph.type_of(name)
    if tp is None or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
        return None
    return len(tp.tensor_type.shape.dim)


def _typed(node: Node, graph: Graph, allowed: frozenset[int], inputs: list[str] | None = None) -> bool:
    """Every (named) input has a known element type in ``allowed``; outputs too where known."""
    names = [n for n in (node.inputs if inputs is None else inputs) if n]
    if not names or not all(_elem(graph, n) in allowed for n in names):
        return False
    return all(_elem(graph, n) in (None, *allowed) for n in node.outputs if n)


def _same_type(node: Node, graph: Graph, allowed: frozenset[int]) -> bool:
    types = {_elem(graph, n) for n in node.inputs if n}
    return len(types) == 1 and _typed(node, graph, allowed)


def _single_output(node: Node) -> bool:
    return not any(node.outputs[1:])


def _unary_ok(node: Node, graph: Graph, version: int) -> bool:
    if node.op_type == "Not":
        return _typed(node, graph, BOOL)
    if node.op_type == "IsNaN":
        return _typed(node, graph, FLOATS, node.inputs[:1])
    return len(node.inputs) == 1 and _typed(node, graph, FLOATS)


def _gelu_ok(node: Node, graph: Graph, version: int) -> bool:
    return node.attrs.get("approximate", "none") in ("none", "tanh") and _same_type(node, graph, FLOATS)


def _clip_ok(node: Node, graph: Graph, version: int) -> bool:
    return version >= 6 and _same_type(node, graph, FLOATS)


def _binary_ok(node: Node, graph: Graph, version: int) -> bool:
    op = node.op_type
    if version < 7 or len(node.inputs) != 2:
        return False  # older versions have the broadcast/axis attributes
    if op in ("And", "Or", "Xor"):
        return _typed(node, graph, BOOL)
    if op in ("Div", "Pow"):
        return _same_type(node, graph, FLOATS)
    types = {_elem(graph, n) for n in node.inputs}
    if len(types) != 1 or not types <= (FLOATS | INTS):
        return False
    out = BOOL if op not in ("Add", "Sub", "Mul") else FLOATS | INTS
    return all(_elem(graph, o) in (None, *out) for o in node.outputs if o)


def _variadic_ok(node: Node, graph: Graph, version: int) -> bool:
    return version >= 8 and len(node.inputs) >= 1 and _same_type(node, graph, FLOATS)


def _where_ok(node: Node, graph: Graph, version: int) -> bool:
    c, x, y = node.inputs
    return (
        _elem(graph, c) == T.BOOL
        and _elem(graph, x) == _elem(graph, y)
        and _typed(node, graph, NUMERIC, [x, y])
    )


def _gemm_ok(node: Node, graph: Graph, version: int) -> bool:
    if node.op_type == "FusedGemm":
        if node.attrs.get("activation", "") not in FUSED_ACTIVATIONS:
            return False
    elif version < 7:
        return False
    return (
        _same_type(node, graph, FLOATS)
        and _rank(graph, node.inputs[0]) == 2
        and _rank(graph, node.inputs[1]) == 2
    )


def _matmul_ok(node: Node, graph: Graph, version: int) -> bool:
    return _same_type(node, graph, FLOATS)


def _softmax_ok(node: Node, graph: Graph, version: int) -> bool:
    return _rank(graph, node.inputs[0]) is not None and _typed(node, graph, FLOATS)


def _layer_norm_ok(node: Node, graph: Graph, version: int) -> bool:
    if not _single_output(node) or int(node.attrs.get("stash_type", 1)) != 1:
        return False
    return _rank(graph, node.inputs[0]) is not None and _same_type(node, graph, FLOATS)


def _skip_norm_ok(node: Node, graph: Graph, version: int) -> bool:
    outs = list(node.outputs) + [""] * 4
    return not outs[1] and not outs[2] and _same_type(node, graph, FLOATS)


def _conv_ok(node: Node, graph: Graph, version: int) -> bool:
    ins = node.inputs
    r = _rank(graph, ins[0])
    if r not in (3, 4, 5) or _rank(graph, ins[1]) != r or not _same_type(node, graph, FLOATS):
        return False
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        return False
    if node.op_type == "FusedConv":
        return node.attrs.get("activation", "") in FUSED_ACTIVATIONS
    return len(ins) <= 3


def _pool_ok(node: Node, graph: Graph, version: int) -> bool:
    if not _single_output(node) or not _typed(node, graph, FLOATS):
        return False
    r = _rank(graph, node.inputs[0])
    if r is None or r < 3:
        return False
    if node.op_type.startswith("Global"):
        return True
    a = node.attrs
    ks = a.get("kernel_shape")
    auto_pad = a.get("auto_pad", "NOTSET")
    return ks is not None and len(ks) == r - 2 and auto_pad in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def _bn_ok(node: Node, graph: Graph, version: int) -> bool:
    a = node.attrs
    if version < 7 or len(node.inputs) != 5 or not _single_output(node):
        return False
    if int(a.get("training_mode", 0)) or int(a.get("spatial", 1)) != 1:
        return False
    r = _rank(graph, node.inputs[0])
    return r is not None and r >= 2 and _same_type(node, graph, FLOATS)


def _data_ok(node: Node, graph: Graph, version: int) -> bool:
    """Data movement: any numeric data; the other inputs are the op's int64 parameters."""
    if node.op_type == "Reshape" and version < 5:
        return False
    return _typed(node, graph, NUMERIC, node.inputs[:1])


def _concat_ok(node: Node, graph: Graph, version: int) -> bool:
    return version >= 4 and _same_type(node, graph, NUMERIC)


def _gather_ok(node: Node, graph: Graph, version: int) -> bool:
    return _typed(node, graph, NUMERIC, node.inputs[:1]) and _elem(graph, node.inputs[1]) in INTS


def _shape_ok(node: Node, graph: Graph, version: int) -> bool:
    return _elem(graph, node.inputs[0]) in NUMERIC


def _cast_ok(node: Node, graph: Graph, version: int) -> bool:
    return int(node.attrs.get("to", 0)) in NUMERIC and _elem(graph, node.inputs[0]) in NUMERIC


def _constant_of_shape_ok(node: Node, graph: Graph, version: int) -> bool:
    v = node.attrs.get("value")
    dt = np.float32 if v is None else np.asarray(v).dtype
    return version >= 9 and _elem(graph, node.inputs[0]) == T.INT64 and np.dtype(dt).kind in "biuf"


def _range_ok(node: Node, graph: Graph, version: int) -> bool:
    return _same_type(node, graph, FLOATS | INTS)


def _constant_ok(node: Node, graph: Graph, version: int) -> bool:
    if len(node.attrs) != 1:
        return False
    (name, value), *_ = node.attrs.items()
    if name in ("value_float", "value_floats", "value_int", "value_ints"):
        return True
    if name != "value":
        return False
    if isinstance(value, onnx.TensorProto):
        return value.data_type in NUMERIC
    return isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.dtype != np.float64


CHECKS: dict[tuple[str, str], Callable[[Node, Graph, int], bool]] = {
    **{("", op): _unary_ok for op in UNARY},
    ("", "Erf"): lambda n, g, v: _same_type(n, g, FLOATS),
    ("", "Gelu"): _gelu_ok,
    (MS, "Gelu"): _gelu_ok,
    (MS, "BiasGelu"): lambda n, g, v: _same_type(n, g, FLOATS),
    (MS, "FastGelu"): lambda n, g, v: _same_type(n, g, FLOATS),
    ("", "Clip"): _clip_ok,
    **{("", op): _binary_ok for op in BINARY},
    **{("", op): _variadic_ok for op in ("Sum", "Max", "Min", "Mean")},
    ("", "Where"): _where_ok,
    ("", "MatMul"): _matmul_ok,
    ("", "Gemm"): _gemm_ok,
    (MS, "FusedGemm"): _gemm_ok,
    ("", "Softmax"): _softmax_ok,
    ("", "LogSoftmax"): _softmax_ok,
    ("", "LayerNormalization"): _layer_norm_ok,
    (MS, "SkipLayerNormalization"): _skip_norm_ok,
    ("", "Conv"): _conv_ok,
    (MS, "FusedConv"): _conv_ok,
    ("", "MaxPool"): _pool_ok,
    ("", "AveragePool"): _pool_ok,
    ("", "GlobalAveragePool"): _pool_ok,
    ("", "GlobalMaxPool"): _pool_ok,
    ("", "BatchNormalization"): _bn_ok,
    **{
        ("", op): _data_ok
        for op in ("Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Split", "Slice")
    },
    ("", "Expand"): _data_ok,
    ("", "Concat"): _concat_ok,
    ("", "Gather"): _gather_ok,
    ("", "Shape"): _shape_ok,
    ("", "Size"): _shape_ok,
    ("", "Cast"): _cast_ok,
    ("", "ConstantOfShape"): _constant_of_shape_ok,
    ("", "Range"): _range_ok,
    ("", "Constant"): _constant_ok,
}
