"""Gemm, MatMul, MatMulInteger, QLinearMatMul and Einsum against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

RNG = np.random.default_rng(3)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((3, 4), (4, 5)),
        ((2, 3, 4), (4, 5)),
        ((4,), (2, 4, 3)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((4,), (4,)),
        ((0, 4), (4, 3)),
    ],
)
def test_matmul_shapes(sa, sb):
    check_node("MatMul", {"a": rand(*sa), "b": rand(*sb)}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64])
def test_matmul_dtypes(dtype):
    a = (rand(3, 4) * 4).astype(dtype)
    b = (rand(4, 2) * 4).astype(dtype)
    tol = 1e-2 if dtype == np.float16 else 1e-6
    check_node("MatMul", {"a": a, "b": b}, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "attrs",
    [{}, {"transA": 1}, {"transB": 1}, {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}, {"beta": 0.0}],
)
@pytest.mark.parametrize("cshape", [None, (5,), (1, 5), (3, 1), (3, 5), ()])
def test_gemm(attrs, cshape):
    a = rand(4, 3) if attrs.get("transA") else rand(3, 4)
    b = rand(5, 4) if attrs.get("transB") else rand(4, 5)
    inputs = {"a": a, "b": b}
    if cshape is not None:
        inputs["c"] = rand(*cshape)
    check_node("Gemm", inputs, attrs, rtol=1e-5, atol=1e-5)


def test_gemm_old_opsets():
    inputs = {"a": rand(3, 4), "b": rand(4, 5), "c": rand(5)}
    for opset in (6, 7, 9, 11):
        attrs = {"broadcast": 1} if opset == 6 else {}
        check_node("Gemm", inputs, attrs, opset=opset, rtol=1e-5, atol=1e-5)


def test_gemm_int32():
    a = RNG.integers(-5, 5, (3, 4)).astype(np.int32)
    b = RNG.integers(-5, 5, (4, 2)).astype(np.int32)
    c = RNG.integers(-5, 5, (2,)).astype(np.int32)
    (y,) = run_onnxlite(node_model("Gemm", {"a": a, "b": b, "c": c}), {"a": a, "b": b, "c": c})
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, a @ b + c)


@pytest.mark.parametrize(
    ("ta", "tb", "azp", "bzp"),
    [
        (np.uint8, np.uint8, 12, 3),
        (np.int8, np.int8, -3, None),
        (np.uint8, np.int8, None, np.array([1, -2, 3], np.int8)),
    ],
)
def test_matmul_integer(ta, tb, azp, bzp):
    lo_a, hi_a = np.iinfo(ta).min, np.iinfo(ta).max
    lo_b, hi_b = np.iinfo(tb).min, np.iinfo(tb).max
    a = RNG.integers(lo_a, hi_a + 1, (2, 5, 64)).astype(ta)
    b = RNG.integers(lo_b, hi_b + 1, (64, 3)).astype(tb)
    inputs = {"a": a, "b": b}
    if azp is not None or bzp is not None:
        inputs["az"] = np.array(azp if azp is not None else 0, ta)
    if bzp is not None:
        inputs["bz"] = np.asarray(bzp, tb)
    (y,) = run_onnxlite(node_model("MatMulInteger", inputs), inputs)
    bz = np.zeros(1, np.int64) if bzp is None else np.asarray(bzp, np.int64)
    want = (a.astype(np.int64) - (azp or 0)) @ (b.astype(np.int64) - bz)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, want)


def test_matmul_integer_per_row_a_zero_point():
    a = RNG.integers(0, 256, (3, 8)).astype(np.uint8)
    b = RNG.integers(0, 256, (8, 2)).astype(np.uint8)
    az = np.array([1, 2, 3], np.uint8)
    inputs = {"a": a, "b": b, "az": az}
    (y,) = run_onnxlite(node_model("MatMulInteger", inputs), inputs)
    want = (a.astype(np.int64) - az[:, None].astype(np.int64)) @ b.astype(np.int64)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
@pytest.mark.parametrize("shape_a", [(3, 16), (2, 3, 16)])
def test_qlinear_matmul(dt, shape_a):
    info = np.iinfo(dt)
    a = RNG.integers(info.min, info.max + 1, shape_a).astype(dt)
    b = RNG.integers(info.min, info.max + 1, (16, 4)).astype(dt)
    inputs = {
        "a": a,
        "as": np.array(0.05, np.float32),
        "az": np.array(3, dt),
        "b": b,
        "bs": np.array(0.02, np.float32),
        "bz": np.array(1, dt),
        "ys": np.array(0.3, np.float32),
        "yz": np.array(5, dt),
    }
    check_node("QLinearMatMul", inputs, opset=21)


@pytest.mark.parametrize(
    ("eq", "shapes"),
    [
        ("ij,jk->ik", [(3, 4), (4, 5)]),
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("ii->i", [(4, 4)]),
        ("ij->", [(3, 4)]),
        ("ij", [(3, 4)]),
        ("ji", [(3, 4)]),
        ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
        ("...ij,...jk", [(2, 3, 4), (4, 5)]),
        ("i,i", [(5,), (5,)]),
        ("i, j -> ij", [(3,), (4,)]),
        ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
        ("Ab,bA", [(2, 3), (3, 2)]),
    ],
)
def test_einsum(eq, shapes):
    inputs = {f"x{i}": rand(*s) for i, s in enumerate(shapes)}
    check_node("Einsum", inputs, {"equation": eq}, rtol=1e-5, atol=1e-5)


def test_einsum_int_and_double():
    a = RNG.integers(-4, 4, (3, 4)).astype(np.int64)
    check_node("Einsum", {"a": a, "b": a}, {"equation": "ij,ij->i"})
    d = rand(2, 3, dtype=np.float64)
    check_node("Einsum", {"d": d}, {"equation": "ij->ji"})


@pytest.mark.parametrize("k", [1, 255, 256, 257, 1000, 3072])
def test_exact_int_matmul_is_exact_at_the_extremes(k):
    from onnxlite.providers.cpu.kernels.linalg import exact_int_matmul

    rng = np.random.default_rng(k)
    a = rng.choice([-255, 255, 254, -1], size=(3, k)).astype(np.float64)
    b = rng.choice([-255, 255, 253, 7], size=(k, 5)).astype(np.float64)
    a[0] = 255  # worst case: every product +65025
    b[:, 0] = 255
    want = a.astype(np.int64) @ b.astype(np.int64)
    got = exact_int_matmul(a, b)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got.astype(np.int64), want)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (), (5,), (1, 5), (3, 5), (3, 1)])
@pytest.mark.parametrize("activation", ["", "Relu", "Tanh"])
def test_float32_gemm_short_path(trans_b: int, c_shape: tuple[int, ...] | None, activation: str) -> None:
    from onnxlite.providers.cpu.kernels.contrib import _activation
    from onnxlite.providers.cpu.kernels.linalg import gemm_fn

    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4) if trans_b else (4, 5)).astype(np.float32)
    c = None if c_shape is None else rng.standard_normal(c_shape).astype(np.float32)
    act = _activation(activation) if activation else None
    run = gemm_fn(transB=trans_b, act=act, f32=True)
    want = a @ (b.T if trans_b else b) + (0 if c is None else c)
    if activation == "Relu":
        want = np.maximum(want, 0)
    elif activation == "Tanh":
        want = np.tanh(want)
    got = run(a, b) if c is None else run(a, b, c)
    assert got.dtype == np.float32 and got.shape == (3, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
