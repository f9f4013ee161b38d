"""Attention-family kernels: Attention (23/24/25), RotaryEmbedding, LinearAttention,
CausalConvWithState, SwiGLU and ai.onnx.preview FlexAttention.

Half-precision inputs are computed in float32 and cast back; double stays double.
Grouped-query attention folds the query-group axis into the query-sequence axis, so each KV head
is read by one batched GEMM rather than being repeated.
"""

from __future__ import annotations

import inspect

import numpy as np

from ....types import np_dtype
from ...registry import NodeInfo
from ..registry import kernel


def _cdt(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form


def _split_heads(x, heads):
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3)


def _softmax_rows(x):
    """Softmax over the last axis; rows that are all -inf give zeros instead of NaN."""
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isneginf(m), 0, m)
    e = np.exp(x - m)
    s = e.sum(axis=-1, keepdims=True)
    return e / np.where(s == 0, 1, s)


def _grouped_matmul(a, b, n_kv):
    """a: (B, Hq, M, X) with Hq = n_kv * r; b: (B, n_kv, X, N) -> (B, Hq, M, N), query head h
    reading KV head h // r."""
    B, Hq, M, X = a.shape
    r = Hq // n_kv
    if r == 1:
        return a @ b
    out = a.reshape(B, n_kv, r * M, X) @ b
    return out.reshape(B, Hq, M, b.shape[-1])


def _attention_bias(mask, Sq, Skv, cdt, *, is_causal, past_len, nonpad, left, right):
    """Additive bias broadcastable to (B, H, Sq, Skv), or None when nothing is masked."""
    bias = None
    if mask is not None:
        mask = np.asarray(mask)
        pad = Skv - mask.shape[-1]
        if pad > 0:  # a short mask leaves the extra keys masked out
            widths = [(0, 0)] * (mask.ndim - 1) + [(0, pad)]
            fill = False if mask.dtype == np.bool_ else -np.inf
            mask = np.pad(mask, widths, constant_values=fill)
        if mask.dtype == np.bool_:
            bias = np.where(mask, cdt.type(0), cdt.type(-np.inf))
        else:
            bias = mask.astype(cdt)
    # Offset of the query block within the keys: past length (internal cache), per-batch
    # nonpad - Sq (external cache), or 0.
    if nonpad is not None and past_len == 0:
        offset = (np.asarray(nonpad).reshape(-1) - Sq).reshape(-1, 1, 1, 1)
    else:
        offset = past_len
    allowed = None
    if is_causal or left >= 0 or right >= 0:
        i = np.arange(Sq).reshape(Sq, 1)
        j = np.arange(Skv).reshape(1, Skv)
        diff = (i + offset) - j  # query position minus key position
        allowed = np.ones(np.shape(diff), dtype=bool)
        if is_causal:
            allowed &= diff >= 0
        if left >= 0:
            allowed &= diff <= left
        if right >= 0:
            allowed &= -diff <= right
    if nonpad is not None:
        valid = np.arange(Skv) < np.asarray(nonpad).reshape(-1, 1, 1, 1)
        allowed = valid if allowed is None else allowed & valid
    if allowed is not None:
        if allowed.ndim < 4:
            allowed = allowed.reshape((1,) * (4 - allowed.ndim) + allowed.shape)
        ab = np.where(allowed, cdt.type(0), cdt.type(-np.inf))
        bias = ab if bias is None else bias + ab
    return bias


def _attention(
    Q,
    K,
    V,
    attn_mask=None,
    past_key=None,
    past_value=None,
    nonpad_kv_seqlen=None,
    *,
    is_causal=0,
    kv_num_heads=None,
    q_num_heads=None,
    qk_matmul_output_mode=0,
    scale=None,
    softcap=0.0,
    softmax_precision=None,
    left_window_size=-1,
    right_window_size=-1,
    want_qk=True,
):
    out_dt = Q.dtype
    three_d = Q.ndim == 3
    if three_d:
        if q_num_heads is None or kv_num_heads is None:
            raise ValueError("3-D Attention inputs need q_num_heads and kv_num_heads")
        Q = _split_heads(Q, q_num_heads)
        K = _split_heads(K, kv_num_heads)
        V = _split_heads(V, kv_num_heads)
    if (past_key is None) != (past_value is None):
        raise ValueError("past_key and past_value must be given together")
    past_len = 0
    if past_key is not None:
        past_len = past_key.shape[2]
        K = np.concatenate((past_key, K), axis=2)
        V = np.concatenate((past_value, V), axis=2)
    B, Hq, Sq, D = Q.shape
    Hkv, Skv = K.shape[1], K.shape[2]
    if Hq % Hkv:
        raise ValueError(f"q heads ({Hq}) must be a multiple of kv heads ({Hkv})")

    cdt = _cdt(out_dt)
    if softmax_precision is not None and np_dtype(softmax_precision) == np.float64:
        cdt = np.dtype(np.float64)
    s = 1 / np.sqrt(D) if scale is None else scale
    # Scale Q and K by sqrt(scale) in the input type, as the spec's function body does.
    sq = out_dt.type(np.sqrt(s))
    q = (Q * sq).astype(cdt, copy=False)
    k = (K * sq).astype(cdt, copy=False)
    scores = _grouped_matmul(q, k.swapaxes(-1, -2), Hkv)
    raw = scores
    if softcap and softcap > 0:
        scores = softcap * np.tanh(scores / softcap)
    capped = scores
    bias = _attention_bias(
        attn_mask,
        Sq,
        Skv,
        cdt,
        is_causal=is_causal,
        past_len=past_len,
        nonpad=nonpad_kv_seqlen,
        left=left_window_size,
        right=right_window_size,
    )
    if bias is not None:
        scores = scores + bias
    probs = _softmax_rows(scores)
    if bias is not None:
        # A query row with every key masked outputs zeros (decided on the bias, not on the
        # possibly-NaN logits).
        dead = np.isneginf(bias.max(axis=-1, keepdims=True))
        if dead.any():
            probs = np.where(dead, cdt.type(0), probs)
    y = _grouped_matmul(probs, V.astype(cdt, copy=False), Hkv).astype(out_dt)
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(B, Sq, -1)
        K, V = np.ascontiguousarray(K), np.ascontiguousarray(V)
    qk = None
    if want_qk:
        qk = (raw, capped, scores, probs)[qk_matmul_output_mode]
        qk = np.broadcast_to(qk, (B, Hq, Sq, Skv)).astype(out_dt)
    return y, K, V, qk


_ATTENTION_ATTRS = {
    p.name
    for p in inspect.signature(_attention).parameters.values()
    if p.kind is p.KEYWORD_ONLY and p.name != "want_qk"
}


@kernel("Attention", since=23, factory=True)
def attention(info: NodeInfo):
    attrs = dict(info.attrs)
    unknown = set(attrs) - _ATTENTION_ATTRS
    if unknown:
        raise ValueError(f"{info.describe()}: unsupported attribute(s) {sorted(unknown)}")
    want_qk = info.n_outputs >= 4 and bool(info.outputs[3])

    def run(*inputs):
        return _attention(*inputs, want_qk=want_qk, **attrs)

    return run


@kernel("FlexAttention", since=1, domain="ai.onnx.preview", factory=True)
def flex_attention(info: NodeInfo):
    attrs = info.attrs
    scale = attrs.get("scale")
    sp = attrs.get("softmax_precision")
    score_mod = info.subgraphs.get("score_mod")
    prob_mod = info.subgraphs.get("prob_mod")
    outer_names = info.implicit_inputs

    def run(Q, K, V, *outer_vals):
        outer = dict(zip(outer_names, outer_vals))
        if Q.ndim != 4 or K.ndim != 4 or V.ndim != 4:
            raise ValueError("FlexAttention needs rank-4 Q, K, V")
        cdt = np_dtype(sp) if sp is not None else _cdt(Q.dtype)
        s = 1 / np.sqrt(Q.shape[-1]) if scale is None else scale
        sq = np.asarray(np.sqrt(np.float32(s)), dtype=Q.dtype)
        q = (Q * sq).astype(cdt, copy=False)
        k = (K * sq).astype(cdt, copy=False)
        scores = _grouped_matmul(q, k.swapaxes(-1, -2), K.shape[1])
        if score_mod is not None:
            scores = np.asarray(score_mod.run_subgraph([scores], outer)[0], dtype=cdt)
        probs = _softmax_rows(scores)
        if prob_mod is not None:
            probs = np.asarray(prob_mod.run_subgraph([probs], outer)[0], dtype=cdt)
        return _grouped_matmul(probs, V.astype(cdt, copy=False), K.shape[1]).astype(V.dtype)

    return run


@kernel("RotaryEmbedding", since=23)
def rotary_embedding(
    X,
    cos_cache,
    sin_cache,
    position_ids=None,
    *,
    interleaved=0,
    num_heads=0,
    rotary_embedding_dim=0,
):
    dt = X.dtype
    cdt = _cdt(dt)
    if X.ndim == 4:
        x = X.transpose(0, 2, 1, 3)  # (B, S, H, D)
    else:
        if not num_heads:
            raise ValueError("RotaryEmbedding with 3-D input needs num_heads")
        b, s, hd = X.shape
        x = X.reshape(b, s, num_heads, hd // num_heads)
    D = x.shape[-1]
    rd = rotary_embedding_dim or D
    half = rd // 2
    if position_ids is not None:
        cos = cos_cache[position_ids]
        sin = sin_cache[position_ids]
    else:
        cos, sin = cos_cache, sin_cache
    if cos.shape[-1] != half or sin.shape[-1] != half:
        raise ValueError(f"cos/sin cache last dim must be rotary_embedding_dim/2 = {half}")
    cos = cos.astype(cdt, copy=False)[:, :, None, :]
    sin = sin.astype(cdt, copy=False)[:, :, None, :]
    xr = x[..., :rd].astype(cdt)
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr[..., :half], xr[..., half:]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    out = np.array(x, dtype=dt)  # (B, S, H, D), owned
    if interleaved:
        out[..., 0:rd:2] = real
        out[..., 1:rd:2] = imag
    else:
        out[..., :half] = real
        out[..., half:rd] = imag
    if X.ndim == 4:
        return np.ascontiguousarray(out.transpose(0, 2, 1, 3))
    return out.reshape(X.shape)


@kernel("SwiGLU", since=28)
def swiglu(A, B, *, alpha=1.0):
    if A.shape != B.shape:
        raise ValueError(f"SwiGLU needs equal shapes, got {A.shape} and {B.shape}")
    a = A.astype(_cdt(A.dtype), copy=False)
    return (a * _sigmoid(alpha * a) * B).astype(A.dtype)


@kernel("CausalConvWithState", since=27)
def causal_conv_with_state(input, weight, bias=None, past_state=None, *, activation="none"):
    if activation not in ("none", "silu", "swish"):
        raise ValueError(f"unsupported activation {activation!r}")
    dt = input.dtype
    cdt = _cdt(dt)
    Bt, C, L = input.shape
    k = weight.shape[2]
    if past_state is None:
        pad = np.zeros((Bt, C, k - 1), dtype=dt)
    else:
        pad = past_state.astype(dt, copy=False)
    padded = np.concatenate((pad, input), axis=2)
    w = weight.astype(cdt, copy=False)[:, 0, :]  # (C, k)
    pf = padded.astype(cdt, copy=False)
    out = np.zeros((Bt, C, L), dtype=cdt)
    for j in range(k):  # kernel taps are few; each is one vectorised multiply-add
        out += pf[:, :, j : j + L] * w[None, :, j, None]
    if bias is not None:
        out += bias.astype(cdt)[None, :, None]
    if activation != "none":
        out = out.astype(dt).astype(cdt)  # the conv result is rounded before the activation
        out = out * _sigmoid(out)
    present = padded[:, :, padded.shape[2] - (k - 1) :]
    return out.astype(dt), np.ascontiguousarray(present)


@kernel("LinearAttention", since=27)
def linear_attention(
    query,
    key,
    value,
    past_state=None,
    decay=None,
    beta=None,
    *,
    chunk_size=64,
    kv_num_heads=None,
    q_num_heads=None,
    scale=0.0,
    update_rule="gated_delta",
):
    if update_rule not in ("linear", "gated", "delta", "gated_delta"):
        raise ValueError(f"unsupported update_rule {update_rule!r}")
    if not q_num_heads or not kv_num_heads or q_num_heads % kv_num_heads:
        raise ValueError("q_num_heads must be a positive multiple of kv_num_heads")
    gated = update_rule in ("gated", "gated_delta")
    delta = update_rule in ("delta", "gated_delta")
    if gated and decay is None:
        raise ValueError(f"update_rule {update_rule!r} needs the decay input")
    if delta and beta is None:
        raise ValueError(f"update_rule {update_rule!r} needs the beta input")
    f32 = np.float32
    Bt, T, _ = query.shape
    Hq, Hkv = q_num_heads, kv_num_heads
    r = Hq // Hkv
    dk = query.shape[-1] // Hq
    dv = value.shape[-1] // Hkv
    # (B, T, H, D) views: time-major slicing below stays cheap.
    q = query.reshape(Bt, T, Hkv, r, dk).astype(f32)
    k = key.reshape(Bt, T, Hkv, dk).astype(f32)
    v = value.reshape(Bt, T, Hkv, dv).astype(f32)
    g = None
    if gated:
        g = np.exp(decay.astype(f32)).reshape(Bt, T, Hkv, -1)  # (.., 1) or (.., dk)
    bt = None
    if delta:
        bt = beta.astype(f32).reshape(Bt, T, -1, 1)  # (.., Hkv or 1, 1)
    if past_state is not None:
        state_dt = past_state.dtype
        S = past_state.astype(f32)  # (B, Hkv, dk, dv), a fresh copy
    else:
        state_dt = query.dtype
        S = np.zeros((Bt, Hkv, dk, dv), dtype=f32)
    sc = f32(scale if scale else 1 / np.sqrt(dk))
    out = np.empty((Bt, T, Hkv, r, dv), dtype=f32)
    for t in range(T):
        if g is not None:
            S = S * g[:, t, :, :, None]
        vt = v[:, t]
        kt = k[:, t]
        if bt is not None:
            retrieved = (kt[:, :, None, :] @ S)[:, :, 0, :]  # S^T k: (B, Hkv, dv)
            vt = bt[:, t] * (vt - retrieved)
        S = S + kt[:, :, :, None] * vt[:, :, None, :]
        out[:, t] = sc * (q[:, t] @ S)  # (B, Hkv, r, dk) @ (B, Hkv, dk, dv)
    y = out.reshape(Bt, T, Hq * dv).astype(query.dtype)
    return y, S.astype(state_dt)
