"""Reverse-mode derivatives for the Gradient kernel (``ai.onnx.preview.training``).

A :class:`Program` evaluates a captured :class:`~onnxlite.ir.gradient.Function` with the CPU
provider's own kernels, keeping every intermediate, then walks its nodes backwards: each rule maps
the gradient of a node's output to the gradients of its inputs. ``y`` is seeded with ones, so a
non-scalar ``y`` gives the gradient of the sum of its elements. An input that was broadcast gets
the gradient summed over the broadcast axes. Inputs that are not floating point (shapes, indices,
conditions) get none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ....ir.gradient import Function
from ....ir.graph import Graph, Node

# rule(attrs, op version, input values, output values, gradient of output 0) -> input gradients
Rule = Callable[[Mapping[str, Any], int, list[Any], list[Any], np.ndarray], list[Any]]

# Ops whose outputs carry no gradient (integer or boolean results, or piecewise constant ones).
NON_DIFFERENTIABLE = frozenset(
    {
        "Shape", "Size", "Constant", "ConstantOfShape", "Range", "EyeLike", "NonZero",
        "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor",
        "IsNaN", "IsInf", "ArgMax", "ArgMin", "Floor", "Ceil", "Round", "Sign",
    }
)  # fmt: skip


def unbroadcast(g: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``g`` summed over the axes along which an input of ``shape`` was broadcast to it."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if g.shape != shape:
        raise ValueError(f"a gradient of shape {list(g.shape)} does not fit its input's shape {list(shape)}")
    return g


def _swap(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _matmul(attrs, version, ins, outs, g):
    a, b = ins
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    da = g2 @ _swap(b2)
    db = _swap(a2) @ g2
    if a.ndim == 1:
        da = da.squeeze(-2)
    if b.ndim == 1:
        db = db.squeeze(-1)
    return [da, db]


def _gemm(attrs, version, ins, outs, g):
    a, b = ins[0], ins[1]
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    ta, tb = attrs.get("transA", 0), attrs.get("transB", 0)
    a2 = a.T if ta else a
    b2 = b.T if tb else b
    da = alpha * (g @ b2.T)
    db = alpha * (a2.T @ g)
    out = [da.T if ta else da, db.T if tb else db]
    if len(ins) > 2 and ins[2] is not None:
        out.append(beta * g)
    return out


def _transpose(attrs, version, ins, outs, g):
    perm = attrs.get("perm")
    if perm is None:
        return [g.transpose()]
    return [g.transpose(np.argsort(perm))]


def _reshaped(attrs, version, ins, outs, g):
    # Reshape, Flatten, Squeeze, Unsqueeze: the same elements in another shape
    return [g.reshape(ins[0].shape)] + [None] * (len(ins) - 1)


def _reduce_axes(attrs, version, ins, axes_input_since: int) -> tuple[int, ...] | None:
    """The reduced axes of a Reduce* node (None: none, the input passes through)."""
    x = ins[0]
    if version >= axes_input_since:
        given = ins[1] if len(ins) > 1 else None
        axes = None if given is None else [int(v) for v in np.asarray(given).reshape(-1)]
    else:
        axes = attrs.get("axes")
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return None
        return tuple(range(x.ndim))
    return tuple(sorted(a % x.ndim if x.ndim else 0 for a in axes))


def _reduce(mean: bool, axes_input_since: int) -> Rule:
    def rule(attrs, version, ins, outs, g):
        x = ins[0]
        axes = _reduce_axes(attrs, version, ins, axes_input_since)
        if axes is None:
            return [g] + [None] * (len(ins) - 1)
        kept = [1 if i in axes else n for i, n in enumerate(x.shape)]
        d = np.broadcast_to(g.reshape(kept), x.shape)
        if mean:
            d = d / max(1, math.prod(x.shape[i] for i in axes))
        return [np.array(d)] + [None] * (len(ins) - 1)

    return rule


def _softmax_axis(attrs, version, y: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """(y as the op normalizes it, axis, whether it was coerced to 2-D)."""
    if version >= 13:
        return y, int(attrs.get("axis", -1)), False
    axis = int(attrs.get("axis", 1)) % max(y.ndim, 1)
    return y.reshape(math.prod(y.shape[:axis]), -1), 1, True


def _softmax(attrs, version, ins, outs, g):
    y, axis, coerced = _softmax_axis(attrs, version, outs[0])
    g2 = g.reshape(y.shape) if coerced else g
    d = y * (g2 - (g2 * y).sum(axis=axis, keepdims=True))
    return [d.reshape(outs[0].shape)]


def _log_softmax(attrs, version, ins, outs, g):
    y, axis, coerced = _softmax_axis(attrs, version, outs[0])
    g2 = g.reshape(y.shape) if coerced else g
    d = g2 - np.exp(y) * g2.sum(axis=axis, keepdims=True)
    return [d.reshape(outs[0].shape)]


def _concat(attrs, version, ins, outs, g):
    axis = int(attrs["axis"]) % g.ndim
    bounds = np.cumsum([x.shape[axis] for x in ins])[:-1]
    return list(np.split(g, bounds, axis=axis))


def _clip(attrs, version, ins, outs, g):
    x = ins[0]
    if version >= 11:
        lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
        hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
    else:
        lo, hi = attrs.get("min", -np.inf), attrs.get("max", np.inf)
    return [g * ((x >= lo) & (x <= hi))] + [None] * (len(ins) - 1)


def _pow(attrs, version, ins, outs, g):
    a, b = ins
    da = g * b * np.power(a, b - 1)
    if b.dtype.kind != "f":
        return [da, None]
    positive = a > 0
    return [da, g * outs[0] * np.log(np.where(positive, a, 1)) * positive]


def _cast(attrs, version, ins, outs, g):
    return [g.astype(ins[0].dtype) if ins[0].dtype.kind == "f" else None]


def _where(attrs, version, ins, outs, g):
    c = ins[0]
    zero = np.zeros((), g.dtype)
    return [None, np.where(c, g, zero), np.where(c, zero, g)]


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

RULES: dict[str, Rule] = {
    "Identity": lambda at, v, i, o, g: [g],
    "Neg": lambda at, v, i, o, g: [-g],
    "Add": lambda at, v, i, o, g: [g, g],
    "Sub": lambda at, v, i, o, g: [g, -g],
    "Mul": lambda at, v, i, o, g: [g * i[1], g * i[0]],
    "Div": lambda at, v, i, o, g: [g / i[1], -g * o[0] / i[1]],
    "Sum": lambda at, v, i, o, g: [g] * len(i),
    "Mean": lambda at, v, i, o, g: [g / len(i)] * len(i),
    "Pow": _pow,
    "Sqrt": lambda at, v, i, o, g: [g * 0.5 / o[0]],
    "Exp": lambda at, v, i, o, g: [g * o[0]],
    "Log": lambda at, v, i, o, g: [g / i[0]],
    "Abs": lambda at, v, i, o, g: [g * np.sign(i[0])],
    "Reciprocal": lambda at, v, i, o, g: [-g * o[0] * o[0]],
    "Relu": lambda at, v, i, o, g: [g * (i[0] > 0)],
    "LeakyRelu": lambda at, v, i, o, g: [np.where(i[0] > 0, g, g * at.get("alpha", 0.01))],
    "Sigmoid": lambda at, v, i, o, g: [g * o[0] * (1 - o[0])],
    "Tanh": lambda at, v, i, o, g: [g * (1 - o[0] * o[0])],
    "Softplus": lambda at, v, i, o, g: [g / (1 + np.exp(-i[0]))],
    "Erf": lambda at, v, i, o, g: [g * _TWO_OVER_SQRT_PI * np.exp(-i[0] * i[0])],
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Transpose": _transpose,
    "Reshape": _reshaped,
    "Flatten": _reshaped,
    "Squeeze": _reshaped,
    "Unsqueeze": _reshaped,
    "Expand": lambda at, v, i, o, g: [g, None],
    "Cast": _cast,
    "ReduceSum": _reduce(mean=False, axes_input_since=13),
    "ReduceMean": _reduce(mean=True, axes_input_since=18),
    "Softmax": _softmax,
    "LogSoftmax": _log_softmax,
    "Concat": _concat,
    "Clip": _clip,
    "Where": _where,
}


class Program:
    """A captured function bound to CPU kernels: ``program(*xs, *zs)`` -> d(sum y)/dx per x."""

    def __init__(self, fn: Function, opsets: Mapping[str, int], where: str) -> None:
        from ....plan import node_info
        from ...base import schema_version
        from ..provider import CPUExecutionProvider

        self.fn = fn
        cpu = CPUExecutionProvider()
        graph = Graph("gradient", fn.nodes, [], [], dict(fn.constants))
        self.steps: list[tuple[Node, int, Callable[..., Any]]] = []
        varying = set(fn.xs)  # values that depend on an x: their producers need a rule
        for n in fn.nodes:
            info = node_info(n, schema_version(n, opsets), graph, opsets, {}, ())
            if any(i in varying for i in n.inputs):
                varying.update(o for o in n.outputs if o)
                known = n.op_type in RULES or n.op_type in NON_DIFFERENTIABLE
                if not known or n.domain not in ("", "ai.onnx"):
                    raise NotImplementedError(
                        f"{where}: no derivative for {n.describe()} on the way from xs to y; "
                        f"differentiable ops: {sorted(RULES)}"
                    )
            self.steps.append((n, info.version, cpu.kernel(info, n, opsets)))

    def __call__(self, *values: Any) -> tuple[np.ndarray, ...]:
        from ....plan import freeze

        fn = self.fn
        env: dict[str, Any] = dict(fn.constants)
        env.update(zip(fn.xs + fn.zs, values))
        for n, _, kern in self.steps:
            names = list(n.inputs)
            while names and not names[-1]:
                names.pop()
            res = kern(*[freeze(env[i]) if i else None for i in names])
            outs = [res[0] if type(res) is tuple else res] if len(n.outputs) == 1 else list(res)
            env.update((o, r) for o, r in zip(n.outputs, outs) if o)
        y = np.asarray(env[fn.y])
        if y.dtype.kind != "f":
            raise ValueError(f"y {fn.y!r} must be floating point to differentiate, got {y.dtype}")
        grads: dict[str, np.ndarray] = {fn.y: np.ones_like(y)}
        for n, version, _ in reversed(self.steps):
            g = grads.get(n.outputs[0]) if n.outputs else None
            if g is None or n.op_type in NON_DIFFERENTIABLE:
                continue
            ins = [np.asarray(env[i]) if i else None for i in n.inputs]
            outs = [np.asarray(env[o]) if o else None for o in n.outputs]
            for name, x, d in zip(n.inputs, ins, RULES[n.op_type](n.attrs, version, ins, outs, g)):
                if not name or x is None or d is None or x.dtype.kind != "f":
                    continue
                d = unbroadcast(np.asarray(d), x.shape).astype(x.dtype, copy=False)
                grads[name] = d if name not in grads else grads[name] + d
        out = []
        for name, value in zip(fn.xs, values):
            xv = np.asarray(value)
            dx = grads.get(name)
            out.append(np.zeros_like(xv) if dx is None else dx.astype(xv.dtype, copy=False))
        return tuple(out)
