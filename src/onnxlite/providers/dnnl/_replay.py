"""Segments: a stretch of oneDNN plan steps run as the primitive executions it recorded.

Run node by node, each oneDNN step costs Python work around its primitive: finding it for the
input layout, allocating and wrapping the output, binding memory objects (13-30 us a node in
the light models here, against 1-2 us for the call into oneDNN; a tenth to a quarter of a run).
What a stretch of these kernels does depends only on its inputs' shapes and layouts, never on
their values. So once the stretch has run the same primitive calls twice for one input
signature, with every buffer accounted for, later runs with that signature replay the calls:
memory objects made once, over an arena planned from the intermediates' lifetimes; only the
stretch's inputs and the outputs it hands on (fresh arrays every run) are bound again.

Accounting for a buffer: a call's argument lies in one of the stretch's inputs, in a buffer an
earlier call of the run wrote first (an intermediate), or in one held across runs (constants,
packed weights: the same object in both recordings). Anything else (a buffer numpy filled
during the run) or a difference between the two recordings leaves that signature to run step
by step. Kernels take part only when marked safe (see ``DnnlExecutionProvider.segmentable``).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from ctypes import byref, c_void_p
from typing import Any

import numpy as np

from ...plan import NONE_SLOT, SINK_SLOT, SegmentStepError, store
from ...threads import single_thread_run
from . import _lib as L
from ._lib import DnnlError
from ._prim import MD, DnnlTensor, Primitive, _owns_team, data_ptr, recording

# Execute arguments a primitive writes (destinations and workspace); it reads the others.
_WRITES = frozenset({L.ARG_DST, L.ARG_DST + 1, L.ARG_DST + 2, 64})
_ALIGN = 64
# Input signatures a segment keeps state for (a replay, a recording, a failure), the most
# recently used: each replay holds an arena as large as the intermediates alive at once.
MAX_SIGNATURES = 4
_FAILED = "failed"
try:
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # numpy < 2
    _byte_bounds = getattr(np, "byte_bounds")  # noqa: B009  # absent from numpy 2's stubs


def replay_safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn`` as a kernel whose work depends on its inputs' shapes and layouts only and
    whose every computed buffer comes from oneDNN primitives: it may be part of a segment."""
    setattr(fn, "replay_safe", True)  # noqa: B010  # functions take attributes; mypy knows no field
    return fn


def is_replay_safe(fn: Any) -> bool:
    return bool(getattr(fn, "replay_safe", False))


def _buffer(v: Any) -> Any:
    return v.buf if type(v) is DnnlTensor else v


def _signature(values: list[Any]) -> tuple[Any, ...] | None:
    """What the recorded calls depend on in the inputs (None: an input a replay cannot bind)."""
    sig: list[Any] = []
    for v in values:
        t = type(v)
        if t is DnnlTensor:
            b = v.buf
            sig.append((v.md.key, b.nbytes, b.flags.writeable))
        elif t is np.ndarray:
            if not v.flags.c_contiguous:
                return None
            sig.append((v.shape, v.dtype, v.flags.writeable))
        elif v is None:
            sig.append(None)
        else:
            return None
    return tuple(sig)


class _Root:
    """A buffer first seen in a recorded call: an intermediate (``fresh``, written first) or
    one held across runs (read first)."""

    __slots__ = ("__weakref__", "alive", "dtype", "first", "fresh", "last", "nbytes", "owner", "ptr", "shape")

    def __init__(self, owner: np.ndarray, fresh: bool, call: int) -> None:
        self.ptr, self.nbytes = data_ptr(owner), owner.nbytes
        self.fresh = fresh
        self.owner: np.ndarray | None = None if fresh else owner  # held: kept alive
        self.shape, self.dtype = owner.shape, owner.dtype
        self.alive = True
        self.first = self.last = call


def _dead(root: _Root) -> None:
    root.alive = False


class _Recorder:
    """The primitive calls of one run of a segment, each argument placed (see module doc)."""

    def __init__(self, inputs: list[Any]) -> None:
        self.inputs = inputs  # kept alive while recording: no address is reused meanwhile
        self.ranges: list[tuple[int, int] | None] = []
        for v in inputs:
            b = _buffer(v)
            ok = isinstance(b, np.ndarray) and b.flags.c_contiguous
            self.ranges.append((data_ptr(b), b.nbytes) if ok else None)
        self.roots: list[_Root] = []
        # (primitive, step, [(arg, md, place)]); place: ("in", input, offset) | ("root", root, offset)
        self.calls: list[tuple[Primitive, int, list[tuple[int, MD, tuple[str, int, int]]]]] = []
        self.outputs: list[tuple[Any, ...]] = []  # an ("object", value) entry keeps it alive
        self.step = 0
        self.failed: str | None = None

    def add(self, prim: Primitive, args: list[tuple[int, MD, Any]]) -> None:
        if self.failed:
            return
        n = len(self.calls)
        placed = []
        for arg, md, buf in args:
            reads = arg not in _WRITES or (prim.reads_dst and arg == L.ARG_DST)
            where = self._place(buf, n, reads)
            if where is None:
                return
            placed.append((arg, md, where))
        self.calls.append((prim, self.step, placed))

    def _fail(self, why: str) -> None:
        self.failed = self.failed or why

    def _find(self, buf: np.ndarray, call: int) -> tuple[str, int, int] | None:
        lo, hi = _byte_bounds(buf)
        for k, r in enumerate(self.ranges):
            if r is not None and r[0] <= lo and hi <= r[0] + r[1]:
                return ("in", k, data_ptr(buf) - r[0])
        for i, root in enumerate(self.roots):
            if root.alive and root.ptr <= lo and hi <= root.ptr + root.nbytes:
                root.last = max(root.last, call)
                return ("root", i, data_ptr(buf) - root.ptr)
        return None

    def _place(self, buf: Any, call: int, reads: bool) -> tuple[str, int, int] | None:
        if type(buf) is not np.ndarray or not buf.flags.c_contiguous:
            self._fail("an argument that is not a contiguous array")
            return None
        found = self._find(buf, call)
        if found is not None:
            return found
        owner = buf
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        op, on = data_ptr(owner), owner.nbytes
        if (
            not owner.flags.c_contiguous
            or any((r is not None and r[0] < op + on and op < r[0] + r[1]) for r in self.ranges)
            or any(r.alive and r.ptr < op + on and op < r.ptr + r.nbytes for r in self.roots)
        ):
            self._fail("an argument overlapping another buffer in part")
            return None
        root = _Root(owner, not reads, call)
        if root.fresh:
            weakref.finalize(owner, _dead, root)
        self.roots.append(root)
        return ("root", len(self.roots) - 1, data_ptr(buf) - op)

    def finish(self, vals: list[Any], slots: Sequence[int]) -> None:
        """Place the segment's outputs (in ``vals``): its inputs, or views of intermediates."""
        for s in slots:
            v = vals[s]
            if v is None:
                self.outputs.append(("none",))
                continue
            same = [k for k, x in enumerate(self.inputs) if x is v]
            if same:
                self.outputs.append(("same", same[0]))
                continue
            buf = _buffer(v)
            if type(buf) is not np.ndarray or not (type(v) is DnnlTensor or type(v) is np.ndarray):
                self._fail("an output that is not an array")
                return
            where = self._find(buf, len(self.calls))
            if where is None or (where[0] == "root" and not self.roots[where[1]].fresh):
                # a value no recorded call wrote: a constant (a dequantized initializer), which
                # must then be the same object in both recordings (see structure)
                self.outputs.append(("object", v))
                continue
            md = v.md if type(v) is DnnlTensor else None
            self.outputs.append(("value", where, md, buf.shape, buf.dtype, buf.strides))

    def structure(self) -> tuple[Any, ...]:
        """What two recordings must share (objects by identity: the recorder keeps them)."""
        calls = tuple(
            (id(p), step, tuple((arg, md.key, where) for arg, md, where in args))
            for p, step, args in self.calls
        )
        roots = tuple((r.fresh, r.nbytes, id(r.owner)) for r in self.roots)
        outs = tuple(_comparable(o) for o in self.outputs)
        return calls, roots, outs


def _comparable(out: tuple[Any, ...]) -> tuple[Any, ...]:
    """An output's place in a form two recordings compare (objects by identity)."""
    if out[0] == "object":
        return ("object", id(out[1]))
    if out[0] == "value":
        return (*out[:2], None if out[2] is None else out[2].key, *out[3:])
    return out


def _pack(items: list[tuple[int, int, int]]) -> tuple[list[int], int]:
    """Offsets for buffers (first call, last call, bytes) such that buffers alive at the same
    time do not overlap, and the arena size: the largest first, each at the lowest offset free
    for its lifetime."""
    order = sorted(range(len(items)), key=lambda i: -items[i][2])
    offsets = [0] * len(items)
    placed: list[tuple[int, int, int, int]] = []  # (first, last, offset, end)
    total = 0
    for i in order:
        first, last, size = items[i]
        size = -(-size // _ALIGN) * _ALIGN
        busy = sorted((o, e) for f, la, o, e in placed if f <= last and first <= la)
        off = 0
        for o, e in busy:
            if off + size <= o:
                break
            off = max(off, e)
        offsets[i] = off
        placed.append((first, last, off, off + size))
        total = max(total, off + size)
    return offsets, total


def _aligned(nbytes: int) -> tuple[np.ndarray, int]:
    buf = np.empty(nbytes + _ALIGN, np.uint8)
    return buf, -data_ptr(buf) % _ALIGN


class _Replay:
    """Memory objects for every recorded call, bound once; inputs and outputs bound per run."""

    def __init__(self, rec: _Recorder, indices: Sequence[int]) -> None:
        self.lock = threading.Lock()
        self.indices = indices
        roots = rec.roots
        escaping = sorted({o[1][1] for o in rec.outputs if o[0] == "value" and o[1][0] == "root"})
        inner = [i for i, r in enumerate(roots) if r.fresh and i not in escaping]
        offsets, total = _pack([(roots[i].first, roots[i].last, roots[i].nbytes) for i in inner])
        self.arena, shift = _aligned(total)
        base = data_ptr(self.arena) + shift
        fixed: dict[int, int] = {i: base + off for i, off in zip(inner, offsets)}
        fixed.update((i, r.ptr) for i, r in enumerate(roots) if not r.fresh)
        self.held = [r.owner for r in roots if not r.fresh]
        n_in = len(rec.inputs)
        # per run: one fresh array per escaping intermediate, base index n_in + j
        self.fresh = [(roots[i].shape, roots[i].dtype) for i in escaping]
        slot_of = {i: n_in + j for j, i in enumerate(escaping)}
        scratch = max((p.scratch for p, _, _ in rec.calls), default=0)
        self.scratch, sshift = _aligned(scratch)
        scratch_ptr = data_ptr(self.scratch) + sshift
        self.mems: list[c_void_p] = []
        self.rebind: list[list[Any]] = []  # [memory, base index, offset, bound address]
        self.calls: list[tuple[Any, int, Any, int, int]] = []  # handle, n, args, threads, step
        self.prims = [p for p, _, _ in rec.calls]  # kept alive with their handles
        self.mds = [md for _, _, args in rec.calls for _, md, _ in args]
        last_threads = None
        for prim, step, args in rec.calls:
            ea = (L.ExecArg * (len(args) + (1 if prim.scratch else 0)))()
            for j, (arg, md, (kind, idx, off)) in enumerate(args):
                if kind == "in":
                    rng = rec.ranges[idx]
                    assert rng is not None
                    ptr, b = rng[0] + off, idx
                elif idx in fixed:
                    ptr, b = fixed[idx] + off, -1
                else:
                    ptr, b = roots[idx].ptr + off, slot_of[idx]
                m = self._memory(md.h, ptr)
                ea[j].arg, ea[j].memory = arg, m
                if b >= 0:
                    self.rebind.append([m, b, off, ptr])
            if prim.scratch:
                assert prim.scratch_md is not None
                sp = self._memory(prim.scratch_md.h, scratch_ptr)
                ea[len(args)].arg, ea[len(args)].memory = L.ARG_SCRATCHPAD, sp
            t = prim.threads
            self.calls.append((prim.h, len(ea), ea, -1 if t == last_threads else t, step))
            last_threads = t
        self.outputs = [(o[0], o[1:]) for o in rec.outputs]
        self.fresh_of = {i: j for j, i in enumerate(escaping)}  # root -> its per-run array

    def _memory(self, md_h: Any, ptr: int) -> c_void_p:
        lib = L.load()
        m = c_void_p()
        lib.check(lib.memory_create(byref(m), md_h, lib.engine, c_void_p(ptr)), "memory_create")
        self.mems.append(m)
        return m

    def run(self, vals: list[Any], ins: list[Any], out_slots: Sequence[int], frees: Sequence[int]) -> None:
        lib = L.load()
        bases = [data_ptr(_buffer(v)) if v is not None else 0 for v in ins]
        fresh = [np.empty(shape, dtype) for shape, dtype in self.fresh]
        bases += [data_ptr(a) for a in fresh]
        set_handle = lib.memory_set_data_handle
        for r in self.rebind:
            p = bases[r[1]] + r[2]
            if p != r[3]:
                set_handle(r[0], p)
                r[3] = p
        stream, execute, use = lib.stream(), lib.primitive_execute, lib.use_threads
        for h, n, ea, threads, step in self.calls:
            if threads >= 0:
                use(threads)
            if execute(h, stream, n, ea):
                raise SegmentStepError(self.indices[step], DnnlError("oneDNN primitive_execute failed"))
        for slot, (kind, spec) in zip(out_slots, self.outputs):
            if kind == "none":
                vals[slot] = None
            elif kind == "same":
                vals[slot] = ins[spec[0]]
            elif kind == "object":
                vals[slot] = spec[0]
            else:
                (where, idx, off), md, shape, dtype, strides = spec
                src = _buffer(ins[idx]) if where == "in" else fresh[self.fresh_of[idx]]
                if off == 0 and src.shape == shape and src.dtype == dtype and src.strides == strides:
                    view = src
                else:
                    view = np.ndarray(shape, dtype, buffer=src, offset=off, strides=strides)
                vals[slot] = view if md is None else DnnlTensor(view, md)
        for s in frees:
            vals[s] = None

    def __del__(self) -> None:
        try:
            lib = L.load()
            for m in self.mems:
                lib.memory_destroy(m)
        except Exception:  # interpreter shutdown
            pass


class Segment:
    """Consecutive oneDNN plan steps run as one: step by step until a replay is recorded for
    the inputs' signature (a warm-up run, then two recordings that agree), replayed after."""

    def __init__(
        self, steps: Sequence[tuple[Any, ...]], indices: Sequence[int], constants: Mapping[int, Any]
    ) -> None:
        self.steps = tuple(steps)
        self.indices = tuple(indices)
        produced: list[int] = []
        seen: set[int] = set()
        reads: list[int] = []
        freed: set[int] = set()
        for _, ins, outs, free in self.steps:
            for s in ins:
                if s not in seen and s not in reads and s != NONE_SLOT:
                    reads.append(s)
            for s in outs:
                if s != SINK_SLOT and s not in seen:
                    seen.add(s)
                    produced.append(s)
            freed.update(free)
        self.inputs = tuple(s for s in reads if s not in constants)
        # the constants read: a run where one holds another value (a fed initializer) goes
        # step by step
        self.constants = tuple((s, constants[s]) for s in reads if s in constants)
        self.outputs = tuple(s for s in produced if s not in freed)
        self.frees = tuple(sorted(freed))
        self._states: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.why_not = ""  # why the last recording made no replay (diagnostics)

    def __call__(self, vals: list[Any]) -> None:
        ins = [vals[s] for s in self.inputs]
        sig = _signature(ins)
        for s, v in self.constants:
            if vals[s] is not v:
                sig = None
                break
        if sig is not None:
            key = (sig, single_thread_run() or not _owns_team())
            st = self._states.get(key)
            if st is not None:
                with contextlib.suppress(KeyError):  # another thread may have evicted it
                    self._states.move_to_end(key)
            if type(st) is _Replay:
                if st.lock.acquire(blocking=False):
                    try:
                        st.run(vals, ins, self.outputs, self.frees)
                    finally:
                        st.lock.release()
                    return
            elif st is not _FAILED and self._lock.acquire(blocking=False):
                try:
                    self._advance(key, st, vals, ins)
                finally:
                    self._lock.release()
                return
        self._run(vals, None)

    def _advance(self, key: Any, st: Any, vals: list[Any], ins: list[Any]) -> None:
        """One run towards a replay: a warm-up (primitives made, weights packed), then two
        recordings; a replay when they agree."""
        if st is None:
            self._states[key] = 0
            while len(self._states) > MAX_SIGNATURES:
                self._states.popitem(last=False)
            self._run(vals, None)
            return
        rec = _Recorder(ins)
        self._run(vals, rec)
        rec.finish(vals, self.outputs)
        if rec.failed:
            self.why_not = rec.failed
            self._states[key] = _FAILED
        elif st == 0:
            self._states[key] = (rec.structure(), rec)  # the recorder keeps its objects alive
        elif st[0] == rec.structure():
            try:
                self._states[key] = _Replay(rec, self.indices)
            except DnnlError as e:  # this run went step by step and stands; later ones will too
                self.why_not = str(e)
                self._states[key] = _FAILED
        else:
            self.why_not = "two recordings differ"
            self._states[key] = _FAILED

    def _run(self, vals: list[Any], rec: _Recorder | None) -> None:
        if rec is not None:
            recording.rec = rec
        try:
            for i, (fn, ins, outs, free) in enumerate(self.steps):
                if rec is not None:
                    rec.step = i
                try:
                    res = fn(*[vals[s] for s in ins])
                except Exception as e:
                    raise SegmentStepError(self.indices[i], e) from e
                store(vals, outs, res)
                for f in free:
                    vals[f] = None
        finally:
            if rec is not None:
                recording.rec = None

    def replaying(self) -> int:
        """How many input signatures this segment replays (for tests and diagnostics)."""
        return sum(type(s) is _Replay for s in self._states.values())
