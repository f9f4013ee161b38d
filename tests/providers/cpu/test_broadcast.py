import numpy as np
import pytest

from onnxlite.providers.cpu import broadcast


@pytest.mark.parametrize(
    "full, small, run",
    [
        ((1, 256, 56, 56), (1, 256, 1, 1), 3136),  # a per-channel bias repeats along each map
        ((128, 3072), (3072,), 3072),  # a bias row varies along each row
        ((2, 3, 4), (), 24),  # a scalar repeats along everything
        ((2, 3, 4), (2, 3, 4), 24),
        ((1, 12, 128, 128), (1, 1, 1, 128), 128),
        ((8, 1, 5), (8, 1, 1), 5),  # axes of size 1 are skipped
    ],
)
def test_repeat_run(full, small, run) -> None:
    assert broadcast.repeat_run(full, small) == run


@pytest.mark.parametrize(
    "a_shape, b_shape, expect",
    [
        ((1, 256, 56, 56), (1, 256, 1, 1), True),
        ((1, 256, 1, 1), (1, 256, 56, 56), True),  # either operand may be the small one
        ((128, 3072), (3072,), True),
        ((1, 512, 7, 7), (1, 512, 1, 1), False),  # short rows: faster buffered
        ((1, 16, 8, 8), (1, 16, 1, 1), False),  # too small to pay for the setting
        ((1, 256, 56, 56), (1, 256, 56, 56), False),  # no broadcasting
    ],
)
def test_unbuffered_picks_long_repeated_rows_only(a_shape, b_shape, expect) -> None:
    a, b = np.ones(a_shape, np.float32), np.ones(b_shape, np.float32)
    assert broadcast.unbuffered(a, b) is expect
    assert not broadcast.unbuffered(a, b.astype(np.float64))  # casting needs its buffer


@pytest.mark.parametrize("ufunc", [np.add, np.subtract, np.multiply, np.divide])
@pytest.mark.parametrize("a_shape, b_shape", [((2, 64, 30, 30), (64, 1, 1)), ((64, 1, 1), (2, 64, 30, 30))])
def test_apply_matches_the_ufunc_and_restores_the_buffer(ufunc, a_shape, b_shape) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32) + 3
    assert broadcast.unbuffered(a, b)
    before = np.getbufsize()
    np.testing.assert_array_equal(broadcast.apply(ufunc, a, b), ufunc(a, b))
    big = a if a.size > b.size else b
    out = np.empty_like(big)
    assert broadcast.apply(ufunc, a, b, out) is out
    np.testing.assert_array_equal(out, ufunc(a, b))
    assert np.getbufsize() == before


def test_apply_restores_the_buffer_when_the_ufunc_fails() -> None:
    a = np.ones((1, 64, 30, 30), np.float32)
    b = np.ones((64, 1, 1), np.float32)
    before = np.getbufsize()
    with pytest.raises(ValueError):
        broadcast.apply(np.add, a, b, np.empty((1, 64, 30, 29), np.float32))
    assert np.getbufsize() == before
