"""InferenceSession: load -> (optimize) -> partition -> plan -> run, with onnxruntime's API."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from . import arena, profiling
from .compile import BuildContext, compile_graph
from .errors import EPFail, InvalidArgument, OnnxliteError
from .iobinding import IOBinding
from .ir.graph import Model, ValueInfo
from .ir.load import load_model
from .optimizer import optimize
from .options import ExecutionMode, RunOptions, SessionOptions
from .ortvalue import OrtValue
from .parallel import ParallelExecutor
from .plan import Plan
from .providers import available_providers, known_provider_names, provider_class
from .providers.base import ExecutionProvider
from .providers.cpu.provider import CPUExecutionProvider
from .threads import BLAS, SINGLE, SPLIT, RunThreads, ThreadPolicy, building, mark_short_lived
from .types import np_dtype, type_shape, type_string

log = logging.getLogger("onnxlite")

# Sessions whose plans hold kernels of a provider with a thread pool of its own (oneDNN's
# OpenMP team). Such a pool does not survive fork: a child process rebuilds these sessions on
# their first run (see InferenceSession._check_fork).
_OWN_POOL_SESSIONS: weakref.WeakSet[InferenceSession] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for s in list(_OWN_POOL_SESSIONS):
        s._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class NodeArg:
    """A graph input or output: ``name``, ``type`` ('tensor(float)') and ``shape``."""

    __slots__ = ("name", "shape", "type")

    def __init__(self, name: str, type: str, shape: Any) -> None:
        self.name = name
        self.type = type
        self.shape = shape

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


class ModelMetadata:
    """The model's metadata, as onnxruntime.ModelMetadata."""

    def __init__(self, model: Model) -> None:
        self.producer_name = model.producer_name
        self.graph_name = model.graph.name
        self.domain = model.domain
        self.description = model.doc
        self.graph_description = model.graph.doc
        self.version = model.model_version
        self.custom_metadata_map = dict(model.metadata)


def _parse_providers(
    providers: Sequence[Any] | None, provider_options: Sequence[Mapping[str, Any]] | None
) -> list[tuple[str, dict[str, str]]]:
    if providers is None:
        return [(n, {}) for n in available_providers()]
    if isinstance(providers, str):
        providers = [providers]
    if provider_options is not None and len(provider_options) != len(providers):
        raise InvalidArgument(
            f"provider_options has {len(provider_options)} entries for {len(providers)} providers; "
            "they must have the same length"
        )
    out: list[tuple[str, dict[str, str]]] = []
    for i, p in enumerate(providers):
        if isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str):
            name, opts = p[0], dict(p[1] or {})
        elif isinstance(p, str):
            name, opts = p, {}
        else:
            raise InvalidArgument(
                f"providers[{i}] must be a provider name or a (name, options dict) tuple, got {p!r}"
            )
        if provider_options is not None:
            opts.update(provider_options[i] or {})
        known = known_provider_names()
        if name not in known:
            raise ValueError(f"Unknown execution provider {name!r}. Known providers: {', '.join(known)}")
        if any(name == n for n, _ in out):
            raise InvalidArgument(f"provider {name!r} is listed twice")
        out.append((name, {str(k): str(v) for k, v in opts.items()}))
    return out


class InferenceSession:
    """Run an ONNX model: ``InferenceSession(path_or_bytes, sess_options, providers, provider_options)``.

    ``path_or_bytes`` is a file path, the serialized model, or an ``onnx.ModelProto``.
    """

    def __init__(
        self,
        path_or_bytes: Any,
        sess_options: SessionOptions | None = None,
        providers: Sequence[Any] | None = None,
        provider_options: Sequence[Mapping[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        t0 = time.perf_counter_ns()
        if sess_options is not None and not isinstance(sess_options, SessionOptions):
            raise InvalidArgument(f"sess_options must be a SessionOptions, got {type(sess_options).__name__}")
        unknown = set(kwargs) - {"disabled_optimizers", "read_config_from_model"}
        if unknown:
            raise TypeError(f"InferenceSession got unexpected keyword argument(s) {sorted(unknown)}")
        self._sess_options = sess_options if sess_options is not None else SessionOptions()
        if self._sess_options.enable_cpu_mem_arena:
            arena.keep_memory()
        self._disabled_optimizers = list(kwargs.get("disabled_optimizers") or [])
        self._fallback = True
        path = os.fspath(path_or_bytes) if isinstance(path_or_bytes, (str, os.PathLike)) else None
        self._model_path = path if isinstance(path, str) else None
        self._profiler = (
            profiling.Profiler(self._sess_options) if self._sess_options.enable_profiling else None
        )
        self._lock = threading.Lock()
        self._forked = False
        self._load(path_or_bytes, t0)
        so = self._sess_options
        if so.optimized_model_filepath:
            # Saved before compiling: function-body expansion is an execution detail, not part
            # of the model.
            self._save_model(so.optimized_model_filepath)
        self._build(providers, provider_options)
        arena.release_freed(sum(getattr(v, "nbytes", 0) for v in self._model.graph.initializers.values()))
        if self._profiler is not None:
            self._profiler.session_event("session_initialization", t0, time.perf_counter_ns())

    # -- construction -------------------------------------------------------------------------

    def _load(self, source: Any, t0: int) -> None:
        """Load the model, apply the session options' overrides and optimize it."""
        so = self._sess_options
        # With the optimizer on, its first round infers the types (data propagation too): the
        # inference at load would be thrown away.
        level = int(so.graph_optimization_level)
        self._model = load_model(source, infer_types=level == 0)
        if self._profiler is not None:
            self._profiler.session_event("model_loading_uri", t0, time.perf_counter_ns())
        self._apply_overrides()
        self.applied_optimizations = optimize(self._model, level, self._disabled_optimizers)

    def _build(self, providers: Sequence[Any] | None, provider_options: Any) -> None:
        with building():  # pools its one-off work claimed are given back (see threads.building)
            self._build_plan(providers, provider_options)

    def _build_plan(self, providers: Sequence[Any] | None, provider_options: Any) -> None:
        requested = _parse_providers(providers, provider_options)
        instances: list[ExecutionProvider] = []
        cpu: ExecutionProvider | None = None
        for name, opts in requested:
            cls = provider_class(name)
            why = "onnxlite does not implement it" if cls is None else cls.availability()
            if why is not None:
                warnings.warn(
                    f"Specified provider '{name}' is not in available provider names "
                    f"({', '.join(available_providers())}): {why}; it is skipped",
                    stacklevel=3,
                )
                continue
            assert cls is not None
            ep = cls(opts)
            instances.append(ep)
            if isinstance(ep, CPUExecutionProvider):
                cpu = ep
        self._requested_cpu = cpu is not None
        if cpu is None:
            cpu = CPUExecutionProvider()
        self._providers = instances
        self._cpu = cpu
        so = self._sess_options
        fallback_off = so._config.get("session.disable_cpu_ep_fallback", "0") == "1"
        graph = self._model.graph
        ctx = BuildContext(
            self._model.opsets,
            instances,
            cpu,
            allow_cpu_fallback=not fallback_off,
            pack_in_place=self._model_path is not None,
        )
        try:
            self._plan: Plan = compile_graph(graph, ctx)
        except EPFail as e:
            others = [ep for ep in instances if ep is not cpu]
            if fallback_off or not (self._fallback and others):
                raise
            # As onnxruntime's Python layer does: retry on the CPU provider alone, and say so.
            warnings.warn(
                f"session creation with {[ep.name for ep in others]} failed ({e}); "
                "falling back to CPUExecutionProvider",
                stacklevel=3,
            )
            self._providers = [cpu]
            if ctx.packed_any:
                # weights packed before the failure were replaced in the graph: load them again
                assert self._model_path is not None  # weights are packed in place only for files
                self._load(self._model_path, time.perf_counter_ns())
                graph = self._model.graph
            ctx = BuildContext(self._model.opsets, [cpu], cpu)
            self._plan = compile_graph(graph, ctx)
        inits = set(graph.initializers)
        legacy = self._model.ir_version < 4
        self._inputs = [v for v in graph.inputs if v.name not in inits]
        self._overridable = [] if legacy else [v for v in graph.inputs if v.name in inits]
        self._feedable = {v.name: self._plan.slots[v.name] for v in self._inputs + self._overridable}
        self._input_args = [self._node_arg(v) for v in self._inputs]
        self._output_args = [self._node_arg(v) for v in graph.outputs]
        self._expect = {v.name: self._expected(v) for v in self._inputs + self._overridable}
        self._executor = None
        if so.execution_mode == ExecutionMode.ORT_PARALLEL:
            self._executor = ParallelExecutor(so.inter_op_num_threads or os.cpu_count() or 1)
        # A provider's own pool (oneDNN's OpenMP threads spin briefly at barriers): offer the
        # one-thread mode for when another process holds a core (see onnxlite.threads).
        pools = {ep.name for ep in self._providers if ep.own_thread_pool}
        own_threads = any(p in pools for _, p in self._plan.assignment)
        modes = (SPLIT, BLAS, SINGLE) if own_threads else (SPLIT, BLAS)
        if own_threads:
            _OWN_POOL_SESSIONS.add(self)
        self._threads = ThreadPolicy(so.intra_op_num_threads, modes)
        if so.log_severity_level <= 1:
            self._log_assignment()

    def _log_assignment(self) -> None:
        """The verbose session log (log_severity_level 0 or 1): which provider runs which nodes,
        in how many groups, and the device copies between them."""
        from .tools.inspect import device_copies, provider_table

        plan = self._plan
        lines = [f"session built: {len(plan.assignment)} nodes, {device_copies(self)} device copies"]
        for name, count, ops in provider_table(self):
            sizes = [n for p, n in plan.groups if p == name]
            where = f" in {len(sizes)} group(s) of {', '.join(map(str, sizes))}" if sizes else ""
            lines.append(f"  {name}: {count} nodes{where}: {ops}")
        msg = "\n".join(lines)
        if log.hasHandlers():
            # the session asked for it: past the logger's own level, to the application's handlers
            log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, msg, (), None))
        else:  # no logging set up: to stderr, as onnxruntime's default logger writes
            sys.stderr.write(f"onnxlite [I:session] {msg}\n")

    def _apply_overrides(self) -> None:
        so = self._sess_options
        graph = self._model.graph
        for name, value in so._initializers.items():
            if name not in graph.initializers:
                raise InvalidArgument(f"add_initializer: the model has no initializer named {name!r}")
            arr = value.numpy() if isinstance(value, OrtValue) else np.asarray(value)
            graph.initializers[name] = arr
        if so._free_dims_by_name:
            for v in graph.inputs:
                if v.type is not None and v.type.HasField("tensor_type"):
                    for d in v.type.tensor_type.shape.dim:
                        if d.HasField("dim_param") and d.dim_param in so._free_dims_by_name:
                            d.dim_value = so._free_dims_by_name[d.dim_param]

    def _save_model(self, path: str) -> None:
        from .ir.save import model_to_proto

        src = self._model_path
        if src is not None and os.path.exists(path) and os.path.samefile(src, path):
            raise InvalidArgument(
                f"optimized_model_filepath {path!r} is the model's own file: choose another path "
                "(saving there would replace the original model)"
            )
        try:
            onnx.save_model(model_to_proto(self._model), path)
        except OSError as e:
            why = e.strerror or e
            raise InvalidArgument(f"cannot write optimized_model_filepath {path!r}: {why}") from None

    @staticmethod
    def _node_arg(v: ValueInfo) -> NodeArg:
        return NodeArg(v.name, type_string(v.type), type_shape(v.type))

    @staticmethod
    def _expected(v: ValueInfo) -> tuple[str, Any, list[Any] | None]:
        """(kind, numpy dtype or None, declared dims) of an input."""
        tp = v.type
        if tp is None:
            return ("any", None, None)
        which = tp.WhichOneof("value")
        if which == "tensor_type":
            et = tp.tensor_type.elem_type
            dt = np_dtype(et) if et else None
            return ("tensor", dt, type_shape(tp))
        if which == "sequence_type":
            return ("seq", None, None)
        if which == "optional_type":
            return ("optional", None, None)
        return ("any", None, None)

    # -- introspection ------------------------------------------------------------------------

    def get_inputs(self) -> list[NodeArg]:
        return list(self._input_args)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._output_args)

    def get_overridable_initializers(self) -> list[NodeArg]:
        return [self._node_arg(v) for v in self._overridable]

    def get_modelmeta(self) -> ModelMetadata:
        return ModelMetadata(self._model)

    def get_providers(self) -> list[str]:
        names = [ep.name for ep in self._providers if ep is not self._cpu]
        return [*names, self._cpu.name]

    def get_provider_options(self) -> dict[str, dict[str, str]]:
        eps = [ep for ep in self._providers if ep is not self._cpu] + [self._cpu]
        return {ep.name: dict(ep.options) for ep in eps}

    def get_session_options(self) -> SessionOptions:
        return self._sess_options

    def get_profiling_start_time_ns(self) -> int:
        return self._profiler.start_ns if self._profiler is not None else 0

    def set_providers(
        self,
        providers: Sequence[Any] | None = None,
        provider_options: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Rebuild the session for a new provider list."""
        if self._plan.packed_in_place:
            # the graph holds stand-ins of weights a provider packed: load the model again
            assert self._model_path is not None  # weights are packed in place only for files
            self._load(self._model_path, time.perf_counter_ns())
        self._build(providers, provider_options)

    def disable_fallback(self) -> None:
        self._fallback = False

    def enable_fallback(self) -> None:
        self._fallback = True

    def end_profiling(self) -> str:
        """Write the profile (Chrome trace JSON) and return its file name; '' if profiling is off."""
        if self._profiler is None:
            return ""
        return self._profiler.write()

    def io_binding(self) -> IOBinding:
        return IOBinding(self)

    # -- running ------------------------------------------------------------------------------

    def _feed_value(self, name: str, value: Any) -> Any:
        if isinstance(value, OrtValue):
            value = value.value()
        kind, dtype, dims = self._expect[name]
        if kind == "seq":
            if not isinstance(value, (list, tuple)):
                raise InvalidArgument(
                    f"input {name!r} is a sequence: feed a list of arrays, got {type(value).__name__}"
                )
            return [np.asarray(v) for v in value]
        if kind == "optional":
            if value is None or isinstance(value, list):
                return value
            return np.asarray(value)
        if kind == "any":
            return value if isinstance(value, list) or value is None else np.asarray(value)
        if value is None:
            raise InvalidArgument(f"input {name!r} is None: feed an array")
        if not isinstance(value, np.ndarray):
            try:
                value = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
            except (TypeError, ValueError) as e:
                raise InvalidArgument(
                    f"input {name!r}: cannot convert {type(value).__name__} to a tensor: {e}"
                ) from None
        if dtype is not None and value.dtype != dtype:
            if dtype == np.dtype(object) and value.dtype.kind in "US":
                value = value.astype(object)
            elif value.dtype.newbyteorder("=") == dtype:  # the same type in the other byte order
                value = value.astype(dtype)
            else:
                raise InvalidArgument(
                    f"Unexpected input data type for input {name!r}. Actual: ({_tname(value.dtype)}), "
                    f"expected: ({_tname(dtype)})"
                )
        if dims is not None:
            if value.ndim != len(dims):
                raise InvalidArgument(
                    f"Invalid rank for input {name!r}: got {value.ndim} (shape {list(value.shape)}), "
                    f"expected {len(dims)} (shape {dims})"
                )
            for i, (got, want) in enumerate(zip(value.shape, dims)):
                if isinstance(want, int) and got != want:
                    raise InvalidArgument(
                        f"Got invalid dimensions for input {name!r} for index {i}: got {got}, "
                        f"expected {want} (declared shape {dims}, given {list(value.shape)})"
                    )
        return value

    def _check_fork(self) -> None:
        """In a child forked after this session was built: build it again, for the child's
        threads (the parent's oneDNN primitives were made for an OpenMP team the child lacks)."""
        if not self._forked:
            return
        with self._lock:
            if self._forked:
                self._forked = False
                self.set_providers(
                    [ep.name for ep in self._providers], [dict(ep.options) for ep in self._providers]
                )

    def _prepare(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]
    ) -> tuple[list[Any], Any]:
        self._check_fork()
        if not isinstance(input_feed, Mapping):
            raise InvalidArgument(
                f"input_feed must be a dict of name -> value, got {type(input_feed).__name__}"
            )
        plan = self._plan
        if output_names:
            if isinstance(output_names, str):
                raise InvalidArgument("output_names must be a list of names, not a str")
            unknown = [n for n in output_names if n not in plan.slots or n not in plan.output_names]
            if unknown:
                raise InvalidArgument(
                    f"Invalid output name(s) {unknown}; the model's outputs are {plan.output_names}"
                )
            fetch = tuple(plan.slots[n] for n in output_names)
            variant = plan.variant(fetch)
        else:
            variant = plan.full
        vals = plan.template.copy()
        for name, value in input_feed.items():
            slot = self._feedable.get(name)
            if slot is None:
                expected = [a.name for a in self._input_args]
                raise InvalidArgument(f"Invalid input name: {name!r}; the model's inputs are {expected}")
            vals[slot] = self._feed_value(name, value)
        missing = [v.name for v in self._inputs if v.name not in input_feed]
        if missing:
            raise InvalidArgument(
                f"Required inputs ({missing}) are missing from input feed "
                f"({list(input_feed)}); the model's inputs are {[a.name for a in self._input_args]}"
            )
        return vals, variant

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: RunOptions | None = None,
    ) -> list[Any]:
        """Compute the outputs named (all when None or []) from ``input_feed`` {name: array}."""
        vals, variant = self._prepare(output_names, input_feed)
        return [_output(r) for r in self._execute(vals, variant, run_options)]

    def _execute(self, vals: list[Any], variant: Any, run_options: RunOptions | None) -> list[Any]:
        """Run a prepared variant (profiled, parallel or plain) under the session's thread settings."""
        if run_options is not None and not isinstance(run_options, RunOptions):
            raise InvalidArgument(f"run_options must be a RunOptions, got {type(run_options).__name__}")
        policy = self._threads
        plan = self._plan
        variant, signature = plan.specialize(variant, vals)
        t0 = time.perf_counter()
        if policy.trivial and self._profiler is None and self._executor is None:
            out = plan.execute(vals, variant, run_options)
            policy.record_trivial(time.perf_counter() - t0)
        else:
            mode = policy.choose()
            with RunThreads(policy.threads, mode):
                if self._profiler is not None:
                    out = self._profiler.run(plan, vals, variant)
                elif self._executor is not None:
                    out = self._executor.execute(plan, vals, variant, run_options)
                else:
                    out = plan.execute(vals, variant, run_options)
            policy.record(mode, time.perf_counter() - t0)
        if signature is not None:
            plan.remember(signature, vals)
        return out

    def run_with_ort_values(
        self,
        output_names: Sequence[str] | None,
        input_dict_ort_values: Mapping[str, Any],
        run_options: RunOptions | None = None,
    ) -> list[OrtValue]:
        """Like run, with OrtValues in and out."""
        return [OrtValue(v) for v in self.run(output_names, input_dict_ort_values, run_options)]

    def run_async(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        callback: Callable[[Any, Any, str], None],
        user_data: Any = None,
        run_options: RunOptions | None = None,
    ) -> None:
        """Run in a background thread; ``callback(outputs, user_data, error_message)`` gets the result."""

        def work() -> None:
            mark_short_lived()
            try:
                out = self.run(output_names, input_feed, run_options)
            except OnnxliteError as e:
                callback(None, user_data, str(e))
                return
            callback(out, user_data, "")

        threading.Thread(target=work, daemon=True).start()

    def run_with_iobinding(self, iobinding: IOBinding, run_options: RunOptions | None = None) -> None:
        iobinding._run(run_options)


def _tname(dt: Any) -> str:
    from .types import elem_name, onnx_type

    try:
        return f"tensor({elem_name(onnx_type(dt))})"
    except TypeError:
        return str(dt)


def _output(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        # Outputs derived from initializers are read-only views; hand the caller its own copy,
        # row-major as onnxruntime's (a kernel may hand on a transposed view).
        if not value.flags.c_contiguous:
            return np.ascontiguousarray(value)
        return value if value.flags.writeable else value.copy()
    if isinstance(value, np.generic):
        return np.asarray(value)
    if isinstance(value, list):
        return [_output(v) for v in value]
    return value
