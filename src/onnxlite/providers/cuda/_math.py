"""Elementwise ops, activations, GEMMs, softmax and normalisations over an array namespace.

Every kernel takes its namespace from its inputs (``be.ns``): cupy on the GPU, where
``matmul`` is a cuBLAS GEMM and elementwise expressions are CUDA kernels; numpy on the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..registry import NodeInfo
from ._backend import Backend, builds, compute_dtype

MS = "com.microsoft"
_SQRT_HALF = 1.0 / math.sqrt(2.0)
_TANH_GELU = math.sqrt(2.0 / math.pi)

Act = Callable[[Any, Any], Any]  # (namespace, x) -> y


def _sigmoid(m: Any, x: Any) -> Any:
    # exp(-x) overflows to inf for very negative x, which gives the right limit 0.
    return 1 / (1 + m.exp(-x))


def _softplus(m: Any, x: Any) -> Any:
    return m.maximum(x, 0) + m.log1p(m.exp(-m.abs(x)))


def gelu_erf(be: Backend, m: Any, x: Any) -> Any:
    xc = x.astype(compute_dtype(x.dtype), copy=False)
    erf = be.erf if m is be.xp else _host_erf
    return (0.5 * xc * (1 + erf(xc * _SQRT_HALF))).astype(x.dtype, copy=False)


def gelu_tanh(m: Any, x: Any) -> Any:
    xc = x.astype(compute_dtype(x.dtype), copy=False)
    return (0.5 * xc * (1 + m.tanh(_TANH_GELU * (xc + 0.044715 * xc * xc * xc)))).astype(x.dtype, copy=False)


def _host_erf(x: Any) -> Any:
    from ..cpu.kernels.elementwise import erf

    return erf(x)


def activation(name: str, alpha: float | None = None, beta: float | None = None) -> Act | None:
    """A fused activation (FusedConv / FusedGemm); None for none; ONNX defaults where absent."""

    def p(v: float | None, default: float) -> float:
        return default if v is None else float(v)

    if name in ("", "Identity"):
        return None
    if name == "Relu":
        return lambda m, x: m.maximum(x, 0)
    if name == "Tanh":
        return lambda m, x: m.tanh(x)
    if name == "Sigmoid":
        return _sigmoid
    if name == "LeakyRelu":
        a = p(alpha, 0.01)
        return lambda m, x: m.where(x >= 0, x, x * a)
    if name == "HardSigmoid":
        a, b = p(alpha, 0.2), p(beta, 0.5)
        return lambda m, x: m.clip(x * a + b, 0, 1)
    if name == "Elu":
        a = p(alpha, 1.0)
        return lambda m, x: m.where(x > 0, x, a * m.expm1(m.minimum(x, 0)))
    if name == "Clip":
        lo, hi = p(alpha, -math.inf), p(beta, math.inf)
        return lambda m, x: m.clip(x, lo, hi)
    if name == "HardSwish":
        return lambda m, x: x * m.clip(x * (1 / 6) + 0.5, 0, 1)
    if name == "Softplus":
        return _softplus
    raise ValueError(f"unsupported fused activation {name!r}")


FUSED_ACTIVATIONS: tuple[str, ...] = ("", "Identity", "Relu", "Tanh", "Sigmoid", "LeakyRelu", "HardSigmoid")
FUSED_ACTIVATIONS += ("Elu", "Clip", "HardSwish", "Softplus")


# --------------------------------------------------------------------------- unary


def _unary_table(a: dict[str, Any]) -> dict[str, Act]:
    def f(name: str, default: float) -> float:
        return float(a.get(name, default))

    return {
        "Relu": lambda m, x: m.maximum(x, 0),
        "Sigmoid": _sigmoid,
        "Tanh": lambda m, x: m.tanh(x),
        "Exp": lambda m, x: m.exp(x),
        "Log": lambda m, x: m.log(x),
        "Sqrt": lambda m, x: m.sqrt(x),
        "Abs": lambda m, x: m.abs(x),
        "Neg": lambda m, x: m.negative(x),
        "Reciprocal": lambda m, x: m.reciprocal(x),
        "Floor": lambda m, x: m.floor(x),
        "Ceil": lambda m, x: m.ceil(x),
        "Not": lambda m, x: m.logical_not(x),
        "IsNaN": lambda m, x: m.isnan(x),
        "Softplus": _softplus,
        "LeakyRelu": activation("LeakyRelu", f("alpha", 0.01)),  # type: ignore[dict-item]
        "Elu": activation("Elu", f("alpha", 1.0)),  # type: ignore[dict-item]
        "HardSigmoid": activation("HardSigmoid", f("alpha", 0.2), f("beta", 0.5)),  # type: ignore[dict-item]
        "HardSwish": activation("HardSwish"),  # type: ignore[dict-item]
    }


UNARY = (
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil",
    "Not", "IsNaN", "Softplus", "LeakyRelu", "Elu", "HardSigmoid", "HardSwish",
)  # fmt: skip


@builds(*UNARY)
def build_unary(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    fn = _unary_table(dict(info.attrs))[info.op_type]

    def unary(x: Any) -> Any:
        return fn(be.ns(x), x)

    return unary


@builds("Erf")
def build_erf(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    def erf(x: Any) -> Any:
        m = be.ns(x)
        xc = x.astype(compute_dtype(x.dtype), copy=False)
        return (be.erf(xc) if m is be.xp else _host_erf(xc)).astype(x.dtype, copy=False)

    return erf


@builds("Gelu")
def build_gelu(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    if info.attrs.get("approximate", "none") == "tanh":
        return lambda x: gelu_tanh(be.ns(x), x)
    return lambda x: gelu_erf(be, be.ns(x), x)


@builds("Gelu", domain=MS)
def build_ms_gelu(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    return lambda x: gelu_erf(be, be.ns(x), x)


@builds("BiasGelu", domain=MS)
def build_bias_gelu(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    def bias_gelu(x: Any, b: Any) -> Any:
        m = be.ns(x, b)
        return gelu_erf(be, m, m.asarray(x) + m.asarray(b))

    return bias_gelu


@builds("FastGelu", domain=MS)
def build_fast_gelu(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    def fast_gelu(x: Any, b: Any = None) -> Any:
        m = be.ns(x, b)
        x = m.asarray(x)
        return gelu_tanh(m, x if b is None else x + m.asarray(b))

    return fast_gelu


@builds("Clip")
def build_clip(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    if info.version < 11:
        lo, hi = float(info.attrs.get("min", -math.inf)), float(info.attrs.get("max", math.inf))
        return lambda x: be.ns(x).clip(x, lo, hi)

    def clip(x: Any, lo: Any = None, hi: Any = None) -> Any:
        m = be.ns(x)
        # the bounds are 0-d tensors: read them on the host (they are read once per run)
        y = x
        if lo is not None:
            y = m.maximum(y, x.dtype.type(be.to_host(lo)))
        if hi is not None:
            y = m.minimum(y, x.dtype.type(be.to_host(hi)))
        return y if y is not x else x.copy()

    return clip


# --------------------------------------------------------------------------- binary and variadic

_BINARY: dict[str, Callable[[Any, Any, Any], Any]] = {
    "Add": lambda m, a, b: m.add(a, b),
    "Sub": lambda m, a, b: m.subtract(a, b),
    "Mul": lambda m, a, b: m.multiply(a, b),
    "Div": lambda m, a, b: m.divide(a, b),
    "Pow": lambda m, a, b: m.power(a, b),
    "Equal": lambda m, a, b: m.equal(a, b),
    "Less": lambda m, a, b: m.less(a, b),
    "Greater": lambda m, a, b: m.greater(a, b),
    "LessOrEqual": lambda m, a, b: m.less_equal(a, b),
    "GreaterOrEqual": lambda m, a, b: m.greater_equal(a, b),
    "And": lambda m, a, b: m.logical_and(a, b),
    "Or": lambda m, a, b: m.logical_or(a, b),
    "Xor": lambda m, a, b: m.logical_xor(a, b),
}
BINARY = tuple(_BINARY)


@builds(*BINARY)
def build_binary(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    fn = _BINARY[info.op_type]

    def binary(a: Any, b: Any) -> Any:
        m = be.ns(a, b)
        return m.asarray(fn(m, m.asarray(a), m.asarray(b)))

    return binary


_VARIADIC = {"Sum": "add", "Max": "maximum", "Min": "minimum"}


@builds("Sum", "Max", "Min", "Mean")
def build_variadic(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    name = _VARIADIC.get(info.op_type, "add")
    mean = info.op_type == "Mean"

    def variadic(*xs: Any) -> Any:
        m = be.ns(*xs)
        f = getattr(m, name)
        y = m.asarray(xs[0])
        for x in xs[1:]:
            y = f(y, m.asarray(x))
        if mean:
            y = y / len(xs)
        return y if len(xs) > 1 or mean else y.copy()

    return variadic


@builds("Where")
def build_where(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    def where(c: Any, x: Any, y: Any) -> Any:
        m = be.ns(c, x, y)
        return m.where(m.asarray(c), m.asarray(x), m.asarray(y))

    return where


# --------------------------------------------------------------------------- GEMMs


@builds("MatMul")
def build_matmul(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    def matmul(a: Any, b: Any) -> Any:
        m = be.ns(a, b)
        return m.matmul(m.asarray(a), m.asarray(b))

    return matmul


def _gemm(info: NodeInfo, be: Backend, act: Act | None) -> Callable[..., Any]:
    a_ = info.attrs
    alpha, beta = float(a_.get("alpha", 1.0)), float(a_.get("beta", 1.0))
    ta, tb = bool(int(a_.get("transA", 0))), bool(int(a_.get("transB", 0)))

    def gemm(a: Any, b: Any, c: Any = None) -> Any:
        m = be.ns(a, b, c)
        a, b = m.asarray(a), m.asarray(b)
        y = m.matmul(a.T if ta else a, b.T if tb else b)
        if alpha != 1.0:
            y *= alpha
        if c is not None and beta != 0.0:
            c = m.asarray(c)
            y += c if beta == 1.0 else c * beta
        return y if act is None else act(m, y)

    return gemm


@builds("Gemm")
def build_gemm(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    return _gemm(info, be, None)


@builds("FusedGemm", domain=MS)
def build_fused_gemm(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    a = info.attrs
    act = activation(a.get("activation", ""), a.get("activation_alpha"), a.get("activation_beta"))
    return _gemm(info, be, act)


# --------------------------------------------------------------------------- softmax and norms


def _softmax(m: Any, x: Any, axis: int, log: bool) -> Any:
    xc = x.astype(compute_dtype(x.dtype), copy=False)
    z = xc - xc.max(axis=axis, keepdims=True)
    e = m.exp(z)
    s = e.sum(axis=axis, keepdims=True)
    y = z - m.log(s) if log else e / s
    return y.astype(x.dtype, copy=False)


@builds("Softmax", "LogSoftmax")
def build_softmax(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    log = info.op_type == "LogSoftmax"
    if info.version < 13:  # the input is coerced to 2-D at axis
        axis = int(info.attrs.get("axis", 1))

        def softmax_2d(x: Any) -> Any:
            ax = axis + x.ndim if axis < 0 else axis
            rows = math.prod(x.shape[:ax])
            return _softmax(be.ns(x), x.reshape(rows, -1), 1, log).reshape(x.shape)

        return softmax_2d
    axis = int(info.attrs.get("axis", -1))
    return lambda x: _softmax(be.ns(x), x, axis, log)


def _normalize(m: Any, s: Any, axes: tuple[int, ...], epsilon: float) -> Any:
    mean = s.mean(axis=axes, keepdims=True)
    d = s - mean
    var = (d * d).mean(axis=axes, keepdims=True)
    return d * (1 / m.sqrt(var + epsilon))


@builds("LayerNormalization")
def build_layer_norm(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    axis = int(info.attrs.get("axis", -1))
    eps = float(info.attrs.get("epsilon", 1e-5))

    def layer_norm(x: Any, scale: Any, b: Any = None) -> Any:
        m = be.ns(x, scale, b)
        x = m.asarray(x)
        ax = axis + x.ndim if axis < 0 else axis
        ct = compute_dtype(x.dtype)
        y = _normalize(m, x.astype(ct, copy=False), tuple(range(ax, x.ndim)), eps)
        y *= m.asarray(scale).astype(ct, copy=False)
        if b is not None:
            y += m.asarray(b).astype(ct, copy=False)
        return y.astype(x.dtype, copy=False)

    return layer_norm


@builds("SkipLayerNormalization", domain=MS)
def build_skip_layer_norm(info: NodeInfo, be: Backend) -> Callable[..., Any]:
    eps = float(info.attrs.get("epsilon", 1e-12))
    n_out = len(info.outputs)

    def skip_layer_norm(x: Any, skip: Any, gamma: Any, beta: Any = None, bias: Any = None) -> Any:
        m = be.ns(x, skip, gamma, beta, bias)
        x = m.asarray(x)
        ct = compute_dtype(x.dtype)
        s = x.astype(ct) + m.asarray(skip).astype(ct, copy=False)
        if bias is not None:
            s += m.asarray(bias).astype(ct, copy=False)
        y = _normalize(m, s, (-1,), eps) * m.asarray(gamma).astype(ct, copy=False)
        if beta is not None:
            y += m.asarray(beta).astype(ct, copy=False)
        y = y.astype(x.dtype, copy=False)
        if n_out < 4:  # mean and inv_std_var are declined by the provider: never computed
            return (y,) + (None,) * (n_out - 1)
        return y, None, None, s.astype(x.dtype, copy=False)

    return skip_layer_norm
