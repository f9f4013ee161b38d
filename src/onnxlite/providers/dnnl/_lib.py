"""ctypes binding over the oneDNN (3.x) C API, shipped by the ``onednn-cpu-gomp`` wheel.

Only what the provider needs: engine and streams, memory descriptors and objects, primitive
descriptors for the primitives it builds, attributes with post-ops, scales and zero points.
The enum values are those of oneDNN 3.x's ``dnnl_types.h`` / ``dnnl_common_types.h``.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from ctypes import POINTER, c_char_p, c_float, c_int, c_int32, c_int64, c_size_t, c_uint, c_void_p
from typing import Any

import numpy as np

PACKAGE = "onednn-cpu-gomp"
INSTALL_HINT = f"pip install onnxlite[dnnl] (the {PACKAGE} wheel, oneDNN 3.x)"

# dnnl_data_type_t
F32, S32, S8, U8 = 3, 4, 5, 6
DT_OF = {np.dtype(np.float32): F32, np.dtype(np.int32): S32, np.dtype(np.int8): S8, np.dtype(np.uint8): U8}
# dnnl_format_tag_t
TAG_ANY = 1
# dnnl_prop_kind_t
FORWARD_INFERENCE = 96
# dnnl_alg_kind_t
CONV_DIRECT = 0x1
ELT_RELU, ELT_TANH, ELT_ELU, ELT_SQUARE, ELT_ABS, ELT_SQRT, ELT_LINEAR = range(0x20, 0x27)
ELT_SOFT_RELU, ELT_HARDSIGMOID, ELT_LOGISTIC, ELT_EXP, ELT_GELU_TANH, ELT_SWISH = range(0x27, 0x2D)
ELT_LOG, ELT_CLIP, ELT_CLIP_V2, ELT_POW, ELT_GELU_ERF, ELT_ROUND, ELT_MISH = range(0x2D, 0x34)
ELT_HARDSWISH = 0x34
POOL_MAX, POOL_AVG_INCLUDE, POOL_AVG_EXCLUDE = 0x1FF, 0x2FF, 0x3FF
BINARY_ADD, BINARY_MUL, BINARY_DIV, BINARY_SUB = 0x1FFF0, 0x1FFF1, 0x1FFF4, 0x1FFF5
LRN_ACROSS_CHANNELS = 0xAFF
SOFTMAX_ACCURATE = 0x30000
# dnnl_normalization_flags_t
USE_GLOBAL_STATS, USE_SCALE, USE_SHIFT, FUSE_NORM_RELU = 0x1, 0x2, 0x4, 0x8
# dnnl_query_t
Q_IMPL_INFO, Q_STRIDES = 8, 14
Q_SRC_MD, Q_WEIGHTS_MD, Q_DST_MD, Q_SCRATCHPAD_MD, Q_EXEC_ARG_MD = 129, 131, 133, 136, 255
Q_NDIMS, Q_DIMS, Q_DATA_TYPE = 256, 257, 258
Q_PADDED_DIMS, Q_FORMAT_KIND, Q_INNER_NBLKS, Q_INNER_BLKS, Q_INNER_IDXS = 260, 262, 263, 264, 265
# execute argument ids
ARG_SRC, ARG_SRC_1, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 2, 17, 33, 41
ARG_MEAN, ARG_VARIANCE, ARG_SCALE, ARG_SHIFT, ARG_SCRATCHPAD = 49, 50, 51, 52, 80
ARG_ATTR_SCALES, ARG_ATTR_ZERO_POINTS, ARG_POST_OP_BASE = 4096, 8192, 32768
ARG_MULTIPLE_SRC = 1024
SCRATCHPAD_USER = 1
MAX_NDIMS = 12

Dims = c_int64 * MAX_NDIMS


class ExecArg(ctypes.Structure):
    _fields_ = [("arg", c_int), ("memory", c_void_p)]


class DnnlError(RuntimeError):
    pass


def _candidates() -> list[str]:
    found: list[str] = []
    try:
        from importlib import metadata

        for f in metadata.files(PACKAGE) or ():
            if os.path.basename(str(f)).startswith("libdnnl.so"):
                found.append(str(f.locate()))
    except Exception:  # package not installed: try the other places
        pass
    import site
    import sys

    roots = [sys.prefix, *site.getsitepackages()]
    for r in roots:
        found += glob.glob(os.path.join(r, "lib", "libdnnl.so*"))
    found.sort(key=lambda p: (not p.endswith(".so.3"), len(p)))
    found.append("libdnnl.so.3")
    return found


_SIGS: dict[str, tuple[Any, list[Any]]] = {
    "dnnl_engine_create": (c_int, [POINTER(c_void_p), c_int, c_size_t]),
    "dnnl_stream_create": (c_int, [POINTER(c_void_p), c_void_p, c_uint]),
    "dnnl_stream_destroy": (c_int, [c_void_p]),
    "dnnl_memory_desc_create_with_strides": (c_int, [POINTER(c_void_p), c_int, Dims, c_int, Dims]),
    "dnnl_memory_desc_create_with_tag": (c_int, [POINTER(c_void_p), c_int, Dims, c_int, c_int]),
    "dnnl_memory_desc_destroy": (c_int, [c_void_p]),
    "dnnl_memory_desc_clone": (c_int, [POINTER(c_void_p), c_void_p]),
    "dnnl_memory_desc_get_size": (c_size_t, [c_void_p]),
    "dnnl_memory_desc_equal": (c_int, [c_void_p, c_void_p]),
    "dnnl_memory_desc_query": (c_int, [c_void_p, c_int, c_void_p]),
    "dnnl_memory_create": (c_int, [POINTER(c_void_p), c_void_p, c_void_p, c_void_p]),
    "dnnl_memory_destroy": (c_int, [c_void_p]),
    "dnnl_memory_set_data_handle": (c_int, [c_void_p, c_void_p]),
    "dnnl_primitive_desc_query_md": (c_void_p, [c_void_p, c_int, c_int]),
    "dnnl_primitive_desc_query": (c_int, [c_void_p, c_int, c_int, c_void_p]),
    "dnnl_primitive_desc_destroy": (c_int, [c_void_p]),
    "dnnl_primitive_desc_next_impl": (c_int, [c_void_p]),
    "dnnl_primitive_create": (c_int, [POINTER(c_void_p), c_void_p]),
    "dnnl_primitive_destroy": (c_int, [c_void_p]),
    "dnnl_primitive_execute": (c_int, [c_void_p, c_void_p, c_int, POINTER(ExecArg)]),
    "dnnl_primitive_attr_create": (c_int, [POINTER(c_void_p)]),
    "dnnl_primitive_attr_destroy": (c_int, [c_void_p]),
    "dnnl_primitive_attr_set_post_ops": (c_int, [c_void_p, c_void_p]),
    "dnnl_primitive_attr_set_scratchpad_mode": (c_int, [c_void_p, c_int]),
    "dnnl_primitive_attr_set_scales_mask": (c_int, [c_void_p, c_int, c_int]),
    "dnnl_primitive_attr_set_zero_points_mask": (c_int, [c_void_p, c_int, c_int]),
    "dnnl_post_ops_create": (c_int, [POINTER(c_void_p)]),
    "dnnl_post_ops_destroy": (c_int, [c_void_p]),
    "dnnl_post_ops_append_eltwise": (c_int, [c_void_p, c_int, c_float, c_float]),
    "dnnl_post_ops_append_sum": (c_int, [c_void_p, c_float, c_int32, c_int]),
    "dnnl_post_ops_append_binary": (c_int, [c_void_p, c_int, c_void_p]),
    "dnnl_convolution_forward_primitive_desc_create": (
        c_int,
        [
            POINTER(c_void_p),
            c_void_p,
            c_int,
            c_int,
            c_void_p,
            c_void_p,
            c_void_p,
            c_void_p,
            Dims,
            Dims,
            Dims,
            Dims,
            c_void_p,
        ],
    ),
    "dnnl_matmul_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p],
    ),
    "dnnl_shuffle_forward_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_int, c_void_p, c_void_p, c_int, c_int64, c_void_p],
    ),
    "dnnl_eltwise_forward_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_int, c_int, c_void_p, c_void_p, c_float, c_float, c_void_p],
    ),
    "dnnl_pooling_forward_primitive_desc_create": (
        c_int,
        [
            POINTER(c_void_p),
            c_void_p,
            c_int,
            c_int,
            c_void_p,
            c_void_p,
            Dims,
            Dims,
            Dims,
            Dims,
            Dims,
            c_void_p,
        ],
    ),
    "dnnl_softmax_forward_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_int, c_int, c_void_p, c_void_p, c_int, c_void_p],
    ),
    "dnnl_batch_normalization_forward_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_int, c_void_p, c_void_p, c_float, c_uint, c_void_p],
    ),
    "dnnl_layer_normalization_forward_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_int, c_void_p, c_void_p, c_void_p, c_float, c_uint, c_void_p],
    ),
    "dnnl_lrn_forward_primitive_desc_create": (
        c_int,
        [
            POINTER(c_void_p),
            c_void_p,
            c_int,
            c_int,
            c_void_p,
            c_void_p,
            c_int64,
            c_float,
            c_float,
            c_float,
            c_void_p,
        ],
    ),
    "dnnl_binary_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_int, c_void_p, c_void_p, c_void_p, c_void_p],
    ),
    "dnnl_concat_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_void_p, c_int, c_int, POINTER(c_void_p), c_void_p],
    ),
    "dnnl_reorder_primitive_desc_create": (
        c_int,
        [POINTER(c_void_p), c_void_p, c_void_p, c_void_p, c_void_p, c_void_p],
    ),
    "dnnl_status2str": (c_char_p, [c_int]),
}


_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


# About 0.6 ms of spinning (libgomp's unit is one pause-loop iteration, 50-60 ns here): longer
# than the Python between two primitives of a run, which at 2000 (0.07 ms) often outlasted the
# spin, so the threads slept and paid a wake-up per primitive (SqueezeNet 4.3 -> 3.4 ms,
# DenseNet-121 38 -> 30 ms, one process alone); with a busy process on the other core, runs
# took as long at either setting (the thread policy runs them on one thread then).
SPIN_COUNT = "10000"


def _open_short_spin(path: str) -> ctypes.CDLL:
    """Open libdnnl so that the libgomp it loads spins only briefly before idle threads sleep.

    libgomp reads its wait policy once, when it is loaded. Its default spins idle threads for
    milliseconds; where other thread pools (numpy's OpenBLAS, onnxruntime, other processes)
    compete for the cores, a spinning or preempted OpenMP thread stalls every barrier of
    oneDNN's static work split: runs became 5 to 30 times slower. Sleeping at once (PASSIVE)
    costs a wake-up per parallel region instead, which on this kind of virtual machine made a
    SqueezeNet run 6.0 ms instead of 4.3 ms. A short spin (SPIN_COUNT) covers the gap between
    two primitives of a run and sleeps soon after; :class:`onnxlite.threads.ThreadPolicy`
    switches the runs to one thread when the cores are contended. A setting of the user's
    (either variable) or a libgomp loaded before is left alone, and the variable is only set
    for the time of the load.
    """
    if any(v in os.environ for v in _WAIT_VARS):
        return ctypes.CDLL(path)
    try:
        ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD)
        return ctypes.CDLL(path)  # already initialised: too late to choose
    except OSError:
        pass
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        return ctypes.CDLL(path)
    finally:
        del os.environ["GOMP_SPINCOUNT"]


class _Lib:
    """The loaded library: C functions as attributes, the CPU engine, per-thread streams."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.dll = _open_short_spin(path)
        for name, (res, args) in _SIGS.items():
            fn = getattr(self.dll, name)
            fn.restype = res
            fn.argtypes = args
            setattr(self, name[5:], fn)
        eng = c_void_p()
        self.check(self.engine_create(ctypes.byref(eng), 1, 0), "engine_create")  # dnnl_cpu
        self.engine = eng
        self._local = threading.local()
        self.threads = 0  # 0: OpenMP's default
        self.forked = False  # a child forked after this process used OpenMP threads
        self.team_used = False  # a primitive was made or run for several threads
        self._omp_set: Any = None
        self._omp_pause: Any = None
        self.default_threads = 1
        try:
            gomp = ctypes.CDLL("libgomp.so.1")
            self._omp_set = gomp.omp_set_num_threads
            self._omp_set.argtypes = [c_int]
            self.default_threads = max(1, int(gomp.omp_get_max_threads()))
            self._omp_pause = getattr(gomp, "omp_pause_resource_all", None)  # OpenMP 5.0
        except (OSError, AttributeError):
            self._omp_set = None

    def __getattr__(self, name: str) -> Any:
        # The C functions are set as attributes in __init__; this only types them for mypy.
        raise AttributeError(name)

    def check(self, status: int, what: str) -> None:
        if status != 0:
            msg = self.status2str(status)
            raise DnnlError(f"oneDNN {what} failed: {msg.decode() if msg else status}")

    def stream(self) -> c_void_p:
        """This thread's stream."""
        s = getattr(self._local, "stream", None)
        if s is None:
            s = c_void_p()
            self.check(self.stream_create(ctypes.byref(s), self.engine, 1), "stream_create")
            self._local.stream = s
        return s

    def free_thread_team(self) -> None:
        """End this thread's OpenMP worker threads (the next parallel region starts new ones)."""
        if self._omp_pause is not None and not self.forked:
            self._omp_pause(1)  # omp_pause_soft: the thread-count setting stays

    def after_fork(self) -> None:
        """In a child forked from a process that used this library: one OpenMP thread from now.

        libgomp does not survive fork: the child inherits the parent's thread team as data, but
        not its threads, and a parallel region of more than one thread (or ending the team)
        waits for them forever. Primitives made for one thread never open one.
        """
        if not self.team_used:
            return  # no team to lose: OpenMP starts its threads at the first parallel region
        self.forked = True
        self.threads = self.default_threads = 1
        self._local = threading.local()  # this thread's thread-count setting is set afresh

    def use_threads(self, n: int) -> None:
        """OpenMP threads for this thread's next primitive creation or execution: ``n``, or the
        provider's ``num_threads`` (else OpenMP's default) when ``n`` is 0."""
        if self._omp_set is None:
            return
        want = n or self.threads or self.default_threads
        loc = self._local
        if want > 1:
            self.team_used = True
        if getattr(loc, "threads", 0) != want:
            self._omp_set(want)
            loc.threads = want


_lock = threading.Lock()
_state: dict[str, Any] = {}


def load() -> _Lib:
    """The library, loaded once; raises DnnlError naming the package when it cannot load."""
    lib = _state.get("lib")
    if lib is not None:
        return lib
    with _lock:
        if "lib" in _state:
            return _state["lib"]
        errors = []
        for p in _candidates():
            try:
                _state["lib"] = _Lib(p)
                return _state["lib"]
            except (OSError, AttributeError, DnnlError) as e:
                errors.append(f"{p}: {e}")
        raise DnnlError(
            f"oneDNN (libdnnl.so.3) cannot be loaded; {INSTALL_HINT}. Tried: " + "; ".join(errors[-3:])
        )


def _after_fork_in_child() -> None:
    lib = _state.get("lib")
    if lib is not None:
        lib.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def load_error() -> str | None:
    try:
        load()
    except DnnlError as e:
        return str(e)
    return None


def dims(values: Any) -> Any:
    d = Dims()
    for i, v in enumerate(values):
        d[i] = int(v)
    return d
