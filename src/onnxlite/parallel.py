"""ExecutionMode.ORT_PARALLEL: run independent steps of a plan variant on a thread pool.

numpy releases the GIL inside BLAS calls and ufunc loops, so independent branches (inception
blocks, multi-head projections) overlap. Dependencies and slot use counts are computed once per
variant; a slot is released when its last consumer finishes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .plan import NONE_SLOT, Plan, Terminated, Variant, store


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
    """Runs plan variants with up to ``threads`` steps in flight."""

    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="onnxlite")
        self._schedules: dict[int, Schedule] = {}
        self._lock = threading.Lock()

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
        lock = threading.Lock()
        done = threading.Event()
        left = [len(steps)]
        failure: list[tuple[int, Exception]] = []

        def worker(pos: int) -> None:
            while True:
                fn, ins, outs, _ = steps[pos]
                try:
                    if terminate is not None and terminate.terminate:
                        raise Terminated("Exiting due to terminate flag being set to true.")
                    store(vals, outs, fn(*[vals[i] for i in ins]))
                except Exception as e:  # reported by the caller's thread
                    with lock:
                        failure.append((pos, e))
                    done.set()
                    return
                ready = []
                with lock:
                    for s in set(ins):
                        uses[s] -= 1
                        if uses[s] == 0 and s not in sch.keep:
                            vals[s] = None
                    for d in sch.dependents[pos]:
                        remaining[d] -= 1
                        if remaining[d] == 0:
                            ready.append(d)
                    left[0] -= 1
                    if left[0] == 0:
                        done.set()
                if failure or not ready:
                    return
                for d in ready[1:]:
                    self.pool.submit(worker, d)
                pos = ready[0]

        for pos, n in enumerate(sch.n_deps):
            if n == 0:
                self.pool.submit(worker, pos)
        done.wait()
        if failure:
            pos, e = failure[0]
            if isinstance(e, Terminated):
                raise e
            raise plan.step_error(variant, pos, vals, e) from e
        return [vals[i] for i in variant.fetch]
