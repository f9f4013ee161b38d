"""Random generator kernels: shapes, dtypes, seeding and distributions (no oracle can match the
draws themselves)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto
from tests.oracle import node_model

import onnxlite

F, D, H = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16


def session(op, inputs=None, attrs=None, opset=21):
    m = node_model(op, inputs or {}, attrs or {}, opset=opset)
    return onnxlite.InferenceSession(m.SerializeToString())


def draw(op, inputs=None, attrs=None, opset=21):
    return session(op, inputs, attrs, opset).run(None, dict(inputs or {}))[0]


@pytest.mark.parametrize("op", ["RandomNormal", "RandomUniform"])
@pytest.mark.parametrize(("dtype", "np_dt"), [(None, np.float32), (D, np.float64), (H, np.float16)])
def test_shape_and_dtype(op, dtype, np_dt):
    attrs = {"shape": [3, 4, 5]} | ({} if dtype is None else {"dtype": dtype})
    y = draw(op, attrs=attrs)
    assert y.shape == (3, 4, 5) and y.dtype == np_dt


@pytest.mark.parametrize("op", ["RandomNormalLike", "RandomUniformLike"])
def test_like_takes_shape_and_dtype_from_input(op):
    x = np.zeros((2, 7), np.float64)
    y = draw(op, {"x": x})
    assert y.shape == (2, 7) and y.dtype == np.float64
    xi = np.zeros((4,), np.int32)  # a non-float input needs the dtype attribute
    y = draw(op, {"x": xi}, {"dtype": F})
    assert y.shape == (4,) and y.dtype == np.float32
    with pytest.raises(Exception, match="float"):
        draw(op, {"x": xi})


@pytest.mark.parametrize(
    ("op", "attrs"),
    [
        ("RandomNormal", {"shape": [50]}),
        ("RandomUniform", {"shape": [50]}),
        ("Multinomial", {"sample_size": 50}),
        ("Bernoulli", {}),
    ],
)
def test_seed_is_deterministic_per_node(op, attrs):
    inputs = {}
    if op == "Multinomial":
        inputs = {"x": np.zeros((2, 10), np.float32)}
    elif op == "Bernoulli":
        inputs = {"x": np.full(50, 0.5, np.float32)}
    s1 = session(op, inputs, attrs | {"seed": 3.0})
    s2 = session(op, inputs, attrs | {"seed": 3.0})
    a1, a2 = s1.run(None, inputs)[0], s1.run(None, inputs)[0]
    b1, b2 = s2.run(None, inputs)[0], s2.run(None, inputs)[0]
    # every session built from the model repeats the node's sequence (onnxruntime's behaviour)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)
    other = session(op, inputs, attrs | {"seed": 4.0}).run(None, inputs)[0]
    assert not np.array_equal(a1, other)


def test_unseeded_sessions_differ():
    a = draw("RandomNormal", attrs={"shape": [64]})
    b = draw("RandomNormal", attrs={"shape": [64]})
    assert not np.array_equal(a, b)


def test_normal_distribution():
    y = draw("RandomNormal", attrs={"shape": [200_000], "mean": 2.0, "scale": 3.0, "seed": 1.0})
    assert abs(y.mean() - 2.0) < 0.05
    assert abs(y.std() - 3.0) < 0.05
    x = np.zeros((400, 500), np.float16)
    y = draw("RandomNormalLike", {"x": x}, {"mean": -1.0, "scale": 0.5}).astype(np.float64)
    assert abs(y.mean() + 1.0) < 0.01 and abs(y.std() - 0.5) < 0.01


def test_uniform_distribution():
    y = draw("RandomUniform", attrs={"shape": [200_000], "low": -2.0, "high": 6.0, "dtype": D})
    assert y.min() >= -2.0 and y.max() < 6.0
    assert abs(y.mean() - 2.0) < 0.05
    assert abs(y.var() - 64.0 / 12.0) < 0.1
    y = draw("RandomUniformLike", {"x": np.zeros((1000, 100), np.float32)}, {"low": 1.0, "high": 2.0})
    assert y.min() >= 1.0 and y.max() <= 2.0 and abs(y.mean() - 1.5) < 0.01


@pytest.mark.parametrize(("dtype", "np_dt"), [(None, np.int32), (TensorProto.INT64, np.int64)])
def test_multinomial(dtype, np_dt):
    p = np.array([[0.1, 0.2, 0.7, 0.0], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.0, 1.0]])
    with np.errstate(divide="ignore"):
        logits = np.log(p).astype(np.float32)
    attrs = {"sample_size": 40_000} | ({} if dtype is None else {"dtype": dtype})
    y = draw("Multinomial", {"x": logits}, attrs)
    assert y.shape == (3, 40_000) and y.dtype == np_dt
    freq = np.stack([np.bincount(row, minlength=4) for row in y]) / 40_000
    np.testing.assert_allclose(freq, p, atol=0.01)
    assert (y[0] != 3).all() and (y[2] == 3).all()  # zero-probability classes never drawn


def test_multinomial_unnormalised_logits():
    logits = np.array([[10.0, 10.0 + np.log(3.0)]], np.float64)  # probabilities 1/4, 3/4
    y = draw("Multinomial", {"x": logits}, {"sample_size": 20_000, "seed": 2.0})
    assert abs(y.mean() - 0.75) < 0.015


@pytest.mark.parametrize(
    ("dtype", "np_dt"),
    [(None, np.float32), (D, np.float64), (TensorProto.BOOL, np.bool_), (TensorProto.INT8, np.int8)],
)
def test_bernoulli(dtype, np_dt):
    p = np.repeat(np.array([0.0, 0.2, 0.9, 1.0], np.float32)[None], 20_000, axis=0)
    y = draw("Bernoulli", {"x": p}, {} if dtype is None else {"dtype": dtype}, opset=15)
    assert y.shape == p.shape and y.dtype == np_dt
    assert set(np.unique(y.astype(np.float64))) <= {0.0, 1.0}
    np.testing.assert_allclose(y.astype(np.float64).mean(axis=0), [0.0, 0.2, 0.9, 1.0], atol=0.015)


def test_bernoulli_does_not_mutate_input():
    p = np.full((3, 3), 0.5)
    before = p.copy()
    draw("Bernoulli", {"x": p})
    np.testing.assert_array_equal(p, before)
