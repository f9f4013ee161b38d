"""ExecutionMode.ORT_PARALLEL: run independent steps of a plan variant on several threads.

numpy releases the GIL inside BLAS calls and ufunc loops, so independent branches (inception
blocks, multi-head projections) overlap. Dependencies and slot use counts are computed once per
variant; a slot is released when its last consumer finishes.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .plan import NONE_SLOT, Plan, Terminated, Variant, store
from .threads import set_single_thread_run, single_thread_run


@dataclass(frozen=True)
class Schedule:
    n_deps: tuple[int, ...]  # steps each step waits for
    dependents: tuple[tuple[int, ...], ...]  # steps unblocked by each step
    uses: dict[int, int]  # slot -> number of steps reading it
    keep: frozenset[int]  # slots never released (fetched outputs)


def schedule(variant: Variant) -> Schedule:
    producer: dict[int, int] = {}
    for pos, (_, _, outs, _) in enumerate(variant.steps):
        for s in outs:
            producer[s] = pos
    deps: list[set[int]] = []
    uses: dict[int, int] = {}
    for _, ins, _, _ in variant.steps:
        d = {producer[s] for s in ins if s in producer}
        deps.append(d)
        for s in set(ins):
            uses[s] = uses.get(s, 0) + 1
    dependents: list[list[int]] = [[] for _ in variant.steps]
    for pos, d in enumerate(deps):
        for p in d:
            dependents[p].append(pos)
    return Schedule(
        tuple(len(d) for d in deps),
        tuple(tuple(x) for x in dependents),
        uses,
        frozenset(variant.fetch) | frozenset(variant.keep) | {NONE_SLOT},
    )


class ParallelExecutor:
    """Runs plan variants with up to ``threads`` steps in flight: the calling thread runs the
    steps one after another as they become ready, and hands the ready steps it cannot take at
    once to the pool's ``threads - 1`` threads.

    Chains of dependent steps thus stay on the caller (the thread whose kernels may use a
    provider's own thread team, see ``providers.dnnl._prim``), and only the extra work of
    independent branches goes to the pool, one step per hand-off.
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._schedules: dict[int, Schedule] = {}
        self._lock = threading.Lock()

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The pool of this process: a child forked after a run has none of its parent's
        threads, and a pool that believes it has them never runs what it is given."""
        pid = os.getpid()
        if self._pool is None or self._pool_pid != pid:
            with self._lock:
                if self._pool is None or self._pool_pid != pid:
                    self._pool = ThreadPoolExecutor(
                        max_workers=max(1, self.threads - 1), thread_name_prefix="onnxlite"
                    )
                    self._pool_pid = pid
        return self._pool

    def _schedule(self, variant: Variant) -> Schedule:
        key = id(variant)
        sch = self._schedules.get(key)
        if sch is None:
            with self._lock:
                sch = self._schedules.setdefault(key, schedule(variant))
        return sch

    def execute(self, plan: Plan, vals: list[Any], variant: Variant, terminate: Any = None) -> list[Any]:
        steps = variant.steps
        if not steps:
            return [vals[i] for i in variant.fetch]
        sch = self._schedule(variant)
        remaining = list(sch.n_deps)
        uses = dict(sch.uses)
        cond = threading.Condition()
        ready = deque(pos for pos, n in enumerate(sch.n_deps) if n == 0)
        left = [len(steps)]
        in_pool = [0]
        failure: list[tuple[int, Exception]] = []

        def run_step(pos: int) -> None:
            fn, ins, outs, _ = steps[pos]
            if terminate is not None and terminate.terminate:
                raise Terminated("Exiting due to terminate flag being set to true.")
            store(vals, outs, fn(*[vals[i] for i in ins]))

        def finished(pos: int) -> None:  # with cond held
            for s in set(steps[pos][1]):
                uses[s] -= 1
                if uses[s] == 0 and s not in sch.keep:
                    vals[s] = None
            for d in sch.dependents[pos]:
                remaining[d] -= 1
                if remaining[d] == 0:
                    ready.append(d)
            left[0] -= 1

        def pooled(pos: int) -> None:
            try:
                run_step(pos)
            except Exception as e:  # reported by the caller's thread
                with cond:
                    failure.append((pos, e))
                    in_pool[0] -= 1
                    cond.notify()
                return
            with cond:
                in_pool[0] -= 1
                finished(pos)
                cond.notify()

        single = single_thread_run()  # the run's own setting, put back at the end
        with cond:
            while left[0] and not failure:
                if not ready:
                    cond.wait()
                    continue
                pos = ready.popleft()
                while ready and in_pool[0] < self.threads - 1:
                    in_pool[0] += 1
                    self.pool.submit(pooled, ready.pop())
                # while pool threads run steps, the caller's kernels keep to one thread too: a
                # thread team beside them would wait at its barriers for a preempted member
                set_single_thread_run(single or in_pool[0] > 0)
                cond.release()
                err: Exception | None = None
                try:
                    run_step(pos)
                except Exception as e:
                    err = e
                finally:  # held again whatever happened, for the with block to release
                    cond.acquire()
                if err is not None:
                    failure.append((pos, err))
                    break
                finished(pos)
            set_single_thread_run(single)
            while in_pool[0]:  # no step may still write into vals once this returns
                cond.wait()
        if failure:
            bad, err = failure[0]
            if isinstance(err, Terminated):
                raise err
            raise plan.step_error(variant, bad, vals, err) from err
        return [vals[i] for i in variant.fetch]
