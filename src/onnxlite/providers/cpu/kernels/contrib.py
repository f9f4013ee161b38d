"""com.microsoft contrib ops that onnxruntime's optimizers and exporters write into models:
fused Conv/Gemm/MatMul, the Gelu family, skip/embed/simplified layer normalizations, BiasAdd,
BiasSoftmax, Inverse, Trilu, GatherND and RotaryEmbedding.

Semantics follow onnxruntime's CPU kernels (checked empirically against onnxruntime); 16-bit
floats are computed in float32 and rounded once.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ....types import np_dtype
from .. import blas
from ..inplace import relu_into
from ..registry import kernel
from ..workers import for_rows
from .activation import (
    celu,
    elu,
    gelu,
    gelu_f32,
    hard_sigmoid,
    hard_swish,
    leaky_relu,
    relu,
    selu,
    sigmoid,
    softplus,
    softsign,
    swish,
    tanh,
    thresholded_relu,
)
from .attention import rotary_embedding as _rotary_onnx
from .conv import compute_dtype, conv
from .indexing import gather_nd
from .linalg import f32_gemm, gemm, gemm_fn
from .normalization import layer_normalization
from .tensor import trilu

MS = "com.microsoft"
_F32 = np.dtype(np.float32)


# --------------------------------------------------------------------------- fused activations


def _scaled_tanh(x, alpha, beta):
    return (alpha * np.tanh(beta * x.astype(compute_dtype(x.dtype)))).astype(x.dtype)


def _param_softplus(x, alpha, beta):
    xc = x.astype(compute_dtype(x.dtype))
    return (alpha * softplus(xc * xc.dtype.type(beta))).astype(x.dtype)


def _relu_inplace(x):
    return relu_into(x) if x.dtype.kind == "f" else relu(x)


_relu_inplace.relu_in_place = True  # type: ignore[attr-defined]  # float32 callers may inline it


def _activation(name: str, alpha=None, beta=None, gamma=None):
    """The elementwise function of a fused activation; ONNX defaults where a parameter is absent.

    It may overwrite its argument: the fused kernels pass it their own fresh result. Built once
    per name and parameters (building its table cost a small convolution 3 us a call).
    """
    try:
        return _cached_activation(name, alpha, beta, gamma)
    except TypeError:  # an unhashable parameter: built afresh
        return _make_activation(name, alpha, beta, gamma)


def _make_activation(name: str, alpha=None, beta=None, gamma=None):

    def p(v, default):
        return default if v is None else float(v)

    table = {
        "": lambda x: x,
        "Identity": lambda x: x,
        "Relu": _relu_inplace,
        "Tanh": tanh,
        "Sigmoid": sigmoid,
        "HardSwish": hard_swish,
        "Softplus": softplus,
        "Softsign": softsign,
        "LeakyRelu": lambda x: leaky_relu(x, alpha=p(alpha, 0.01)),
        "HardSigmoid": lambda x: hard_sigmoid(x, alpha=p(alpha, 0.2), beta=p(beta, 0.5)),
        "Elu": lambda x: elu(x, alpha=p(alpha, 1.0)),
        "Celu": lambda x: celu(x, alpha=p(alpha, 1.0)),
        "ThresholdedRelu": lambda x: thresholded_relu(x, alpha=p(alpha, 1.0)),
        "Selu": lambda x: selu(
            x, alpha=p(alpha, 1.67326319217681884765625), gamma=p(gamma, 1.05070102214813232421875)
        ),
        "ScaledTanh": lambda x: _scaled_tanh(x, p(alpha, 1.0), p(beta, 1.0)),
        "ParametricSoftplus": lambda x: _param_softplus(x, p(alpha, 1.0), p(beta, 1.0)),
        "Clip": lambda x: np.clip(
            x,
            x.dtype.type(p(alpha, -np.inf)),
            x.dtype.type(p(beta, np.inf)),
            out=x if x.dtype.kind == "f" else None,
        ),
    }
    if name not in table:
        raise ValueError(f"unsupported fused activation {name!r}")
    return table[name]


_cached_activation = functools.lru_cache(maxsize=64)(_make_activation)


@kernel("FusedConv", since=1, domain=MS)
def fused_conv(
    x,
    w,
    b=None,
    z=None,
    *,
    activation="",
    activation_params=None,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    """act(Conv(x, w, b) + z); activation_params are (alpha) for LeakyRelu, (min, max) for Clip
    and (alpha, beta) for HardSigmoid."""
    params = list(activation_params or [])
    params += [None] * (2 - len(params))
    act = _activation(activation, params[0], params[1])
    y = conv(
        x,
        w,
        b,
        auto_pad=auto_pad,
        dilations=dilations,
        group=group,
        kernel_shape=kernel_shape,
        pads=pads,
        strides=strides,
    )
    if z is not None:
        same = z.dtype == y.dtype and z.shape == y.shape
        if same and y.dtype.kind == "f" and y.dtype == compute_dtype(y.dtype):
            np.add(y, z, out=y)  # y is this kernel's own fresh result
        else:
            y = (y.astype(compute_dtype(y.dtype)) + z.astype(compute_dtype(z.dtype))).astype(y.dtype)
    return act(y)


_FUSED_GEMM_ATTRS = frozenset(
    {
        "alpha",
        "beta",
        "transA",
        "transB",
        "activation",
        "activation_alpha",
        "activation_beta",
        "activation_gamma",
    }
)


@kernel("FusedGemm", since=1, domain=MS, factory=True)
def fused_gemm_kernel(node):
    a = dict(node.attrs)
    unknown = sorted(set(a) - _FUSED_GEMM_ATTRS)
    if unknown:
        raise ValueError(f"{node.describe()}: unsupported attribute(s) {unknown}")
    act = None
    if a.get("activation", "") not in ("", "Identity"):
        act = _activation(
            a["activation"], a.get("activation_alpha"), a.get("activation_beta"), a.get("activation_gamma")
        )
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    return gemm_fn(alpha, beta, a.get("transA", 0), a.get("transB", 0), act, f32_gemm(node))


def fused_gemm(
    a,
    b,
    c=None,
    *,
    alpha=1.0,
    beta=1.0,
    transA=0,
    transB=0,
    activation="",
    activation_alpha=None,
    activation_beta=None,
    activation_gamma=None,
):
    y = gemm(a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB)
    return _activation(activation, activation_alpha, activation_beta, activation_gamma)(y)


def _batch_transposed(x: np.ndarray, trans_batch: int, trans: int) -> np.ndarray:
    """FusedMatMul's logical operand: transBatch moves dim 0 to just before the last dim (the
    stored layout is [M, batch..., K]); trans swaps the last two dims of the result."""
    if x.ndim < 3 or not trans_batch:
        return x.swapaxes(-1, -2) if trans and x.ndim >= 2 else x
    n = x.ndim
    if trans:
        return x.transpose((*range(1, n - 1), n - 1, 0))
    return x.transpose((*range(1, n - 1), 0, n - 1))


@kernel("FusedMatMul", since=1, domain=MS)
def fused_matmul(a, b, *, alpha=1.0, transA=0, transB=0, transBatchA=0, transBatchB=0):
    dt = a.dtype
    ct = compute_dtype(dt)
    aa = _batch_transposed(a.astype(ct, copy=False), transBatchA, transA)
    bb = _batch_transposed(b.astype(ct, copy=False), transBatchB, transB)
    y = blas.matmul(aa, bb)  # split across the workers when large
    if alpha != 1.0:
        y *= ct.type(alpha)
    return y.astype(dt, copy=False)


def fused_matmul_feature_major(a, b):
    """FusedMatMul(a, b, transB=1) for weights stored transposed (providers.cpu.layout), whose
    consumers take the product as a transposed view."""
    if a.dtype == _F32 and b.dtype == _F32 and a.ndim >= 2 and b.ndim == 2:
        return blas.matmul_feature_major(a, b)
    return fused_matmul(a, b, transB=1)


# --------------------------------------------------------------------------- Gelu family


def _add_bias(x, bias):
    if bias is None:
        return x
    ct = compute_dtype(x.dtype)
    return (x.astype(ct) + bias.astype(ct)).astype(x.dtype)


@kernel("Gelu", since=1, domain=MS)
def ms_gelu(x):
    return gelu(x, approximate="none")


@kernel("BiasGelu", since=1, domain=MS)
def bias_gelu(a, b):
    if a.dtype == np.float32 and a.size and b.ndim == 1 and a.shape[-1] == b.shape[0]:
        return gelu_f32(a, b, "none")
    return gelu(_add_bias(a, b), approximate="none")


@kernel("FastGelu", since=1, domain=MS)
def fast_gelu(x, bias=None):
    plain_bias = bias is None or (bias.ndim == 1 and x.shape[-1] == bias.shape[0])
    if x.dtype == np.float32 and x.size and plain_bias:
        return gelu_f32(x, bias, "tanh")
    return gelu(_add_bias(x, bias), approximate="tanh")


@kernel("QuickGelu", since=1, domain=MS)
def quick_gelu(x, *, alpha=1.702):
    return swish(x, alpha=alpha)


@kernel("BiasAdd", since=1, domain=MS)
def bias_add(x, bias, skip):
    ct = compute_dtype(x.dtype)
    return (x.astype(ct) + bias.astype(ct) + skip.astype(ct)).astype(x.dtype)


# --------------------------------------------------------------------------- layer norms


def _norm_rows(s: np.ndarray, epsilon: float, simplified: bool):
    """Row-wise (last axis) normalization of float array s: (normalized, mean, inv_std)."""
    if simplified:
        mean = np.zeros((*s.shape[:-1], 1), dtype=s.dtype)
        dev = s
    else:
        mean = s.mean(axis=-1, keepdims=True)
        dev = s - mean
    var = np.einsum("...i,...i->...", dev, dev)[..., None] / s.dtype.type(max(s.shape[-1], 1))
    inv = 1.0 / np.sqrt(var + s.dtype.type(epsilon))
    return dev * inv, mean, inv


def _skip_norm_f32(x, skip, gamma, beta, bias, epsilon, simplified):
    """The float32 case, row blocks on the workers, no temporaries beyond the outputs."""
    f32 = np.float32
    cols = x.shape[-1]
    rows_n = x.size // cols
    x2, k2 = x.reshape(rows_n, cols), skip.reshape(rows_n, cols)
    ssum = np.empty((rows_n, cols), f32)
    y = np.empty((rows_n, cols), f32)
    mean = np.zeros((rows_n, 1), f32)
    inv = np.empty((rows_n, 1), f32)
    eps, n = f32(epsilon), f32(max(cols, 1))
    ones = np.ones((cols, 1), f32)

    def rows(r0: int, r1: int) -> None:
        sv, yv = ssum[r0:r1], y[r0:r1]
        np.add(x2[r0:r1], k2[r0:r1], out=sv)
        if bias is not None:
            sv += bias
        if simplified:
            yv[...] = sv
        else:
            # row sums as a product with ones: BLAS runs it 4x faster than a reduction
            # along the short last axis
            m = mean[r0:r1]
            np.matmul(sv, ones, out=m)
            m /= n
            np.subtract(sv, m, out=yv)
        iv = inv[r0:r1]
        iv[:, 0] = np.einsum("ij,ij->i", yv, yv)
        iv /= n
        iv += eps
        np.sqrt(iv, out=iv)
        np.reciprocal(iv, out=iv)
        yv *= iv
        yv *= gamma
        if beta is not None:
            yv += beta

    for_rows(rows_n, cols, rows)
    stat = (*x.shape[:-1], 1)
    return y.reshape(x.shape), mean.reshape(stat), inv.reshape(stat), ssum.reshape(x.shape)


def _skip_norm(x, skip, gamma, beta, bias, epsilon, simplified):
    vecs = [v for v in (gamma, beta, bias) if v is not None]
    if (
        x.dtype == np.float32
        and x.size
        and skip.shape == x.shape
        and skip.dtype == np.float32
        and all(v.dtype == np.float32 and v.shape == x.shape[-1:] for v in vecs)
    ):
        return _skip_norm_f32(x, skip, gamma, beta, bias, epsilon, simplified)
    dt = x.dtype
    ct = compute_dtype(dt)
    s = x.astype(ct) + skip.astype(ct, copy=False)
    if bias is not None:
        s += bias.astype(ct, copy=False)
    y, mean, inv = _norm_rows(s, epsilon, simplified)
    y *= gamma.astype(ct, copy=False)
    if beta is not None:
        y += beta.astype(ct, copy=False)
    f32 = np.float32
    return y.astype(dt), mean.astype(f32), inv.astype(f32), s.astype(dt, copy=False)


@kernel("SkipLayerNormalization", since=1, domain=MS)
def skip_layer_normalization(input, skip, gamma, beta=None, bias=None, *, epsilon=1e-12):
    return _skip_norm(input, skip, gamma, beta, bias, epsilon, simplified=False)


@kernel("SkipSimplifiedLayerNormalization", since=1, domain=MS)
def skip_simplified_layer_normalization(input, skip, gamma, bias=None, *, epsilon=1e-12):
    return _skip_norm(input, skip, gamma, None, bias, epsilon, simplified=True)


def _simplified_layer_norm(x, scale, *, axis=-1, epsilon=1e-5, stash_type=1):
    ax = axis + x.ndim if axis < 0 else axis
    ct = np.result_type(compute_dtype(x.dtype), np_dtype(int(stash_type)) if stash_type else np.float32)
    x2 = x.astype(ct).reshape(math.prod(x.shape[:ax]), -1)
    y, _, inv = _norm_rows(x2, epsilon, simplified=True)
    y = y.reshape(x.shape) * scale.astype(ct, copy=False)
    return y.astype(x.dtype), inv.reshape(x.shape[:ax] + (1,) * (x.ndim - ax))


# onnxruntime registers SimplifiedLayerNormalization (and its pre-opset-17 LayerNormalization)
# in the ONNX domain; exported models also carry it under com.microsoft.
kernel("SimplifiedLayerNormalization", since=1)(_simplified_layer_norm)
kernel("SimplifiedLayerNormalization", since=1, domain=MS)(_simplified_layer_norm)
kernel("LayerNormalization", since=1, factory=True)(layer_normalization)


@kernel("EmbedLayerNormalization", since=1, domain=MS)
def embed_layer_normalization(
    input_ids,
    segment_ids,
    word_embedding,
    position_embedding,
    segment_embedding,
    gamma,
    beta,
    mask=None,
    position_ids=None,
    *,
    epsilon=1e-12,
    mask_index_type=1,
):
    """LayerNorm(word[ids] + position[pos] + segment[seg]); mask_index is the count of ones per
    row of mask (zeros without a mask); also returns the embedding sum."""
    dt = word_embedding.dtype
    ct = compute_dtype(dt)
    b, s = input_ids.shape
    pos = np.arange(s) if position_ids is None else np.broadcast_to(position_ids, (b, s))
    emb = word_embedding[input_ids].astype(ct) + position_embedding[pos].astype(ct)
    if segment_ids is not None and segment_embedding is not None:
        emb += segment_embedding[segment_ids].astype(ct)
    y, _, _ = _norm_rows(emb, epsilon, simplified=False)
    y = y * gamma.astype(ct) + beta.astype(ct)
    if mask is None:
        mask_index = np.zeros(b, dtype=np.int32)
    else:
        mask_index = np.count_nonzero(mask, axis=1).astype(np.int32)
    return y.astype(dt), mask_index, emb.astype(dt)


# --------------------------------------------------------------------------- misc


@kernel("BiasSoftmax", since=1, domain=MS)
def bias_softmax(data, bias, *, axis=1, is_inner_broadcast=0):
    """softmax over dims [axis, rank) of data + bias. An outer-broadcast bias covers the trailing
    dims (numpy broadcasting); an inner-broadcast bias has data's leading dims and its trailing
    dims from ``axis``, broadcast over the dims between."""
    rank = data.ndim
    ax = axis + rank if axis < 0 else axis
    bias = np.asarray(bias)
    if is_inner_broadcast and bias.ndim < rank:
        lead = bias.ndim - (rank - ax)
        bias = bias.reshape(bias.shape[:lead] + (1,) * (rank - bias.ndim) + bias.shape[lead:])
    ct = compute_dtype(data.dtype)
    z = data.astype(ct) + bias.astype(ct)
    z2 = z.reshape(math.prod(z.shape[:ax]), -1)
    z2 = z2 - z2.max(axis=1, keepdims=True)
    np.exp(z2, out=z2)
    z2 /= z2.sum(axis=1, keepdims=True)
    return z2.reshape(z.shape).astype(data.dtype)


@kernel("Inverse", since=1, domain=MS)
def inverse(x):
    return np.linalg.inv(x.astype(compute_dtype(x.dtype))).astype(x.dtype)


kernel("Trilu", since=1, domain=MS)(trilu)
kernel("GatherND", since=1, domain=MS)(gather_nd)


@kernel("RotaryEmbedding", since=1, domain=MS)
def ms_rotary_embedding(
    input,
    position_ids,
    cos_cache,
    sin_cache,
    *,
    interleaved=0,
    is_packed_batching=0,
    num_heads=0,
    rotary_embedding_dim=0,
    scale=1.0,
):
    """position_ids is (B, S), or (1,) holding the position of the first token. ``scale`` and
    ``is_packed_batching`` do not change onnxruntime's CPU results."""
    if input.ndim == 4:
        b, s = input.shape[0], input.shape[2]
    else:
        b, s = input.shape[:2]
    pos = np.asarray(position_ids).astype(np.int64)
    if pos.ndim <= 1 or pos.size == 1:
        pos = np.broadcast_to(pos.reshape(-1)[0] + np.arange(s), (b, s))
    rd = int(rotary_embedding_dim)
    half = rd // 2 if rd else cos_cache.shape[-1]
    if input.ndim == 3 and not num_heads:
        num_heads = input.shape[-1] // (2 * half)
    return _rotary_onnx(
        input,
        cos_cache[:, :half],
        sin_cache[:, :half],
        pos,
        interleaved=interleaved,
        num_heads=num_heads,
        rotary_embedding_dim=rd,
    )
