"""com.microsoft attention ops: Attention (packed QKV projection), MultiHeadAttention and
GroupQueryAttention, as onnxruntime's CPU kernels compute them.

Attention and MultiHeadAttention mask padded keys additively with ``mask_filter_value``
(-10000 by default, so a fully padded row still averages its values) and mask future keys with
the lowest float; the mask is added to ``scale * QK'`` in one rounding, as onnxruntime's GEMM
with a beta=1 bias does. GroupQueryAttention excludes masked keys from its softmax outright.
16-bit inputs are computed in float32.
"""

from __future__ import annotations

import numpy as np

from ...registry import NodeInfo
from ..registry import kernel
from .attention import rotary_embedding

MS = "com.microsoft"
_F32 = np.dtype(np.float32)
_LOWEST = float(np.finfo(np.float32).min)


def _cdt(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if dt == np.float64 else _F32


def _heads(x: np.ndarray, n: int) -> np.ndarray:
    """(B, S, n*h) -> (B, n, S, h)."""
    b, s, d = x.shape
    return x.reshape(b, s, n, d // n).transpose(0, 2, 1, 3)


def _merge(x: np.ndarray) -> np.ndarray:
    """(B, n, S, h) -> (B, S, n*h)."""
    b, n, s, h = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, s, n * h)


def _softmax(s: np.ndarray, sink=None) -> np.ndarray:
    """Softmax over the last axis; rows entirely -inf give zeros. ``sink`` (broadcastable to the
    row maxima) adds exp(sink) to each denominator, as smooth softmax / head sinks do."""
    m = s.max(axis=-1, keepdims=True)
    if sink is not None:
        m = np.maximum(m, sink)
    m = np.where(np.isneginf(m), 0, m)
    e = np.exp(s - m)
    den = e.sum(axis=-1, keepdims=True)
    if sink is not None:
        den = den + np.exp(sink - m)
    return e / np.where(den == 0, 1, den)


def _grouped_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a: (B, Hq, M, X), b: (B, Hk, X, N) with Hq = Hk * r; query head h reads head h // r."""
    B, Hq, M, X = a.shape
    hk = b.shape[1]
    if hk == Hq:
        return a @ b
    out = a.reshape(B, hk, (Hq // hk) * M, X) @ b
    return out.reshape(B, Hq, M, b.shape[-1])


# --------------------------------------------------------------------------- masks


def _key_mask(mask, b: int, s: int, t: int, filt: float) -> np.ndarray | None:
    """Additive (B, 1, S, T) float64 mask from a mask_index / key_padding_mask input: lengths
    (B), end and start positions (2B), or raw 0/1 masks (B, T) and (B, S, T)."""
    if mask is None:
        return None
    m = np.asarray(mask)
    j = np.arange(t)
    if m.ndim == 1:
        if m.shape[0] == b:
            valid = j[None, :] < m[:, None]
        elif m.shape[0] == 2 * b:
            valid = (j[None, :] < m[:b, None]) & (j[None, :] >= m[b:, None])
        else:
            raise NotImplementedError(f"1-D mask of length {m.shape[0]} (batch {b}) is not supported on CPU")
        valid = valid[:, None, None, :]
    elif m.ndim == 2:
        if m.shape[1] != t:
            raise ValueError(f"2-D mask has {m.shape[1]} columns, expected total_sequence_length {t}")
        valid = (m != 0)[:, None, None, :]
    elif m.ndim == 3:
        valid = (m != 0)[:, None, :, :]
    else:
        raise NotImplementedError(f"{m.ndim}-D attention mask is not supported on CPU")
    return np.where(valid, 0.0, filt)


def _add_causal(mask: np.ndarray | None, s: int, t: int, past: int) -> np.ndarray:
    future = np.arange(t)[None, :] > np.arange(s)[:, None] + past
    if mask is None:
        return np.where(future, _LOWEST, 0.0)[None, None]
    return np.where(future, _LOWEST, mask)


def _scores(q, k, scale, mask, attention_bias):
    """scale * q k' + mask (one rounding) + attention_bias, in q's dtype."""
    s = _grouped_matmul(q, k.swapaxes(-1, -2))
    if mask is not None:
        s = (s.astype(np.float64) * scale + mask).astype(s.dtype)
    else:
        s *= s.dtype.type(scale)
    if attention_bias is not None:
        s = s + attention_bias.astype(s.dtype)
    return s


def _mha(q, k, v, *, scale, mask, attention_bias, past_len, unidirectional):
    """q (B, N, S, H), k/v (B, N, T, H*) in the compute dtype -> (output (B, S, N*Hv), scores)."""
    s_len, t_len = q.shape[2], k.shape[2]
    if unidirectional:
        mask = _add_causal(mask, s_len, t_len, past_len)
    scores = _scores(q, k, scale, mask, attention_bias)
    probs = _softmax(scores)
    return _merge(_grouped_matmul(probs, v)), scores


# --------------------------------------------------------------------------- Attention


def attention_from_qkv(
    qkv,
    mask_index,
    past,
    attention_bias,
    past_sequence_length,
    *,
    num_heads,
    qkv_hidden_sizes,
    scale,
    mask_filter_value,
    unidirectional,
    past_present_share_buffer,
    out_dtype,
):
    """The attention part of com.microsoft Attention / QAttention: qkv is the projected
    (B, S, Dq + Dk + Dv) input in the compute dtype."""
    b, s, total = qkv.shape
    sizes = list(qkv_hidden_sizes) if qkv_hidden_sizes else [total // 3] * 3
    if sum(sizes) != total or sizes[0] != sizes[1]:
        raise ValueError(f"qkv_hidden_sizes {sizes} do not match the projection width {total}")
    dq, dk, _ = sizes
    q = _heads(qkv[..., :dq], num_heads)
    k = _heads(qkv[..., dq : dq + dk], num_heads)
    v = _heads(qkv[..., dq + dk :], num_heads)
    cdt = qkv.dtype
    past_len = 0
    present = None
    if past is not None:
        if past_present_share_buffer:
            past_len = (
                0 if past_sequence_length is None else int(np.asarray(past_sequence_length).reshape(-1)[0])
            )
            buf = np.array(past, dtype=cdt)
            buf[0, :, :, past_len : past_len + s] = k
            buf[1, :, :, past_len : past_len + s] = v
            k, v = buf[0, :, :, : past_len + s], buf[1, :, :, : past_len + s]
            present = buf
        else:
            past_len = past.shape[3]
            k = np.concatenate((past[0].astype(cdt), k), axis=2)
            v = np.concatenate((past[1].astype(cdt), v), axis=2)
    if present is None and k.shape[-1] == v.shape[-1]:
        present = np.stack((k, v))
    t = k.shape[2]
    head = dq // num_heads
    sc = 1.0 / np.sqrt(head) if not scale else float(scale)
    mask = _key_mask(mask_index, b, s, t, mask_filter_value)
    out, _ = _mha(
        q,
        k,
        v,
        scale=sc,
        mask=mask,
        attention_bias=attention_bias,
        past_len=past_len,
        unidirectional=unidirectional,
    )
    return out.astype(out_dtype), (None if present is None else present.astype(out_dtype))


@kernel("Attention", since=1, domain=MS)
def ms_attention(
    input,
    weights,
    bias=None,
    mask_index=None,
    past=None,
    attention_bias=None,
    past_sequence_length=None,
    *,
    num_heads,
    qkv_hidden_sizes=None,
    scale=0.0,
    mask_filter_value=-10000.0,
    unidirectional=0,
    past_present_share_buffer=0,
    do_rotary=0,
    rotary_embedding_dim=0,
):
    if do_rotary:
        raise NotImplementedError("Attention: do_rotary is not supported by the CPU kernel")
    cdt = _cdt(input.dtype)
    qkv = input.astype(cdt) @ weights.astype(cdt)
    if bias is not None:
        qkv += bias.astype(cdt)
    return attention_from_qkv(
        qkv,
        mask_index,
        past,
        attention_bias,
        past_sequence_length,
        num_heads=num_heads,
        qkv_hidden_sizes=qkv_hidden_sizes,
        scale=scale,
        mask_filter_value=mask_filter_value,
        unidirectional=unidirectional,
        past_present_share_buffer=past_present_share_buffer,
        out_dtype=input.dtype,
    )


# --------------------------------------------------------------------------- MultiHeadAttention


def _mha_inputs(query, key, value, bias, n, cdt):
    """q, k, v in BNSH and whether k/v came as a cross-attention cache (BNSH, no past concat)."""
    if query.ndim == 5:  # packed QKV (B, S, N, 3, H)
        qkv = query.astype(cdt)
        q, k, v = (qkv[:, :, :, i].transpose(0, 2, 1, 3) for i in range(3))
        if bias is not None:
            d = bias.shape[0] // 3
            q, k, v = (
                t + bias[i * d : (i + 1) * d].astype(cdt).reshape(n, 1, -1) for i, t in enumerate((q, k, v))
            )
        return q, k, v, False
    q = query.astype(cdt)
    d = q.shape[-1]
    if bias is not None:
        q = q + bias[:d].astype(cdt)
    q = _heads(q, n)
    if key.ndim == 5:  # packed KV (B, L, N, 2, H)
        kv = key.astype(cdt)
        k, v = kv[:, :, :, 0].transpose(0, 2, 1, 3), kv[:, :, :, 1].transpose(0, 2, 1, 3)
        if bias is not None:
            k = k + bias[d : 2 * d].astype(cdt).reshape(n, 1, -1)
            v = v + bias[2 * d :].astype(cdt).reshape(n, 1, -1)
        return q, k, v, False
    if key.ndim == 4:  # already projected and split: a cross-attention cache
        return q, key.astype(cdt), value.astype(cdt), True
    k, v = key.astype(cdt), value.astype(cdt)
    if bias is not None:
        k = k + bias[d : 2 * d].astype(cdt)
        v = v + bias[2 * d :].astype(cdt)
    return q, _heads(k, n), _heads(v, n), False


@kernel("MultiHeadAttention", since=1, domain=MS, factory=True)
def multi_head_attention(info: NodeInfo):
    attrs = dict(info.attrs)
    unknown = set(attrs) - {"num_heads", "scale", "mask_filter_value", "unidirectional"}
    if unknown:
        raise ValueError(f"{info.describe()}: unsupported attribute(s) {sorted(unknown)}")
    n = int(attrs["num_heads"])
    scale = float(attrs.get("scale", 0.0) or 0.0)
    filt = float(attrs.get("mask_filter_value", -10000.0))
    uni = int(attrs.get("unidirectional", 0))
    want_qk = info.n_outputs >= 4 and bool(info.outputs[3])

    def run(
        query,
        key=None,
        value=None,
        bias=None,
        key_padding_mask=None,
        attention_bias=None,
        past_key=None,
        past_value=None,
        past_sequence_length=None,
        cache_indirection=None,
    ):
        if cache_indirection is not None:
            raise NotImplementedError("MultiHeadAttention: cache_indirection (beam search) is not supported")
        cdt = _cdt(query.dtype)
        q, k, v, cross = _mha_inputs(query, key, value, bias, n, cdt)
        past_len = 0
        if past_key is not None and not cross:
            past_len = past_key.shape[2]
            k = np.concatenate((past_key.astype(cdt), k), axis=2)
            v = np.concatenate((past_value.astype(cdt), v), axis=2)
        b, _, s, h = q.shape
        t = k.shape[2]
        sc = scale or 1.0 / np.sqrt(h)
        mask = _key_mask(key_padding_mask, b, s, t, filt)
        out, scores = _mha(
            q, k, v, scale=sc, mask=mask, attention_bias=attention_bias, past_len=past_len, unidirectional=uni
        )
        dt = query.dtype
        qk = np.broadcast_to(scores, (b, q.shape[1], s, t)).astype(dt) if want_qk else None
        return out.astype(dt), k.astype(dt), v.astype(dt), qk

    return run


# --------------------------------------------------------------------------- GroupQueryAttention

_GQA_ATTRS = {
    "num_heads",
    "kv_num_heads",
    "scale",
    "softcap",
    "local_window_size",
    "do_rotary",
    "rotary_interleaved",
    "smooth_softmax",
    "qk_output",
    "causal",
    "kv_cache_bit_width",
    "k_quant_type",
    "v_quant_type",
    "sliding_window_cache",
    "qk_norm_epsilon",
    "q_norm_epsilon",
    "k_norm_epsilon",
}


def _rms_heads(x, w, eps):
    """Per-head RMS normalization over the head dim (Qwen3-style q/k norms)."""
    ms = (x * x).mean(axis=-1, keepdims=True)
    return x / np.sqrt(ms + eps) * w.astype(x.dtype)


@kernel("GroupQueryAttention", since=1, domain=MS, factory=True)
def group_query_attention(info: NodeInfo):
    at = dict(info.attrs)
    unknown = set(at) - _GQA_ATTRS
    if unknown:
        raise ValueError(f"{info.describe()}: unsupported attribute(s) {sorted(unknown)}")
    n, nkv = int(at["num_heads"]), int(at["kv_num_heads"])
    scale = float(at.get("scale", 0.0) or 0.0)
    softcap = float(at.get("softcap", 0.0) or 0.0)
    window = int(at.get("local_window_size", -1))
    do_rotary = int(at.get("do_rotary", 0))
    interleaved = int(at.get("rotary_interleaved", 0))
    smooth = int(at.get("smooth_softmax", -1)) == 1
    qk_mode = int(at.get("qk_output", 0))
    causal = int(at.get("causal", 1))
    eps = float(at.get("qk_norm_epsilon", 1e-6))
    q_eps, k_eps = float(at.get("q_norm_epsilon", eps)), float(at.get("k_norm_epsilon", eps))
    if int(at.get("sliding_window_cache", 0)):
        raise NotImplementedError(f"{info.describe()}: sliding_window_cache is not supported")
    if at.get("k_quant_type", "NONE") != "NONE" or at.get("v_quant_type", "NONE") != "NONE":
        raise NotImplementedError(f"{info.describe()}: quantized KV caches are not supported")
    want_qk = qk_mode and info.n_outputs >= 4 and bool(info.outputs[3])

    def run(
        query,
        key,
        value,
        past_key,
        past_value,
        seqlens_k,
        total_sequence_length,
        cos_cache=None,
        sin_cache=None,
        position_ids=None,
        attention_bias=None,
        head_sink=None,
        k_scale=None,
        v_scale=None,
        q_norm_weight=None,
        k_norm_weight=None,
        query_seqlens=None,
    ):
        dt = query.dtype
        cdt = _cdt(dt)
        if key is None:  # packed (B, S, (n + 2 nkv) * h)
            h = query.shape[-1] // (n + 2 * nkv)
            qf = query.astype(cdt)
            q_, k_, v_ = qf[..., : n * h], qf[..., n * h : (n + nkv) * h], qf[..., (n + nkv) * h :]
        else:
            q_, k_, v_ = query.astype(cdt), key.astype(cdt), value.astype(cdt)
        q, k, v = _heads(q_, n), _heads(k_, nkv), _heads(v_, nkv)
        b, _, s, h = q.shape
        if q_norm_weight is not None and k_norm_weight is not None:
            q, k = _rms_heads(q, q_norm_weight, q_eps), _rms_heads(k, k_norm_weight, k_eps)
        lens = np.asarray(seqlens_k).reshape(-1).astype(np.int64) + 1  # tokens after this step
        total = int(np.asarray(total_sequence_length).reshape(-1)[0])
        p_cap = 0 if past_key is None else past_key.shape[2]
        if query_seqlens is not None:
            new = np.asarray(query_seqlens).reshape(-1).astype(np.int64)
            past = lens - new
        else:
            new = np.full(b, s, dtype=np.int64)
            first_prompt = s == total or p_cap == 0
            past = np.zeros(b, dtype=np.int64) if first_prompt else lens - s
        if do_rotary:
            if query_seqlens is None and position_ids is not None and bool(np.all(past == 0)):
                pos = np.broadcast_to(np.asarray(position_ids).reshape(-1)[0] + np.arange(s), (b, s))
            elif position_ids is not None:
                pos = np.asarray(position_ids).reshape(b, s)
            else:
                pos = past[:, None] + np.arange(s)[None, :]
            rd = 2 * cos_cache.shape[-1]
            rot = {"interleaved": interleaved, "rotary_embedding_dim": rd}
            q = rotary_embedding(q, cos_cache, sin_cache, pos, **rot)
            k = rotary_embedding(k, cos_cache, sin_cache, pos, **rot)
        present_len = max(total, p_cap)
        pk = np.zeros((b, nkv, present_len, h), dtype=cdt)
        pv = np.zeros((b, nkv, present_len, v.shape[-1]), dtype=cdt)
        out = np.zeros((b, n, s, v.shape[-1]), dtype=cdt)
        qk = np.zeros((b, n, s, present_len), dtype=cdt) if want_qk else None
        sc = scale or 1.0 / np.sqrt(h)
        sink = None
        if head_sink is not None:
            sink = head_sink.astype(cdt).reshape(1, n, 1, 1)
        elif smooth:
            sink = np.zeros((1, 1, 1, 1), dtype=cdt)
        for i in range(b):
            p0, t = int(past[i]), int(lens[i])
            rows = min(int(new[i]), present_len - p0)
            if p0 > 0:
                pk[i, :, :p0] = past_key[i, :, :p0]
                pv[i, :, :p0] = past_value[i, :, :p0]
            pk[i, :, p0 : p0 + rows] = k[i, :, :rows]
            pv[i, :, p0 : p0 + rows] = v[i, :, :rows]
            keys, vals = pk[i : i + 1, :, :t], pv[i : i + 1, :, :t]
            sco = _grouped_matmul(q[i : i + 1], keys.swapaxes(-1, -2)) * cdt.type(sc)
            if softcap > 0:
                sco = softcap * np.tanh(sco / softcap)
            if attention_bias is not None:
                ab = attention_bias[i if attention_bias.shape[0] > 1 else 0]
                sco = sco + ab[..., :t].astype(cdt)
            qpos = p0 + np.arange(s)[:, None]
            kpos = np.arange(t)[None, :]
            ok = kpos <= qpos if causal else np.ones((s, t), dtype=bool)
            if window > 0:
                ok = ok & (kpos > qpos - window)
            sco = np.where(ok, sco, -np.inf)
            probs = _softmax(sco, sink)
            out[i] = _grouped_matmul(probs, vals)[0]
            if qk is not None:
                qk[i, :, :, :t] = np.where(ok, sco if qk_mode == 1 else probs, 0)[0]
        outs = (_merge(out).astype(dt), pk.astype(dt), pv.astype(dt))
        return (*outs, qk.astype(dt)) if qk is not None else outs

    return run
