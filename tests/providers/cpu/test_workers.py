import os
import threading
import time

import pytest
from tests.fresh import in_forked_child

from onnxlite.providers.cpu import workers


def test_run_all_runs_the_first_task_here_and_the_others_on_workers():
    seen: dict[int, str] = {}

    def task(i: int):
        return lambda: seen.__setitem__(i, threading.current_thread().name)

    workers.run_all([task(i) for i in range(4)])
    assert sorted(seen) == [0, 1, 2, 3]
    assert seen[0] == threading.current_thread().name
    assert all(seen[i].startswith("onnxlite-worker") for i in (1, 2, 3))


def test_a_workers_failure_is_raised_after_every_task_ended():
    ended = []

    def slow():
        time.sleep(0.05)
        ended.append("slow")

    def bad():
        raise ValueError("from a worker")

    with pytest.raises(ValueError, match="from a worker"):
        workers.run_all([slow, bad, slow])
    assert ended == ["slow", "slow"]  # nothing still writes once the caller sees the error
    workers.run_all([lambda: None, lambda: ended.append("again")])  # the workers still serve
    assert ended[-1] == "again"


def test_the_callers_own_failure_wins_and_waits_for_the_workers():
    ended = []

    def first():
        raise KeyError("here")

    def slow():
        time.sleep(0.05)
        ended.append(1)

    with pytest.raises(KeyError, match="here"):
        workers.run_all([first, slow])
    assert ended == [1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_workers_of_its_own():
    workers.run_all([lambda: None, lambda: None])  # the parent's workers exist

    def child() -> bool:  # its parent's worker threads are gone
        out: list[int] = []
        workers.run_all([lambda: out.append(1), lambda: out.append(2)])
        return sorted(out) == [1, 2]

    assert in_forked_child(child, timeout_s=20) == 0


def test_split_covers_the_range_in_aligned_parts():
    assert workers.split(100, 2, 16) == [(0, 64), (64, 100)]
    assert workers.split(5, 8) == [(i, i + 1) for i in range(5)]


def test_for_rows_splits_only_large_work():
    calls: list[tuple[int, int]] = []
    prev = workers.set_workers(2)
    try:
        workers.for_rows(4, 10, lambda a, b: calls.append((a, b)))
        assert calls == [(0, 4)]  # too little work for a hand-off
        calls.clear()
        workers.for_rows(4, workers.MIN_ELEMENTS_PER_WORKER, lambda a, b: calls.append((a, b)))
        assert sorted(calls) == [(0, 2), (2, 4)]
    finally:
        workers.set_workers(prev)
