"""intra_op_num_threads: how many threads a session's kernels use during its runs, and how.

Either numpy's BLAS runs the products on its own threads, or BLAS is held at one thread and the
heavy kernels are split across onnxlite's workers (:mod:`onnxlite.providers.cpu.workers`), which
sleep rather than spin while idle, or (for sessions with oneDNN nodes, whose OpenMP threads
spin briefly) the whole run takes one thread; :class:`ThreadPolicy` picks per run from measured
latencies.
BLAS's setting is process-wide, so it is restored after each run; sessions with different
settings should not run concurrently.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from .providers.cpu import workers

_OPENBLAS_NAMES = (
    ("openblas_get_num_threads", "openblas_set_num_threads"),
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
)


@functools.lru_cache(maxsize=1)
def _blas_libs() -> tuple[tuple[Callable[[], int], Callable[[int], Any]], ...]:
    """(get, set) thread-count functions of the BLAS libraries numpy loaded.

    OpenBLAS's own entry points where found (a run calls them twice: they must be cheap),
    threadpoolctl's controllers otherwise.
    """
    try:
        from threadpoolctl import ThreadpoolController

        libs = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # an unknown BLAS: leave it alone
        return ()
    out = []
    for lib in libs:
        dynlib = getattr(lib, "dynlib", None)
        pair = None
        if getattr(lib, "internal_api", "") == "openblas" and getattr(lib, "threading_layer", "") != "openmp":
            for get_name, set_name in _OPENBLAS_NAMES:
                g, s = getattr(dynlib, get_name, None), getattr(dynlib, set_name, None)
                if g is not None and s is not None:
                    pair = (g, s)
                    break
        out.append(pair or (lib.get_num_threads, lib.set_num_threads))
    return tuple(out)


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


SPLIT, BLAS, SINGLE = "split", "blas", "single"

_run = threading.local()


def single_thread_run() -> bool:
    """This thread runs a session in SINGLE mode: kernels that own threads use one."""
    return bool(getattr(_run, "single", False))


def set_single_thread_run(single: bool) -> bool:
    """Set this thread's :func:`single_thread_run`; returns the previous setting."""
    prev = single_thread_run()
    _run.single = single
    return prev


# Called at the end of each session build on the building thread (providers register them).
BUILD_END_HOOKS: list[Callable[[], None]] = []


@contextlib.contextmanager
def building() -> Iterator[None]:
    """This thread builds a session: per-thread pools its one-off work claimed are given back at
    the end (for the threads that will run sessions: OpenMP's team, see providers.dnnl._prim)."""
    prev = getattr(_run, "building", False)
    _run.building = True
    try:
        yield
    finally:
        _run.building = prev
        if not prev:
            for hook in BUILD_END_HOOKS:
                hook()


def is_building() -> bool:
    return bool(getattr(_run, "building", False))


def mark_short_lived() -> None:
    """This thread ends after its run (run_async's): pools that keep per-thread state for a
    thread's life (OpenMP's teams) may still give it several threads."""
    _run.short_lived = True


def short_lived() -> bool:
    return bool(getattr(_run, "short_lived", False))


class RunThreads:
    """Context of one run.

    ``split``: BLAS at one thread, the heavy kernels split over ``threads`` onnxlite workers.
    ``blas``: BLAS at ``threads`` threads of its own, no splitting.
    ``single``: one thread for everything (BLAS, workers, oneDNN primitives: see
    :func:`single_thread_run`).
    """

    def __init__(self, threads: int, mode: str = SPLIT) -> None:
        self.threads = threads if threads > 0 else usable_cores()
        self.mode = mode
        self._saved: list[tuple[Any, int]] = []
        self._prev_workers = 1
        self._prev_single = False

    def __enter__(self) -> RunThreads:
        self._saved = []
        if self.mode == SINGLE:
            blas_threads, split = 1, 1
        else:
            blas_threads, split = (1, self.threads) if self.mode == SPLIT else (self.threads, 1)
        for get, set_ in _blas_libs():
            n = get()
            if n != blas_threads:
                set_(blas_threads)
                self._saved.append((set_, n))
        self._prev_workers = workers.set_workers(split)
        self._prev_single = set_single_thread_run(self.mode == SINGLE)
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        workers.set_workers(self._prev_workers)
        set_single_thread_run(self._prev_single)
        for set_, n in self._saved:
            set_(n)


class ThreadPolicy:
    """Picks, run by run, how a session's runs use their threads, from the latencies it sees.

    BLAS's own threads hand work over fastest while the cores are free, but they spin while they
    wait: once other processes compete for the cores they can make a run several times slower.
    onnxlite's workers sleep when idle, so they degrade gracefully, at a small hand-off cost.
    oneDNN's OpenMP threads spin briefly, then sleep; when another process holds a core, every
    barrier of a primitive waits for it, and one thread (SINGLE) is faster.
    The policy keeps a moving average of the run time of each mode, runs the fastest, and now
    and then tries each other mode in a short burst (more rarely the worse it did; the first run
    of a burst only warms the mode up), so a session follows the machine as its load changes.
    A burst counts as its fastest run: a run slowed by a passing burst of other threads (another
    runtime's pool spinning after its own run) says little about the mode, and a mode judged on
    one is not tried again for a long time. With one thread all modes are the same and nothing
    is tried. Runs after a pause (see COLD_S) are judged apart.
    """

    # Runs this short keep whatever thread settings the process has (unless the session set an
    # explicit thread count): no kernel of such a run splits its work, and setting up a mode
    # (BLAS's thread count, the worker count) and timing it cost a fifth of the run (a
    # four-layer 64-wide MLP: 18.3 -> 14.9 us).
    TRIVIAL_S = 50e-6
    ALPHA = 0.3  # weight of the newest run in a mode's moving average
    BURST = 3  # runs per try of a mode; the first is not counted
    PROBE_EVERY = 16  # runs between tries of another mode, times (its slowdown) squared
    MAX_GAP = 1000
    # A run starting this long after the session's previous run ended is "cold": OpenMP's
    # threads have gone to sleep (they spin 0.6 ms) and, on a virtual machine, an idle vCPU may
    # be slow to come back. With oneDNN nodes, cold runs are timed apart from the others, in the
    # best mode and on one thread, and run in whichever did better (SqueezeNet after 20 ms idle
    # on a 2-core VM: 14.6 ms on two threads, 8.1 on one; warm 3.6 and 6.3), trying the other
    # every COLD_PROBE_EVERY cold runs; they leave the warm averages alone.
    COLD_S = 0.005
    COLD_PROBE_EVERY = 8

    def __init__(self, threads: int, modes: tuple[str, ...] = (SPLIT, BLAS)) -> None:
        self.threads = threads if threads > 0 else usable_cores()
        self._auto = threads <= 0  # an explicit thread count holds in every run, short ones too
        self.modes = modes
        self.avg: dict[str, float] = {}
        self.best = modes[0]
        self.runs = 0
        self.next_probe: dict[str, int] = {}
        self._burst: list[str] = []  # modes of the runs left in the current try
        self._burst_best: float | None = None  # the fastest counted run of the current try
        self.trivial = False  # runs are shorter than TRIVIAL_S whatever the mode
        self.cold_avg: dict[str, float] = {}  # moving averages of cold runs per mode
        self._cold_n: dict[str, int] = {}
        self._cold_runs = 0
        self._last_end: float | None = None
        self._cold = threading.local()  # whether this thread's current run is a cold one

    def record_trivial(self, seconds: float) -> None:
        """A run made without thread settings: a long one (larger inputs, a busy machine) hands
        the runs back to the modes."""
        if seconds > 4 * self.TRIVIAL_S:
            self.trivial = False

    def choose(self, now: float | None = None) -> str:
        if self.threads <= 1:  # intra_op_num_threads=1 holds oneDNN's primitives to one thread too
            return SINGLE if SINGLE in self.modes else self.modes[0]
        now = time.perf_counter() if now is None else now
        last = self._last_end
        cold = (
            SINGLE in self.modes
            and last is not None
            and now - last > self.COLD_S
            and not self._burst
            and len(self.avg) == len(self.modes)
        )
        self._cold.on = cold
        if cold:
            return self._cold_mode()
        self.runs += 1
        if not self._burst:
            untried = [m for m in self.modes if m not in self.avg]
            due = [m for m in self.modes if m != self.best and self.runs >= self.next_probe.get(m, 0)]
            if untried:
                self._burst = [untried[0]] * self.BURST
            elif due:
                self._burst = [min(due, key=lambda m: self.next_probe.get(m, 0))] * self.BURST
            else:
                return self.best
        return self._burst[0]

    def _cold_mode(self) -> str:
        if self.best == SINGLE:
            return SINGLE
        pair = (self.best, SINGLE)
        self._cold_runs += 1
        untried = [m for m in pair if self._cold_n.get(m, 0) < 2]
        if untried:
            return untried[0]
        best = min(pair, key=self.cold_avg.__getitem__)
        if self._cold_runs % self.COLD_PROBE_EVERY == 0:
            return next(m for m in pair if m != best)
        return best

    def record(self, mode: str, seconds: float, now: float | None = None) -> None:
        self._last_end = time.perf_counter() if now is None else now
        if getattr(self._cold, "on", False):
            self._cold.on = False
            old = self.cold_avg.get(mode)
            self.cold_avg[mode] = seconds if old is None else old + self.ALPHA * (seconds - old)
            self._cold_n[mode] = self._cold_n.get(mode, 0) + 1
            return
        if self.threads <= 1 or not self._burst:
            if mode in self.avg:
                self.avg[mode] += self.ALPHA * (seconds - self.avg[mode])
            return
        warm_up = len(self._burst) == self.BURST
        self._burst.pop(0)
        if not warm_up:
            best = self._burst_best
            self._burst_best = seconds if best is None else min(best, seconds)
        if self._burst:
            return
        tried, self._burst_best = self._burst_best, None
        if tried is not None:
            old = self.avg.get(mode)
            self.avg[mode] = tried if old is None else old + self.ALPHA * (tried - old)
        if len(self.avg) < len(self.modes):
            return
        before, self.best = self.best, min(self.avg, key=self.avg.__getitem__)
        self.trivial = self._auto and max(self.avg.values()) < self.TRIVIAL_S
        for m in self.modes:
            # the mode just tried, or all of them when the best changed or on the first pass
            if m != self.best and (m == mode or before != self.best or m not in self.next_probe):
                slowdown = self.avg[m] / max(self.avg[self.best], 1e-9)
                self.next_probe[m] = self.runs + min(self.MAX_GAP, int(self.PROBE_EVERY * slowdown**2))
