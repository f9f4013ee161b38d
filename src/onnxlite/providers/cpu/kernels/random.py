"""Random generator kernels: RandomNormal, RandomUniform, their *Like forms, Multinomial and
Bernoulli.

As in onnxruntime, each node owns one generator, created when the session is built: seeded from
the ``seed`` attribute (its integer part) when present, so that a node yields the same sequence of
draws in every session built from the model, and from fresh OS entropy otherwise. Successive runs
continue the node's sequence; a lock keeps concurrent runs safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ....types import np_dtype
from ..registry import kernel

_FLOATS = (np.float16, np.float32, np.float64)


class _Stream:
    """A node's generator, guarded for concurrent runs."""

    def __init__(self, seed: float | None) -> None:
        self._rng = np.random.default_rng(None if seed is None else int(seed) % 2**64)
        self._lock = threading.Lock()

    def draw(self, fn: Callable[[np.random.Generator], Any]) -> Any:
        with self._lock:
            return fn(self._rng)


def _float_dtype(dt: np.dtype, op: str) -> np.dtype:
    dt = np.dtype(dt)
    if dt not in _FLOATS and dt.name != "bfloat16":
        raise ValueError(f"{op}: output type must be a float type, got {dt}")
    return dt


def _gen_dtype(dt: np.dtype) -> np.dtype:
    # Generator draws float32 or float64; half types are drawn as float32 and rounded.
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _normal(stream: _Stream, shape, dt: np.dtype, mean: float, scale: float) -> np.ndarray:
    g = _gen_dtype(dt)
    z = stream.draw(lambda rng: rng.standard_normal(tuple(shape), dtype=g))
    return (z * g.type(scale) + g.type(mean)).astype(dt, copy=False)


def _uniform(stream: _Stream, shape, dt: np.dtype, low: float, high: float) -> np.ndarray:
    g = _gen_dtype(dt)
    u = stream.draw(lambda rng: rng.random(tuple(shape), dtype=g))
    return (u * g.type(high - low) + g.type(low)).astype(dt, copy=False)


def _like_dtype(node, x_dtype: np.dtype) -> np.dtype:
    dtype = node.attrs.get("dtype")
    return _float_dtype(x_dtype if dtype is None else np_dtype(dtype), node.op_type)


@kernel("RandomNormal", since=1, factory=True)
def random_normal_factory(node):
    a = node.attrs
    if "shape" not in a:
        raise ValueError(f"{node.describe()}: the 'shape' attribute is required")
    shape = [int(s) for s in a["shape"]]
    dt = _float_dtype(np_dtype(a.get("dtype", 1)), node.op_type)
    mean, scale = float(a.get("mean", 0.0)), float(a.get("scale", 1.0))
    stream = _Stream(a.get("seed"))
    return lambda: _normal(stream, shape, dt, mean, scale)


@kernel("RandomUniform", since=1, factory=True)
def random_uniform_factory(node):
    a = node.attrs
    if "shape" not in a:
        raise ValueError(f"{node.describe()}: the 'shape' attribute is required")
    shape = [int(s) for s in a["shape"]]
    dt = _float_dtype(np_dtype(a.get("dtype", 1)), node.op_type)
    low, high = float(a.get("low", 0.0)), float(a.get("high", 1.0))
    stream = _Stream(a.get("seed"))
    return lambda: _uniform(stream, shape, dt, low, high)


@kernel("RandomNormalLike", since=1, factory=True)
def random_normal_like_factory(node):
    a = node.attrs
    mean, scale = float(a.get("mean", 0.0)), float(a.get("scale", 1.0))
    stream = _Stream(a.get("seed"))

    def random_normal_like(input):
        x = np.asarray(input)
        return _normal(stream, x.shape, _like_dtype(node, x.dtype), mean, scale)

    return random_normal_like


@kernel("RandomUniformLike", since=1, factory=True)
def random_uniform_like_factory(node):
    a = node.attrs
    low, high = float(a.get("low", 0.0)), float(a.get("high", 1.0))
    stream = _Stream(a.get("seed"))

    def random_uniform_like(input):
        x = np.asarray(input)
        return _uniform(stream, x.shape, _like_dtype(node, x.dtype), low, high)

    return random_uniform_like


@kernel("Multinomial", since=7, factory=True)
def multinomial_factory(node):
    a = node.attrs
    dt = np_dtype(a.get("dtype", 6))
    if dt not in (np.int32, np.int64):
        raise ValueError(f"{node.describe()}: dtype must be int32 or int64, got {dt}")
    n = int(a.get("sample_size", 1))
    stream = _Stream(a.get("seed"))

    def multinomial(input):
        logits = np.asarray(input).astype(np.float64)
        if logits.ndim != 2:
            raise ValueError(f"Multinomial needs a [batch, classes] input, got {logits.shape}")
        b, k = logits.shape
        if k == 0:
            raise ValueError("Multinomial needs at least one class")
        u = stream.draw(lambda rng: rng.random((b, n)))
        if b == 0 or n == 0:
            return np.zeros((b, n), dtype=dt)
        # Inverse-CDF sampling for all rows at once: row i's CDF is shifted into [i, i+1] so a
        # single sorted search covers the batch.
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        rows = np.arange(b, dtype=np.float64)[:, None]
        hit = np.searchsorted((cdf + rows).ravel(), (u + rows).ravel(), side="right")
        idx = hit.reshape(b, n) - np.arange(b)[:, None] * k
        return np.clip(idx, 0, k - 1).astype(dt)

    return multinomial


@kernel("Bernoulli", since=15, factory=True)
def bernoulli_factory(node):
    dtype = node.attrs.get("dtype")
    stream = _Stream(node.attrs.get("seed"))

    def bernoulli(input):
        p = np.asarray(input)
        dt = p.dtype if dtype is None else np_dtype(dtype)
        u = stream.draw(lambda rng: rng.random(p.shape))
        return (u < p.astype(np.float64)).astype(dt)

    return bernoulli
