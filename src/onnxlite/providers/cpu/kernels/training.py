"""Kernels of the ``ai.onnx.preview.training`` domain: the optimizers Adagrad, Adam and
Momentum, and Gradient (reverse-mode differentiation, :mod:`._derivatives`).

Each optimizer takes ``R`` (learning rate), ``T`` (update count) and then n tensors per group
(X..., G..., state...), and returns the updated groups in the same order (X_new...,
state_new...). The update is computed in float64 and cast back to each tensor's dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ....ir.gradient import FUNCTION_ATTR, Function
from ...registry import NodeInfo
from ..registry import kernel
from ._derivatives import Program

DOMAIN = "ai.onnx.preview.training"


def _groups(op: str, xs: tuple, k: int) -> list[tuple]:
    if not xs or len(xs) % k:
        raise ValueError(f"{op} expects {k} groups of equally many tensors, got {len(xs)} inputs")
    n = len(xs) // k
    return [xs[j * n : (j + 1) * n] for j in range(k)]


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _scalar(a) -> float:
    return float(np.asarray(a).reshape(-1)[0])


@kernel("Adagrad", since=1, domain=DOMAIN)
def adagrad(r, t, *xs, decay_factor=0.0, epsilon=1e-6, norm_coefficient=0.0):
    x_, g_, h_ = _groups("Adagrad", xs, 3)
    lr = _scalar(r) / (1.0 + _scalar(t) * decay_factor)
    new_x, new_h = [], []
    for x, g, h in zip(x_, g_, h_):
        gr = norm_coefficient * _f64(x) + _f64(g)
        h2 = _f64(h) + gr * gr
        new_x.append((_f64(x) - lr * gr / (np.sqrt(h2) + epsilon)).astype(np.asarray(x).dtype))
        new_h.append(h2.astype(np.asarray(h).dtype))
    return (*new_x, *new_h)


@kernel("Adam", since=1, domain=DOMAIN)
def adam(
    r,
    t,
    *xs,
    alpha=0.9,
    beta=0.999,
    epsilon=1e-6,
    norm_coefficient=0.0,
    norm_coefficient_post=0.0,
):
    x_, g_, v_, h_ = _groups("Adam", xs, 4)
    step = _scalar(t)
    lr = _scalar(r)
    if step > 0:  # bias correction of both moments
        lr = lr * np.sqrt(1.0 - beta**step) / (1.0 - alpha**step)
    new_x, new_v, new_h = [], [], []
    for x, g, v, h in zip(x_, g_, v_, h_):
        gr = norm_coefficient * _f64(x) + _f64(g)
        v2 = alpha * _f64(v) + (1.0 - alpha) * gr
        h2 = beta * _f64(h) + (1.0 - beta) * gr * gr
        x2 = (1.0 - norm_coefficient_post) * (_f64(x) - lr * v2 / (np.sqrt(h2) + epsilon))
        new_x.append(x2.astype(np.asarray(x).dtype))
        new_v.append(v2.astype(np.asarray(v).dtype))
        new_h.append(h2.astype(np.asarray(h).dtype))
    return (*new_x, *new_v, *new_h)


@kernel("Momentum", since=1, domain=DOMAIN)
def momentum(r, t, *xs, alpha=None, beta=None, mode=None, norm_coefficient=None):
    missing = [
        k
        for k, v in (("alpha", alpha), ("beta", beta), ("mode", mode), ("norm_coefficient", norm_coefficient))
        if v is None
    ]
    if missing:
        raise ValueError(f"Momentum requires attribute(s) {missing}")
    if mode not in ("standard", "nesterov"):
        raise ValueError(f"Momentum mode must be 'standard' or 'nesterov', got {mode!r}")
    x_, g_, v_ = _groups("Momentum", xs, 3)
    lr = _scalar(r)
    # the gradient's coefficient is 1 at the first update
    b = beta if _scalar(t) > 0 else 1.0
    new_x, new_v = [], []
    for x, g, v in zip(x_, g_, v_):
        gr = norm_coefficient * _f64(x) + _f64(g)
        v2 = alpha * _f64(v) + b * gr
        d = v2 if mode == "standard" else gr + alpha * v2
        new_x.append((_f64(x) - lr * d).astype(np.asarray(x).dtype))
        new_v.append(v2.astype(np.asarray(v).dtype))
    return (*new_x, *new_v)


@kernel("Gradient", since=1, domain=DOMAIN, factory=True)
def make_gradient(info: NodeInfo) -> Callable[..., Any]:
    fn = info.attrs.get(FUNCTION_ATTR)
    if not isinstance(fn, Function):
        # captured when the model is loaded; a node added to the graph later has none
        raise ValueError(f"{info.describe()}: the function to differentiate was not captured at load")
    program = Program(fn, info.opsets, info.describe())
    single = info.n_outputs == 1

    def gradient(*values: Any) -> Any:
        out = program(*values)
        return out[0] if single else out

    return gradient
