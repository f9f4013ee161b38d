"""The ctypes binding to numpy's cblas_sgemm."""

from __future__ import annotations

import numpy as np
import pytest

from onnxlite.providers.cpu import cblas

pytestmark = pytest.mark.skipif(not cblas.available(), reason="numpy's BLAS exposes no cblas_sgemm here")


def test_sgemm_windows_and_accumulation() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(np.float32)
    big = rng.standard_normal((7, 40)).astype(np.float32)
    c = rng.standard_normal((5, 30)).astype(np.float32)
    want = c.copy()
    want[:, 2:12] = a @ big[:, 3:13] + c[:, 2:12]
    # B: the window of columns 3..12 of ``big`` (leading dimension 40); C: columns 2..11 of c
    cblas.sgemm(5, 10, 7, a.ctypes.data, 7, big.ctypes.data + 3 * 4, 40, 1.0, c.ctypes.data + 2 * 4, 30)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)
    cblas.sgemm(5, 10, 7, a.ctypes.data, 7, big.ctypes.data, 40, 0.0, c.ctypes.data, 30)
    np.testing.assert_allclose(c[:, :10], a @ big[:, :10], rtol=1e-5, atol=1e-5)


def test_a_library_without_the_symbol_is_not_used(monkeypatch) -> None:
    monkeypatch.setattr(cblas, "_find", lambda: None)
    cblas._sgemm.cache_clear()
    try:
        assert not cblas.available()
    finally:
        monkeypatch.undo()
        cblas._sgemm.cache_clear()
    assert cblas.available()
