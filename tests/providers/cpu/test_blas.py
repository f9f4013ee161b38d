"""Products split across workers give numpy's results, in every split layout."""

from __future__ import annotations

import numpy as np
import pytest

from onnxlite.providers.cpu import blas, workers


@pytest.fixture
def two_workers(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(blas, "MIN_SPLIT_MACS", 1)
    prev = workers.set_workers(2)
    yield
    workers.set_workers(prev)


def _r(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (_r(5, 7), _r(7, 100)),  # columns
        (_r(2, 3, 70, 9), _r(9, 20)),  # rows (few columns), batch dims folded
        (_r(3, 40, 9).transpose(1, 0, 2), _r(9, 8)),  # non-contiguous a
        (_r(6, 5), _r(70, 5).T),  # transposed b
        (_r(8, 12), _r(3, 12, 90)),  # weights times patch matrices
        (_r(4, 3, 5, 6), _r(4, 3, 6, 7)),  # batched
        (_r(5, 6), _r(6, 2)),  # too small to split anywhere
    ],
)
def test_split_matmul_equals_numpy(two_workers, a, b) -> None:  # type: ignore[no-untyped-def]
    got = blas.matmul(a, b)
    want = np.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_split_matmul_actually_uses_a_worker(two_workers, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    seen: set[str] = set()
    real = blas._serial

    def spy(jobs):  # type: ignore[no-untyped-def]
        seen.add(threading.current_thread().name)
        real(jobs)

    monkeypatch.setattr(blas, "_serial", spy)
    blas.matmul(_r(64, 64), _r(64, 256))
    assert len(seen) == 2


def test_worker_errors_reach_the_caller() -> None:
    prev = workers.set_workers(2)
    try:

        def boom() -> None:
            raise ValueError("from a worker")

        with pytest.raises(ValueError, match="from a worker"):
            workers.run_all([lambda: None, boom])
    finally:
        workers.set_workers(prev)


def test_for_rows_covers_every_row_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(workers, "MIN_ELEMENTS_PER_WORKER", 1)
    prev = workers.set_workers(3)
    try:
        hits = np.zeros(100, int)

        def fn(r0: int, r1: int) -> None:
            hits[r0:r1] += 1

        workers.for_rows(100, 10, fn)
        assert (hits == 1).all()
    finally:
        workers.set_workers(prev)


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("lead", [(1, 8), (3, 5), (2, 300)])  # the last: rows beyond feature-major
def test_feature_major_product_equals_numpy(two_workers, split, lead) -> None:  # type: ignore[no-untyped-def]
    if not split:
        workers.set_workers(1)
    a, bt = _r(*lead, 40), _r(72, 40)
    got = blas.matmul_feature_major(a, bt)
    want = np.matmul(a, bt.T)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    rows = lead[0] * lead[1]
    # a transposed view of an [N, rows] buffer while rows are few; row-major beyond
    assert got.reshape(rows, 72).T.flags.c_contiguous == (rows <= blas.FEATURE_MAJOR_MAX_ROWS)
    # its consumer in a transformer, the next product, takes it as it is
    np.testing.assert_allclose(
        blas.matmul_feature_major(got, _r(16, 72)), want @ _r(16, 72).T, rtol=1e-4, atol=1e-4
    )
