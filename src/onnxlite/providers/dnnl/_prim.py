"""Thin objects over oneDNN handles: memory descriptors, primitives, blocked tensors, reorders.

A :class:`Primitive` is created once (per node and input-shape signature) and executed many
times; every execution creates its memory objects over the caller's numpy buffers, so one
primitive may run on several threads at once (the scratchpad is user-managed, one per call).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import threading
from ctypes import byref, c_int, c_int32, c_int64, c_void_p
from typing import Any

import numpy as np

from ...threads import BUILD_END_HOOKS, is_building, short_lived, single_thread_run
from . import _lib as L
from ._lib import DnnlError, load

NP_OF = {L.F32: np.float32, L.S32: np.int32, L.S8: np.int8, L.U8: np.uint8}


def _data_pointer_getter() -> Any:
    """A function giving an ndarray's data address.

    ``a.ctypes.data`` builds a helper object per call (about 1 us, several per primitive
    execution); the address is also the first field after the object header of numpy's array
    struct, read directly in 0.15 us. The offset is checked against ``ctypes.data`` on arrays
    of several kinds, and ``ctypes.data`` stays in use wherever the check fails.
    """
    read = ctypes.c_void_p.from_address
    off = object.__basicsize__  # the object header: numpy's ``data`` field follows it
    probes: list[np.ndarray] = [np.empty(8, np.float32), np.empty((3, 4), np.uint8)[1:, ::2]]
    try:
        if all(read(id(a) + off).value == a.ctypes.data for a in probes):
            return lambda a: read(id(a) + off).value
    except (ValueError, OverflowError):
        pass
    return lambda a: a.ctypes.data


data_ptr = _data_pointer_getter()

# ``recording.rec``: this thread's recorder of primitive executions (see _replay), or absent.
recording = threading.local()


class MD:
    """A memory descriptor; ``key`` identifies its layout (hashable), ``shape`` its dims."""

    __slots__ = ("__weakref__", "_is_plain", "_owner", "dt", "h", "key", "shape")

    def __init__(self, h: c_void_p, owner: Any = None) -> None:
        self.h = h
        self._owner = owner  # keeps a primitive descriptor alive for a queried md
        self.shape, self.dt, self.key = _describe(h)
        self._is_plain = self.key == plain_key(self.shape, self.dt)

    @classmethod
    def plain(cls, shape: tuple[int, ...], dt: int = L.F32, strides: Any = None) -> MD:
        lib = load()
        if strides is None:
            strides = _contiguous(shape)
        h = c_void_p()
        lib.check(
            lib.memory_desc_create_with_strides(byref(h), len(shape), L.dims(shape), dt, L.dims(strides)),
            "memory_desc_create_with_strides",
        )
        return cls(h)

    @classmethod
    def any(cls, shape: tuple[int, ...], dt: int = L.F32) -> MD:
        lib = load()
        h = c_void_p()
        lib.check(
            lib.memory_desc_create_with_tag(byref(h), len(shape), L.dims(shape), dt, L.TAG_ANY),
            "memory_desc_create_with_tag",
        )
        return cls(h)

    @property
    def nbytes(self) -> int:
        return int(load().memory_desc_get_size(self.h))

    def is_plain(self) -> bool:
        return self._is_plain

    def __del__(self) -> None:
        if self._owner is None and self.h:
            with contextlib.suppress(Exception):  # interpreter shutdown
                load().memory_desc_destroy(self.h)


def _contiguous(shape: tuple[int, ...]) -> list[int]:
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * max(int(shape[i + 1]), 1)
    return strides


_ITEMSIZE = {L.F32: 4, L.S32: 4, L.S8: 1, L.U8: 1}


def channels_last_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a dense (N, C, ...) array laid out channels innermost (NHWC)."""
    want = [0] * len(shape)
    want[1], step = 1, shape[1]
    for ax in range(len(shape) - 1, 1, -1):
        want[ax] = step
        step *= shape[ax]
    want[0] = step
    return tuple(want)


def plain_key(shape: tuple[int, ...], dt: int) -> tuple[Any, ...]:
    size = math.prod(shape) * _ITEMSIZE.get(dt, 0)
    return (tuple(int(s) for s in shape), dt, 2, tuple(_contiguous(shape)), (), size)


def _describe(h: c_void_p) -> tuple[tuple[int, ...], int, tuple[Any, ...]]:
    lib = load()
    q = lib.memory_desc_query
    nd = c_int(0)
    q(h, L.Q_NDIMS, byref(nd))
    n = nd.value
    dt = c_int(0)
    q(h, L.Q_DATA_TYPE, byref(dt))
    kind = c_int(0)
    q(h, L.Q_FORMAT_KIND, byref(kind))
    dptr = ctypes.POINTER(c_int64)()
    q(h, L.Q_DIMS, byref(dptr))
    shape = tuple(int(dptr[i]) for i in range(n)) if dptr else ()
    strides: tuple[int, ...] = ()
    blocks: tuple[Any, ...] = ()
    if kind.value == 2:  # dnnl_blocked
        sptr = ctypes.POINTER(c_int64)()
        q(h, L.Q_STRIDES, byref(sptr))
        strides = tuple(int(sptr[i]) for i in range(n)) if sptr else ()
        nb = c_int32(0)
        q(h, L.Q_INNER_NBLKS, byref(nb))
        if nb.value:
            bptr = ctypes.POINTER(c_int64)()
            iptr = ctypes.POINTER(c_int64)()
            q(h, L.Q_INNER_BLKS, byref(bptr))
            q(h, L.Q_INNER_IDXS, byref(iptr))
            blocks = tuple((int(bptr[i]), int(iptr[i])) for i in range(nb.value))
        padded = ctypes.POINTER(c_int64)()
        q(h, L.Q_PADDED_DIMS, byref(padded))
        if padded and blocks:
            blocks += (tuple(int(padded[i]) for i in range(n)),)
    # The size tells apart layouts with extra data (int8 weights' compensation) from plain ones.
    size = int(lib.memory_desc_get_size(h))
    key: tuple[Any, ...] = (shape, dt.value, kind.value, strides, blocks, size)
    if kind.value != 2:
        key += (id(h),)  # opaque layouts: no sharing across descriptors
    return shape, dt.value, key


def query_md(pd: c_void_p, what: int, index: int = 0, owner: Any = None) -> MD | None:
    lib = load()
    h = lib.primitive_desc_query_md(pd, what, index)
    if not h:
        return None
    c = c_void_p()
    lib.check(lib.memory_desc_clone(byref(c), h), "memory_desc_clone")
    return MD(c)


class Attr:
    """Primitive attributes: user scratchpad, post-ops, scales and zero-point masks."""

    def __init__(self) -> None:
        lib = load()
        self.h = c_void_p()
        lib.check(lib.primitive_attr_create(byref(self.h)), "primitive_attr_create")
        lib.check(lib.primitive_attr_set_scratchpad_mode(self.h, L.SCRATCHPAD_USER), "attr")
        self.po = c_void_p()
        self._mds: list[MD] = []
        self.has_sum = False  # a sum post-op: the primitive reads its destination

    def _post_ops(self) -> c_void_p:
        if not self.po:
            load().check(load().post_ops_create(byref(self.po)), "post_ops_create")
        return self.po

    def eltwise(self, alg: int, alpha: float = 0.0, beta: float = 0.0) -> Attr:
        load().check(load().post_ops_append_eltwise(self._post_ops(), alg, alpha, beta), "eltwise")
        return self

    def sum(self, scale: float = 1.0) -> Attr:
        self.has_sum = True
        load().check(load().post_ops_append_sum(self._post_ops(), scale, 0, 0), "post-op sum")
        return self

    def binary(self, alg: int, md: MD) -> Attr:
        self._mds.append(md)
        load().check(load().post_ops_append_binary(self._post_ops(), alg, md.h), "binary")
        return self

    def scales(self, arg: int, mask: int) -> Attr:
        load().check(load().primitive_attr_set_scales_mask(self.h, arg, mask), "scales")
        return self

    def zero_points(self, arg: int, mask: int) -> Attr:
        load().check(load().primitive_attr_set_zero_points_mask(self.h, arg, mask), "zp")
        return self

    def finish(self) -> c_void_p:
        if self.po:
            load().check(load().primitive_attr_set_post_ops(self.h, self.po), "set_post_ops")
        return self.h

    def __del__(self) -> None:
        try:
            lib = load()
            if self.po:
                lib.post_ops_destroy(self.po)
            lib.primitive_attr_destroy(self.h)
        except Exception:  # interpreter shutdown
            pass


# A primitive whose estimated work on one core is under this many microseconds runs on one
# thread: handing half of it to the other OpenMP thread and the barrier cost more than the
# second core gives back. With OpenMP threads that sleep at once, wake-ups made the break-even
# point 200-300 us (a tiny 1x1 convolution took 23 us on one thread and 95 us on two); with the
# short spin (see _lib) it is near 30-50 us (SqueezeNet 5.1 ms at 300, 4.4 ms at 30-50).
SMALL_WORK_US = 50.0
_CORE_FLOPS_PER_US = 60e3  # float32 GEMM-like throughput of one core
_CORE_BYTES_PER_US = 8e3  # memory traffic of one core


def _work_us(pd: c_void_p, what: str) -> float:
    """A rough single-core time of a primitive, from its memory descriptors."""
    mds = [query_md(pd, q) for q in (L.Q_SRC_MD, L.Q_WEIGHTS_MD, L.Q_DST_MD)]
    _, wei, dst = mds
    t = sum(m.nbytes for m in mds if m is not None) / _CORE_BYTES_PER_US
    if wei is not None and dst is not None and ("convolution" in what or "matmul" in what):
        out_ch = dst.shape[1] if "convolution" in what else dst.shape[-1]
        dst_n = float(math.prod(dst.shape))
        per_out = float(math.prod(wei.shape)) / max(out_ch, 1)
        if "matmul" in what and len(wei.shape) > 2:
            per_out /= float(math.prod(wei.shape[:-2]))
        t = max(t, 2.0 * dst_n * per_out / _CORE_FLOPS_PER_US)
    return t


class EmptyOutput(ValueError):
    """A primitive's output would have a zero-length axis (valid ONNX: a window that fits at no
    position); the kernel returns an empty array of that shape, as the numpy kernels do."""

    def __init__(self, shape: Any, dtype: Any) -> None:
        super().__init__(f"empty output of shape {list(shape)}")
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)


def check_output_size(out: Any, shape: Any, dtype: Any, what: str, in_shape: Any) -> None:
    """Raise EmptyOutput for an output axis of length 0, ValueError for a negative one."""
    low = min(out, default=1)
    if low < 0:
        raise ValueError(f"{what} output would have a negative size for input shape {list(in_shape)}")
    if low == 0:
        raise EmptyOutput(shape, dtype)


def empty_on_zero_size(fn: Any) -> Any:
    """Decorate a kernel's call: an EmptyOutput becomes the empty array it describes."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EmptyOutput as e:
            return np.zeros(e.shape, e.dtype)

    return call


class Primitive:
    """A created primitive with its descriptor; ``run`` executes it over numpy buffers.

    ``remake`` creates the descriptor again: a primitive with little work is then made and run
    on one OpenMP thread (``threads``; 0 means the default count).
    """

    def __init__(self, pd: c_void_p, what: str, remake: Any = None, threads: int = 0) -> None:
        lib = load()
        self.what = what
        self.threads = threads
        self.reads_dst = False  # set by create() for a sum post-op
        if remake is not None and lib.default_threads > 1 and _work_us(pd, what) < SMALL_WORK_US:
            lib.use_threads(1)
            try:
                pd2 = remake()
            finally:
                lib.use_threads(0)
            lib.primitive_desc_destroy(pd)
            pd = pd2
            self.threads = 1
        if lib.forked:
            self.threads = 1  # made after fork: one thread (see _lib.after_fork)
        self.pd: c_void_p | None = pd
        self._remake = remake if self.threads != 1 else None
        self._single: Primitive | bool | None = None  # one-thread twin: None untried, False none
        self.h = c_void_p()
        try:
            lib.use_threads(self.threads)
            lib.check(lib.primitive_create(byref(self.h), pd), f"{what} primitive_create")
        except DnnlError:
            lib.primitive_desc_destroy(pd)
            self.pd = None
            raise
        self._tls = threading.local()
        sp = lib.primitive_desc_query_md(pd, L.Q_SCRATCHPAD_MD, 0)
        self.scratch_md = query_md(pd, L.Q_SCRATCHPAD_MD) if sp else None
        self.scratch = self.scratch_md.nbytes if self.scratch_md is not None else 0

    @property
    def impl(self) -> str:
        """The implementation oneDNN chose (as ONEDNN_VERBOSE names it), for diagnostics."""
        return impl_name(self.pd) if self.pd is not None else ""

    def md(self, what: int, index: int = 0) -> MD:
        m = query_md(self.pd, what, index) if self.pd is not None else None
        if m is None:
            raise DnnlError(f"primitive has no memory descriptor for query {what}")
        return m

    def run(self, args: list[tuple[int, MD, Any]]) -> None:
        """Execute over ``args`` (argument id, layout, numpy buffer). The memory objects of the
        last call on this thread are reused (only their data pointers change) when the
        arguments have the same layouts, which they do on every run of a plan."""
        if self._remake is not None and (single_thread_run() or not _owns_team()):
            twin = self._single_twin()
            if twin is not None:
                twin.run(args)
                return
            if load().forked:
                raise DnnlError(
                    f"oneDNN {self.what} primitive was made for several OpenMP threads before this "
                    "process was forked, and OpenMP's threads do not survive fork: create the "
                    "session in the child process"
                )
        rec = getattr(recording, "rec", None)
        if rec is not None:
            rec.add(self, args)
        lib = load()
        b = getattr(self._tls, "b", None)
        if b is None or not b.same(args):
            b = self._tls.b = _Binding(self, args)
        ptr, ptrs = data_ptr, b.ptrs
        for i, (_, _, buf) in enumerate(args):
            p = ptr(buf)
            if p != ptrs[i]:
                lib.memory_set_data_handle(b.mems[i], p)
                ptrs[i] = p
        lib.use_threads(self.threads)
        lib.check(lib.primitive_execute(self.h, lib.stream(), b.n, b.ea), "primitive_execute")

    def _single_twin(self) -> Primitive | None:
        """The same primitive made for one OpenMP thread (a primitive splits its work for the
        thread count it was made with), if it takes every argument in the same layout."""
        twin = self._single
        if twin is None:
            with _twin_lock:
                if self._single is None:
                    self._single = self._make_twin()
            twin = self._single
        return twin if isinstance(twin, Primitive) else None

    def _make_twin(self) -> Primitive | bool:
        lib = load()
        remake = self._remake
        assert remake is not None
        lib.use_threads(1)
        try:
            twin = Primitive(remake(), self.what, threads=1)
            twin.reads_dst = self.reads_dst
        except DnnlError:
            return False
        finally:
            lib.use_threads(0)
        eq, q = lib.memory_desc_equal, lib.primitive_desc_query_md
        for arg in _LAYOUT_ARGS:
            a, b = q(self.pd, L.Q_EXEC_ARG_MD, arg), q(twin.pd, L.Q_EXEC_ARG_MD, arg)
            if bool(a) != bool(b) or (a and not eq(a, b)):
                return False
        return twin

    def __del__(self) -> None:
        try:
            lib = load()
            if self.h:
                lib.primitive_destroy(self.h)
            if self.pd:
                lib.primitive_desc_destroy(self.pd)
        except Exception:  # interpreter shutdown
            pass


_twin_lock = threading.Lock()

# One OpenMP team in the process. libgomp keeps the workers of every thread that has run a
# parallel region on several threads for as long as that thread lives, and once all those
# workers outnumber the cores, the idle ones of every team spin only ~100 times before sleeping:
# each primitive then pays a wake-up (SqueezeNet on the main thread 3.5 -> 5.9 ms, for good, once
# two threads of an application's pool had run the session). So one thread at a time, the first
# to run a primitive, until it ends, runs primitives on several threads; the others run their
# one-thread twins (concurrent runs from several threads share the cores that way anyway).
# A thread that ends after its run (run_async's) has its team freed with it: it may use one. A
# thread that claimed the team while building a session (weight reorders) frees it at the end of
# the build, for whichever thread runs first (a server builds on one thread, runs on others).
_team_owner: list[threading.Thread | None] = [None]
_team_lock = threading.Lock()
_claimed = threading.local()


def _owns_team() -> bool:
    """Whether this thread's primitives may use several OpenMP threads (see _team_owner)."""
    if load().forked:
        return False  # the parent's primitives run as one-thread twins (see _lib.after_fork)
    me = threading.current_thread()
    owner = _team_owner[0]
    if owner is me or short_lived():
        return True
    if owner is not None and owner.is_alive():
        return False
    with _team_lock:
        owner = _team_owner[0]
        if owner is None or not owner.is_alive():
            _team_owner[0] = owner = me
            _claimed.in_build = is_building()
        return owner is me


def _free_build_team() -> None:
    """At the end of a session build: a team this thread claimed during it is freed."""
    if not getattr(_claimed, "in_build", False):
        return
    _claimed.in_build = False
    with _team_lock:
        if _team_owner[0] is threading.current_thread():
            load().free_thread_team()
            _team_owner[0] = None


BUILD_END_HOOKS.append(_free_build_team)


# Arguments whose layout a one-thread twin must share with its primitive (the scratchpad is
# the twin's own).
_LAYOUT_ARGS = (
    L.ARG_SRC,
    L.ARG_SRC_1,
    L.ARG_WEIGHTS,
    L.ARG_BIAS,
    L.ARG_DST,
    L.ARG_MEAN,
    L.ARG_VARIANCE,
    L.ARG_SCALE,
    L.ARG_SHIFT,
    *(L.ARG_MULTIPLE_SRC + i for i in range(64)),
)


class _Binding:
    """A primitive's execute arguments on one thread: memory objects and a scratchpad."""

    def __init__(self, prim: Primitive, args: list[tuple[int, MD, Any]]) -> None:
        lib = load()
        self.keys = [(arg, md) for arg, md, _ in args]
        self.n = len(args) + (1 if prim.scratch else 0)
        self.ea = (L.ExecArg * self.n)()
        self.mems: list[c_void_p] = []
        self.scratch: np.ndarray | None = None
        # the data address each memory object holds: set again only when it changes (weights
        # never do, and a run's buffers mostly come back at the same addresses)
        self.ptrs: list[int] = [data_ptr(buf) for _, _, buf in args]
        for i, (arg, md, _) in enumerate(args):
            self.ea[i].arg, self.ea[i].memory = arg, self._memory(md, self.ptrs[i])
        if prim.scratch_md is not None and prim.scratch:
            self.scratch = np.empty(prim.scratch, np.uint8)
            m = c_void_p()
            h = c_void_p(self.scratch.ctypes.data)
            lib.check(lib.memory_create(byref(m), prim.scratch_md.h, lib.engine, h), "memory_create")
            self._scratch_mem = m
            self.ea[self.n - 1].arg, self.ea[self.n - 1].memory = L.ARG_SCRATCHPAD, m

    def _memory(self, md: MD, ptr: int) -> c_void_p:
        lib = load()
        m = c_void_p()
        lib.check(lib.memory_create(byref(m), md.h, lib.engine, c_void_p(ptr)), "memory_create")
        self.mems.append(m)
        return m

    def same(self, args: list[tuple[int, MD, Any]]) -> bool:
        keys = self.keys
        if len(keys) != len(args):
            return False
        for (karg, kmd), (arg, md, _) in zip(keys, args):  # noqa: SIM110  # a loop: runs per execution
            if karg != arg or kmd is not md:
                return False
        return True

    def __del__(self) -> None:
        try:
            lib = load()
            for m in self.mems:
                lib.memory_destroy(m)
            if self.scratch is not None:
                lib.memory_destroy(self._scratch_mem)
        except Exception:  # interpreter shutdown
            pass


# Primitives a kernel keeps, one per input layout: a model fed ever new shapes (sequence lengths,
# image sizes) would otherwise keep a primitive, its bindings and its scratchpad for every shape
# it ever saw. Beyond this many the oldest is dropped (and made again if its shape comes back).
MAX_PRIMITIVES = 32


class PrimitiveCache(dict[Any, Any]):
    """A dict of per-layout entries holding the newest ``limit`` (MAX_PRIMITIVES by default);
    inserts are made under a lock."""

    def __init__(self, limit: int = 0) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self and len(self) >= (self.limit or MAX_PRIMITIVES):
            # (another thread may have evicted it first)
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del self[next(iter(self))]
        super().__setitem__(key, value)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


# Implementations of oneDNN 3.2 known to compute wrongly, by primitive: the next one is taken.
# The AMX 1x1 integer convolution writes past the end of its destination for some output sizes
# (on 2 threads with 64 or more input channels: 27 to 48 pixels in steps of 3, a third more
# rows), which corrupted the heap or, in a segment's shared buffer, the next tensor.
FAULTY_IMPLS = {"convolution_forward_primitive_desc_create": ("jit_1x1:avx512_core_amx",)}


def impl_name(pd: c_void_p) -> str:
    """The implementation a primitive descriptor holds (as ONEDNN_VERBOSE names it)."""
    s = ctypes.c_char_p()
    load().primitive_desc_query(pd, L.Q_IMPL_INFO, 0, byref(s))
    return (s.value or b"").decode()


def _skip_faulty(pd: c_void_p, fn_name: str) -> c_void_p:
    """``pd`` moved past the implementations FAULTY_IMPLS lists for its primitive."""
    faulty = FAULTY_IMPLS.get(fn_name)
    if not faulty:
        return pd
    lib = load()
    while impl_name(pd).startswith(faulty):
        if lib.primitive_desc_next_impl(pd) != 0:  # the last one reached
            lib.primitive_desc_destroy(pd)
            raise DnnlError(f"{fn_name}: no oneDNN implementation other than {list(faulty)}")
    return pd


def create(fn_name: str, *args: Any) -> Primitive:
    """Create ``dnnl_<fn_name>`` primitive descriptor (engine first) and its primitive."""
    lib = load()
    fn = getattr(lib, fn_name)
    if any(isinstance(a, c_void_p) for a in args):
        # a bare handle outlives nothing: the MD owning it may be freed before the primitive
        # makes its descriptor again (its one-thread twin), which would then read freed memory
        raise TypeError(f"{fn_name}: pass memory descriptors as MD objects, not bare handles")
    cargs = [a.finish() if isinstance(a, Attr) else a.h if isinstance(a, MD) else a for a in args]

    # ``_owners`` keeps the Attr and MD objects that own the handles in ``cargs`` alive with
    # ``make``: the primitive may make its descriptor again (its one-thread twin).
    def make(_owners: tuple[Any, ...] = args) -> c_void_p:
        p = c_void_p()
        lib.check(fn(byref(p), lib.engine, *cargs), fn_name)
        return _skip_faulty(p, fn_name)

    lib.use_threads(0)
    prim = Primitive(make(), fn_name, remake=make)
    prim.reads_dst = any(isinstance(a, Attr) and a.has_sum for a in args)
    return prim


class DnnlTensor:
    """An activation kept in a oneDNN layout between two oneDNN nodes.

    It behaves as an array where the rest of onnxlite looks (``shape``, ``dtype``, ``ndim``,
    ``__array__`` reorders to a plain numpy array), so a value that escapes is still right.
    """

    __slots__ = ("buf", "md")

    def __init__(self, buf: np.ndarray, md: MD) -> None:
        self.buf = buf
        self.md = md

    @property
    def shape(self) -> tuple[int, ...]:
        return self.md.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(NP_OF[self.md.dt])

    @property
    def ndim(self) -> int:
        return len(self.md.shape)

    @property
    def size(self) -> int:
        return math.prod(self.md.shape)

    def numpy(self) -> np.ndarray:
        return to_plain(self)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = to_plain(self)
        return a if dtype is None else a.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"DnnlTensor(shape={self.shape}, dtype={self.dtype})"


# Reorders by the two layouts' keys; a key does not capture every detail of a layout (int8
# weights' compensation kind), so each entry is confirmed with dnnl_memory_desc_equal.
# Reorders and plain layouts are made per shape too: the newest few thousand are kept.
_reorders: dict[tuple[Any, Any], list[tuple[MD, MD, Primitive]]] = PrimitiveCache(1024)
_reorder_lock = threading.Lock()


def _find(entries: list[tuple[MD, MD, Primitive]], src_md: MD, dst_md: MD) -> Primitive | None:
    eq = load().memory_desc_equal
    for s, d, p in entries:
        if (s is src_md or eq(s.h, src_md.h)) and (d is dst_md or eq(d.h, dst_md.h)):
            return p
    return None


def reorder(src_md: MD, src: np.ndarray, dst_md: MD, dst: np.ndarray) -> None:
    k = (src_md.key, dst_md.key)
    p = _find(_reorders.get(k, []), src_md, dst_md)
    if p is None:
        with _reorder_lock:
            entries = _reorders.setdefault(k, [])
            p = _find(entries, src_md, dst_md)
            if p is None:
                p = make_reorder(src_md, dst_md, Attr())
                entries.append((src_md, dst_md, p))
    p.run([(L.ARG_SRC, src_md, src), (L.ARG_DST, dst_md, dst)])


def make_reorder(src_md: MD, dst_md: MD, attr: Attr) -> Primitive:
    lib = load()

    def make() -> c_void_p:
        pd = c_void_p()
        lib.check(
            lib.reorder_primitive_desc_create(
                byref(pd), src_md.h, lib.engine, dst_md.h, lib.engine, attr.finish()
            ),
            "reorder_primitive_desc_create",
        )
        return pd

    lib.use_threads(0)
    return Primitive(make(), "reorder", remake=make)


def make_concat(mds: list[MD], axis: int, dst_md: MD) -> Primitive:
    """A concat primitive of tensors laid out as ``mds`` along ``axis`` into ``dst_md`` (a
    layout, or ``MD.any`` for oneDNN's choice)."""
    lib = load()
    arr = (c_void_p * len(mds))(*[m.h.value for m in mds])
    attr = Attr()

    # ``_owners`` keeps the descriptors behind ``arr`` alive for a one-thread twin's remake
    def make(_owners: tuple[Any, ...] = (mds, dst_md, attr)) -> c_void_p:
        pd = c_void_p()
        lib.check(
            lib.concat_primitive_desc_create(
                byref(pd), lib.engine, dst_md.h, len(mds), axis, arr, attr.finish()
            ),
            "concat_primitive_desc_create",
        )
        return pd

    lib.use_threads(0)
    return Primitive(make(), "concat", remake=make)


_plain_mds: dict[tuple[Any, ...], MD] = PrimitiveCache(4096)


def plain_md(shape: tuple[int, ...], dt: int = L.F32) -> MD:
    k = (shape, dt)
    m = _plain_mds.get(k)
    if m is None:
        m = _plain_mds[k] = MD.plain(shape, dt)
    return m


def to_plain(t: DnnlTensor) -> np.ndarray:
    out = np.empty(t.shape, NP_OF[t.md.dt])
    if out.size:
        reorder(t.md, t.buf, plain_md(t.shape, t.md.dt), out)
    return out


def same_array(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are one array: the same object, or views with the same data and layout
    (the plan hands kernels a read-only view of each initializer, not the object itself)."""
    if a is b:
        return True
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    return a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype and data_ptr(a) == data_ptr(b)


def source(x: Any) -> tuple[MD, Any]:
    """The memory descriptor and buffer of a kernel input (numpy array or DnnlTensor)."""
    if isinstance(x, DnnlTensor):
        return x.md, x.buf
    x = np.ascontiguousarray(x)
    return plain_md(x.shape, L.DT_OF[x.dtype]), x


def into(md: MD, want: MD, buf: Any) -> Any:
    """``buf`` (laid out as ``md``) in the layout ``want``: itself when equal, else reordered."""
    if md.key == want.key:
        return buf
    out = np.empty(want.nbytes, np.uint8)
    reorder(md, buf, want, out)
    return out


def empty(md: MD) -> np.ndarray:
    if md.is_plain():
        return np.empty(md.shape, NP_OF[md.dt])
    return np.empty(max(md.nbytes, 1), np.uint8)


def result(md: MD, buf: np.ndarray, keep_blocked: bool) -> Any:
    """A kernel's output: the plain array, or a DnnlTensor when the consumers are oneDNN's."""
    if md.is_plain():
        return buf.reshape(md.shape) if buf.shape != md.shape else buf
    t = DnnlTensor(buf, md)
    return t if keep_blocked else to_plain(t)
