"""SessionOptions, RunOptions and the option enums, as in onnxruntime."""

from __future__ import annotations

import enum
import os
from typing import Any

from .errors import InvalidArgument


class GraphOptimizationLevel(enum.IntEnum):
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


# Session config entries onnxlite acts on that take "0" or "1" (onnxruntime reads anything else
# as "0", silently; other keys are kept and ignored, as there).
_BOOL_CONFIG_KEYS = frozenset({"session.disable_cpu_ep_fallback"})


def _check_int(name: str, value: Any, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise InvalidArgument(f"{name} must be {bound}, got {value}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, int)):
        raise InvalidArgument(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


class _LogLevels:
    """``log_severity_level`` (0-4, default 2) and ``log_verbosity_level`` (>= 0, default 0),
    checked when set."""

    _log_severity = 2
    _log_verbosity = 0

    @property
    def log_severity_level(self) -> int:
        return self._log_severity

    @log_severity_level.setter
    def log_severity_level(self, value: Any) -> None:
        self._log_severity = _check_int("log_severity_level", value, 0, 4)

    @property
    def log_verbosity_level(self) -> int:
        return self._log_verbosity

    @log_verbosity_level.setter
    def log_verbosity_level(self, value: Any) -> None:
        self._log_verbosity = _check_int("log_verbosity_level", value)


class SessionOptions(_LogLevels):
    """Options of an InferenceSession (onnxruntime.SessionOptions).

    ``intra_op_num_threads`` limits numpy's BLAS threads during runs (0: BLAS decides);
    ``execution_mode = ORT_PARALLEL`` runs independent nodes on ``inter_op_num_threads`` threads
    (0: one per core). ``enable_cpu_mem_arena`` (default on) keeps freed large buffers mapped
    for the next run (:mod:`onnxlite.arena`). Fields stored but not acted on: ``execution_order``,
    ``enable_mem_pattern``, ``enable_mem_reuse`` (intermediates are always
    released after their last use), ``use_deterministic_compute`` (numpy kernels are deterministic),
    ``log_verbosity_level`` and free-dimension overrides by denotation.
    ``graph_optimization_level`` selects the optimizer's passes (onnxlite.optimizer.LEVELS);
    ``optimized_model_filepath`` saves the optimized model.
    """

    def __init__(self) -> None:
        self._level = GraphOptimizationLevel.ORT_ENABLE_ALL
        self._mode = ExecutionMode.ORT_SEQUENTIAL
        self._order = ExecutionOrder.DEFAULT
        self._intra = 0
        self._inter = 0
        self.enable_profiling = False
        self.profile_file_prefix = "onnxruntime_profile_"
        self.optimized_model_filepath = ""
        self.enable_cpu_mem_arena = True
        self.enable_mem_pattern = True
        self.enable_mem_reuse = True
        self.use_deterministic_compute = False
        self.use_per_session_threads = True
        self.logid = ""
        self._config: dict[str, str] = {}
        self._free_dims_by_name: dict[str, int] = {}
        self._free_dims_by_denotation: dict[str, int] = {}
        self._initializers: dict[str, Any] = {}
        self._custom_op_libraries: list[str] = []

    @property
    def graph_optimization_level(self) -> GraphOptimizationLevel:
        return self._level

    @graph_optimization_level.setter
    def graph_optimization_level(self, value: Any) -> None:
        try:
            self._level = GraphOptimizationLevel(int(value))
        except (ValueError, TypeError):
            raise InvalidArgument(
                f"graph_optimization_level must be a GraphOptimizationLevel "
                f"({', '.join(m.name for m in GraphOptimizationLevel)}), got {value!r}"
            ) from None

    @property
    def execution_mode(self) -> ExecutionMode:
        return self._mode

    @execution_mode.setter
    def execution_mode(self, value: Any) -> None:
        try:
            self._mode = ExecutionMode(int(value))
        except (ValueError, TypeError):
            raise InvalidArgument(f"execution_mode must be an ExecutionMode, got {value!r}") from None

    @property
    def execution_order(self) -> ExecutionOrder:
        return self._order

    @execution_order.setter
    def execution_order(self, value: Any) -> None:
        try:
            self._order = ExecutionOrder(int(value))
        except (ValueError, TypeError):
            raise InvalidArgument(f"execution_order must be an ExecutionOrder, got {value!r}") from None

    @property
    def optimized_model_filepath(self) -> str:
        return self._optimized_path

    @optimized_model_filepath.setter
    def optimized_model_filepath(self, value: Any) -> None:
        if not isinstance(value, (str, os.PathLike)):
            raise InvalidArgument(
                f"optimized_model_filepath must be a file path (str), got {type(value).__name__} {value!r}"
            )
        self._optimized_path = os.fspath(value)
        if not isinstance(self._optimized_path, str):
            raise InvalidArgument(f"optimized_model_filepath must be a str path, got bytes {value!r}")

    @property
    def intra_op_num_threads(self) -> int:
        return self._intra

    @intra_op_num_threads.setter
    def intra_op_num_threads(self, value: Any) -> None:
        self._intra = _check_int("intra_op_num_threads", value)

    @property
    def inter_op_num_threads(self) -> int:
        return self._inter

    @inter_op_num_threads.setter
    def inter_op_num_threads(self, value: Any) -> None:
        self._inter = _check_int("inter_op_num_threads", value)

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Set a session configuration entry (e.g. ``session.disable_cpu_ep_fallback``)."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgument("session config entries take a str key and a str value")
        if key in _BOOL_CONFIG_KEYS and value not in ("0", "1"):
            raise InvalidArgument(f"session config entry {key!r} must be '0' or '1', got {value!r}")
        self._config[key] = value

    def get_session_config_entry(self, key: str) -> str:
        try:
            return self._config[key]
        except KeyError:
            raise InvalidArgument(f"session config entry {key!r} is not set") from None

    def add_free_dimension_override_by_name(self, dim_name: str, dim_value: int) -> None:
        """Fix the symbolic dimension ``dim_name`` of the inputs to ``dim_value``."""
        self._free_dims_by_name[str(dim_name)] = _check_int("dim_value", dim_value)

    def add_free_dimension_override_by_denotation(self, dim_denotation: str, dim_value: int) -> None:
        self._free_dims_by_denotation[str(dim_denotation)] = _check_int("dim_value", dim_value)

    def add_initializer(self, name: str, val: Any) -> None:
        """Override the initializer ``name`` with an OrtValue (or numpy array)."""
        self._initializers[str(name)] = val

    def add_external_initializers(self, names: list[str], values: list[Any]) -> None:
        for n, v in zip(names, values):
            self.add_initializer(n, v)

    def register_custom_ops_library(self, library_path: str) -> None:
        """Load custom ops from a Python file that registers them (see onnxlite.custom_ops).

        Native libraries (.so/.dll) cannot be loaded by a pure-Python runtime: NotImplemented.
        """
        from .custom_ops import load_custom_ops_file

        load_custom_ops_file(str(library_path))
        self._custom_op_libraries.append(str(library_path))

    def has_providers(self) -> bool:
        return False


class RunOptions(_LogLevels):
    """Per-run options (onnxruntime.RunOptions); set ``terminate = True`` to cancel runs in flight."""

    def __init__(self) -> None:
        self.logid = ""
        self.terminate = False
        self.only_execute_path_to_fetches = False
        self._config: dict[str, str] = {}

    def add_run_config_entry(self, key: str, value: str) -> None:
        self._config[str(key)] = str(value)

    def get_run_config_entry(self, key: str) -> str:
        try:
            return self._config[key]
        except KeyError:
            raise InvalidArgument(f"run config entry {key!r} is not set") from None
