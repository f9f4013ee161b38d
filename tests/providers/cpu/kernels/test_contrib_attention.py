"""com.microsoft Attention, MultiHeadAttention and GroupQueryAttention against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import onnxlite
from onnxlite.types import onnx_type

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
rng = np.random.default_rng(1)


def _f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _model(op, inputs, attrs, outputs, float_outputs=()):
    names = [n if v is not None else "" for n, v in inputs.items()]
    node = helper.make_node(op, names, list(outputs), domain=MS, **attrs)
    ins = [
        helper.make_tensor_value_info(n, onnx_type(v.dtype), list(v.shape))
        for n, v in inputs.items()
        if v is not None
    ]
    elem = onnx_type(next(v for v in inputs.values() if v is not None).dtype)
    outs = [
        helper.make_tensor_value_info(o, elem, None)
        if o in float_outputs
        else helper.make_value_info(o, onnx.TypeProto())
        for o in outputs
        if o
    ]
    graph = helper.make_graph([node], "g", ins, outs)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def run_pair(op, inputs, attrs, outputs=("y",), float_outputs=()):
    """(onnxlite outputs, onnxruntime outputs) of a one-node model; None inputs are skipped."""
    raw = _model(op, inputs, attrs, outputs, float_outputs).SerializeToString()
    feeds = {n: v for n, v in inputs.items() if v is not None}
    got = onnxlite.InferenceSession(raw).run(None, feeds)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    want = ort.InferenceSession(raw, so, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
    return got, want


def check(op, inputs, attrs, outputs=("y",), float_outputs=(), atol=1e-5, rtol=1e-4):
    got, want = run_pair(op, inputs, attrs, outputs, float_outputs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol)
    return got


# --------------------------------------------------------------------------- Attention

B, S, DIN, N, H = 2, 4, 12, 2, 4


def _attn_inputs(mask=None, past=None, ab=None, widths=(8, 8, 8), bias=True):
    return {
        "x": _f32(B, S, DIN),
        "w": _f32(DIN, sum(widths), scale=0.5),
        "b": _f32(sum(widths)) if bias else None,
        "mask": mask,
        "past": past,
        "ab": ab,
    }


@pytest.mark.parametrize("unidirectional", [0, 1])
@pytest.mark.parametrize("bias", [True, False])
def test_attention_plain(unidirectional, bias):
    inputs = _attn_inputs(bias=bias)
    check("Attention", inputs, {"num_heads": N, "unidirectional": unidirectional})


@pytest.mark.parametrize(
    "mask",
    [
        np.array([2, 4], np.int32),  # right padding: lengths
        np.array([3, 4, 1, 0], np.int32),  # left padding: ends then starts
        np.array([[1, 1, 0, 1], [0, 1, 1, 1]], np.int32),  # raw 2-D
        np.array([[1, 1, 0, 1], [1, 1, 1, 1]], np.int32)[:, None, :].repeat(S, 1),  # raw 3-D
        np.array([[0, 0, 0, 0], [1, 1, 1, 1]], np.int32),  # a fully masked row
    ],
)
@pytest.mark.parametrize("unidirectional", [0, 1])
def test_attention_masks(mask, unidirectional):
    inputs = _attn_inputs(mask=mask)
    # fully masked rows add -10000 to every score: float32 rounding of that sum differs a little
    check("Attention", inputs, {"num_heads": N, "unidirectional": unidirectional}, atol=2e-3)


def test_attention_mask_filter_value_and_scale():
    inputs = _attn_inputs(mask=np.array([[0, 0, 0, 0], [1, 0, 1, 1]], np.int32))
    check("Attention", inputs, {"num_heads": N, "mask_filter_value": -5.0, "scale": 0.3})


@pytest.mark.parametrize("mask", [None, np.array([5, 7], np.int32), "raw"])
def test_attention_past_present(mask):
    past = _f32(2, B, N, 3, H)
    if isinstance(mask, str):
        mask = np.ones((B, S + 3), np.int32)
        mask[0, 1] = 0
    inputs = _attn_inputs(mask=mask, past=past)
    check("Attention", inputs, {"num_heads": N, "unidirectional": 1}, outputs=("y", "present"))


def test_attention_qkv_hidden_sizes():
    inputs = _attn_inputs(widths=(8, 8, 12))
    got = check("Attention", inputs, {"num_heads": N, "qkv_hidden_sizes": [8, 8, 12]})
    assert got[0].shape == (B, S, 12)


def test_attention_bias_input():
    inputs = _attn_inputs(mask=np.array([[1, 1, 0, 1], [1, 1, 1, 1]], np.int32), ab=_f32(B, 1, S, S, scale=3))
    check("Attention", inputs, {"num_heads": N})


def test_attention_fp16():
    inputs = {k: (None if v is None else v.astype(np.float16)) for k, v in _attn_inputs().items()}
    check("Attention", inputs, {"num_heads": N, "unidirectional": 1}, atol=2e-2, rtol=2e-2)


# --------------------------------------------------------------------------- MultiHeadAttention

L = 5
D = N * H
MHA_OUT = ("y", "present_key", "present_value")


def _mha(bias=True, kv_len=L, mask=None, ab=None, past=0, key=None, value=None):
    inputs = {
        "q": _f32(B, S, D),
        "k": _f32(B, kv_len, D) if key is None else key,
        "v": _f32(B, kv_len, D) if value is None else value,
        "bias": _f32(3 * D) if bias else None,
        "mask": mask,
        "ab": ab,
        "pk": _f32(B, N, past, H) if past else None,
        "pv": _f32(B, N, past, H) if past else None,
    }
    return inputs


@pytest.mark.parametrize("bias", [True, False])
def test_mha_cross(bias):
    check("MultiHeadAttention", _mha(bias), {"num_heads": N}, outputs=MHA_OUT)


@pytest.mark.parametrize(
    "mask",
    [
        np.array([3, 5], np.int32),
        np.array([[1, 0, 1, 1, 1], [1, 1, 0, 0, 1]], np.int32),
        np.array([[1, 0, 1, 1, 1], [0, 0, 0, 0, 0]], np.int32),
        rng.integers(0, 2, (B, S, L)).astype(np.int32),
    ],
)
def test_mha_key_padding_mask(mask):
    check("MultiHeadAttention", _mha(mask=mask), {"num_heads": N, "mask_filter_value": -1000.0}, atol=2e-3)


def test_mha_attention_bias_and_scale():
    check("MultiHeadAttention", _mha(ab=_f32(1, N, S, L)), {"num_heads": N, "scale": 0.2})


@pytest.mark.parametrize("past", [0, 2])
def test_mha_self_unidirectional_past(past):
    inputs = _mha(kv_len=S, past=past)
    outs = (*MHA_OUT, "qk")
    check(
        "MultiHeadAttention",
        inputs,
        {"num_heads": N, "unidirectional": 1},
        outputs=outs,
        float_outputs=("qk",),
    )


def test_mha_past_with_total_length_mask():
    mask = np.ones((B, 3 + L), np.int32)
    mask[0, 2] = mask[1, 7] = 0
    check("MultiHeadAttention", _mha(mask=mask, past=3), {"num_heads": N}, outputs=MHA_OUT)


def test_mha_qk_output_only():
    outs = ("y", "", "", "qk")
    got = check("MultiHeadAttention", _mha(bias=False), {"num_heads": N}, outputs=outs, float_outputs=("qk",))
    assert got[1].shape == (B, N, S, L)


def test_mha_bnsh_cross_cache():
    inputs = _mha(key=_f32(B, N, L, H), value=_f32(B, N, L, H))
    check("MultiHeadAttention", inputs, {"num_heads": N}, outputs=MHA_OUT)


def test_mha_packed_layouts_match_unpacked():
    """onnxruntime's CPU kernel rejects packed QKV / KV: checked against the unpacked form."""
    q, k, v = _f32(B, S, N, H), _f32(B, S, N, H), _f32(B, S, N, H)
    packed_qkv = np.stack((q, k, v), axis=3)
    model = _model("MultiHeadAttention", {"q": packed_qkv}, {"num_heads": N}, ("y",))
    (got,) = onnxlite.InferenceSession(model.SerializeToString()).run(None, {"q": packed_qkv})
    flat = {"q": q.reshape(B, S, D), "k": k.reshape(B, S, D), "v": v.reshape(B, S, D)}
    _, (want,) = run_pair("MultiHeadAttention", flat, {"num_heads": N})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    packed_kv = np.stack((k, v), axis=3)
    model = _model("MultiHeadAttention", {"q": flat["q"], "k": packed_kv}, {"num_heads": N}, ("y",))
    (got,) = onnxlite.InferenceSession(model.SerializeToString()).run(None, {"q": flat["q"], "k": packed_kv})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- GroupQueryAttention

GN, KVN, GH = 4, 2, 16  # onnxruntime's CPU rotary needs head_size % 16 == 0
GQA_OUT = ("y", "present_key", "present_value")


def _gqa(b=2, s=4, past=0, seqlens=None, total=None, packed=False, past_cap=None):
    q, k, v = _f32(b, s, GN * GH), _f32(b, s, KVN * GH), _f32(b, s, KVN * GH)
    seqlens = np.full(b, past + s - 1) if seqlens is None else np.asarray(seqlens)
    cap = past if past_cap is None else past_cap
    return {
        "q": np.concatenate((q, k, v), -1) if packed else q,
        "k": None if packed else k,
        "v": None if packed else v,
        "pk": _f32(b, KVN, cap, GH) if cap else None,
        "pv": _f32(b, KVN, cap, GH) if cap else None,
        "seqlens": seqlens.astype(np.int32),
        "total": np.array(past + s if total is None else total, np.int32),
    }


def _with(inputs, **extra):
    """inputs extended with the later optional GQA inputs, in schema order."""
    order = ("cos", "sin", "pos", "ab", "sink")
    return {
        **inputs,
        **{k: extra.get(k) for k in order if any(extra.get(o) is not None for o in order[order.index(k) :])},
    }


def _gqa_attrs(**kw):
    return {"num_heads": GN, "kv_num_heads": KVN, **kw}


@pytest.mark.parametrize("packed", [False, True])
def test_gqa_prompt(packed):
    check("GroupQueryAttention", _gqa(packed=packed), _gqa_attrs(), outputs=GQA_OUT)


def test_gqa_prompt_right_padded():
    """Rows past a batch entry's length are unspecified; the valid rows and the cache agree."""
    got, want = run_pair("GroupQueryAttention", _gqa(seqlens=[1, 3]), _gqa_attrs(), outputs=GQA_OUT)
    np.testing.assert_allclose(got[0][0, :2], want[0][0, :2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[0][1], want[0][1], rtol=1e-5, atol=1e-5)
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("window", [-1, 2, 3])
def test_gqa_token_generation(window):
    inputs = _gqa(s=1, past=5, seqlens=[5, 3])
    check("GroupQueryAttention", inputs, _gqa_attrs(local_window_size=window), outputs=GQA_OUT)


def test_gqa_multi_token_continuation():
    inputs = _gqa(b=1, s=3, past=5)
    check("GroupQueryAttention", inputs, _gqa_attrs(local_window_size=4), outputs=GQA_OUT)


def test_gqa_shared_buffer_cache():
    """past_key holds max_sequence_length slots; the present keeps that length."""
    inputs = _gqa(s=1, past=5, seqlens=[5, 2], past_cap=8)
    check("GroupQueryAttention", inputs, _gqa_attrs(), outputs=GQA_OUT)


@pytest.mark.parametrize("window", [-1, 2])
def test_gqa_softcap_scale_window_prompt(window):
    attrs = _gqa_attrs(softcap=2.0, scale=0.5, local_window_size=window)
    check("GroupQueryAttention", _gqa(), attrs, outputs=GQA_OUT)


def test_gqa_non_causal():
    check("GroupQueryAttention", _gqa(), _gqa_attrs(causal=0), outputs=GQA_OUT)


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("stage", ["prompt", "generate"])
def test_gqa_rotary(interleaved, stage):
    base = _gqa() if stage == "prompt" else _gqa(s=1, past=5, seqlens=[5, 3])
    inputs = _with(base, cos=_f32(16, GH // 2), sin=_f32(16, GH // 2))
    attrs = _gqa_attrs(do_rotary=1, rotary_interleaved=interleaved)
    check("GroupQueryAttention", inputs, attrs, outputs=GQA_OUT)


@pytest.mark.parametrize("stage", ["prompt", "generate"])
def test_gqa_rotary_position_ids(stage):
    if stage == "prompt":
        base, pos = _gqa(), np.array([[3, 4, 5, 6], [2, 3, 4, 5]], np.int64)
    else:
        base, pos = _gqa(s=1, past=5, seqlens=[5, 3]), np.array([[3], [7]], np.int64)
    inputs = _with(base, cos=_f32(16, GH // 2), sin=_f32(16, GH // 2), pos=pos)
    check("GroupQueryAttention", inputs, _gqa_attrs(do_rotary=1), outputs=GQA_OUT)


@pytest.mark.parametrize("stage", ["prompt", "generate"])
def test_gqa_attention_bias(stage):
    if stage == "prompt":
        base, ab = _gqa(), _f32(2, 1, 4, 4)
    else:
        base, ab = _gqa(s=1, past=5, seqlens=[5, 3]), _f32(2, GN, 1, 6)
    check("GroupQueryAttention", _with(base, ab=ab), _gqa_attrs(softcap=1.5), outputs=GQA_OUT)


def test_gqa_head_sink_and_smooth_softmax():
    check("GroupQueryAttention", _with(_gqa(), sink=_f32(GN)), _gqa_attrs(), outputs=GQA_OUT)
    check("GroupQueryAttention", _gqa(), _gqa_attrs(smooth_softmax=1), outputs=GQA_OUT)


@pytest.mark.parametrize("mode", [1, 2])
def test_gqa_qk_output(mode):
    inputs = _gqa(s=1, past=5, seqlens=[5, 3])
    outs = (*GQA_OUT, "qk")
    check(
        "GroupQueryAttention",
        inputs,
        _gqa_attrs(qk_output=mode, softcap=1.0),
        outputs=outs,
        float_outputs=("qk",),
    )


def test_gqa_query_seqlens_chunked_prefill():
    inputs = _gqa(s=4, past=5, seqlens=[5, 7], total=9)
    inputs.update({k: None for k in ("cos", "sin", "pos", "ab", "sink", "ks", "vs", "qn", "kn")})
    inputs["qs"] = np.array([2, 4], np.int32)
    got, want = run_pair("GroupQueryAttention", inputs, _gqa_attrs(), outputs=GQA_OUT)
    np.testing.assert_allclose(got[0][0, :2], want[0][0, :2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[0][1], want[0][1], rtol=1e-5, atol=1e-5)
    for i, t in enumerate((6, 8)):  # cache rows at or beyond T are unspecified
        np.testing.assert_allclose(got[1][i, :, :t], want[1][i, :, :t], rtol=1e-6)
        np.testing.assert_allclose(got[2][i, :, :t], want[2][i, :, :t], rtol=1e-6)


def test_gqa_fp16():
    inputs = {
        k: (v.astype(np.float16) if v is not None and v.dtype == np.float32 else v) for k, v in _gqa().items()
    }
    check("GroupQueryAttention", inputs, _gqa_attrs(), outputs=GQA_OUT, atol=5e-3, rtol=5e-3)


def test_attention_shared_past_present_buffer():
    """onnxruntime's CPU kernel rejects past_sequence_length: checked against the plain past form."""
    inputs = _attn_inputs(past=_f32(2, B, N, 8, H))
    shared = {**inputs, "ab": None, "past_len": np.array([3], np.int32)}
    attrs = {"num_heads": N, "unidirectional": 1}
    raw = _model("Attention", shared, {**attrs, "past_present_share_buffer": 1}, ("y", "present"))
    feeds = {k: v for k, v in shared.items() if v is not None}
    y, present = onnxlite.InferenceSession(raw.SerializeToString()).run(None, feeds)
    plain = {**inputs, "past": inputs["past"][:, :, :, :3].copy()}
    want_y, want_present = check("Attention", plain, attrs, outputs=("y", "present"))
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6)
    assert present.shape == (2, B, N, 8, H)
    np.testing.assert_allclose(present[:, :, :, : 3 + S], want_present, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(present[:, :, :, 3 + S :], inputs["past"][:, :, :, 3 + S :])
