"""Helpers of the oneDNN handle layer."""

from __future__ import annotations

import numpy as np
import pytest

from onnxlite.providers.dnnl._prim import data_ptr, same_array


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.empty(7, np.float32),
        lambda: np.arange(24, dtype=np.int8).reshape(4, 6)[1:, ::2],
        lambda: np.zeros((3, 5), np.float64).T,
        lambda: np.empty(0, np.uint8),
    ],
)
def test_data_pointer_matches_numpy(make) -> None:  # type: ignore[no-untyped-def]
    a = make()
    assert data_ptr(a) == a.ctypes.data


def test_same_array_compares_views_by_data() -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    v = w.view()
    v.flags.writeable = False
    assert same_array(w, v)
    assert not same_array(w, w.copy())
    assert not same_array(w, w[:, :2])
