"""Attention family (Attention, RotaryEmbedding, LinearAttention, CausalConvWithState, SwiGLU,
FlexAttention) against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

rng = np.random.default_rng(0)
OUT4 = ("y", "present_key", "present_value", "qk")


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _qkv4(b=2, hq=4, hkv=4, sq=3, skv=5, d=8, dv=8):
    return {"Q": _f32(b, hq, sq, d), "K": _f32(b, hkv, skv, d), "V": _f32(b, hkv, skv, dv)}


@pytest.mark.parametrize("hkv", [4, 2, 1])
@pytest.mark.parametrize("is_causal", [0, 1])
@pytest.mark.parametrize("opset", [23, 24, 25])
def test_attention_4d(hkv, is_causal, opset):
    check_node(
        "Attention",
        _qkv4(hkv=hkv, dv=6),
        {"is_causal": is_causal},
        opset=opset,
        rtol=1e-5,
        atol=1e-5,
    )


def test_attention_3d_gqa_scaled_softcap():
    ins = {"Q": _f32(2, 3, 4 * 8), "K": _f32(2, 5, 2 * 8), "V": _f32(2, 5, 2 * 6)}
    attrs = {"q_num_heads": 4, "kv_num_heads": 2, "scale": 0.3, "softcap": 2.0}
    check_node("Attention", ins, attrs, opset=23, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_shape", [(3, 5), (4, 3, 5), (2, 4, 3, 5), (2, 1, 3, 4)])
@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("is_causal", [0, 1])
def test_attention_masks(mask_shape, kind, is_causal):
    ins = _qkv4()
    if kind == "bool":
        m = rng.random(mask_shape) > 0.3
        m[..., 0] = True  # keep every row attendable
    else:
        m = _f32(*mask_shape)
    ins["attn_mask"] = m
    check_node("Attention", ins, {"is_causal": is_causal}, opset=24, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_attention_past_present_qk_output(mode):
    ins = _qkv4(hkv=2, sq=2, skv=2)
    ins["attn_mask"] = _f32(2, 6)
    ins["past_key"] = _f32(2, 2, 4, 8)
    ins["past_value"] = _f32(2, 2, 4, 8)
    # onnx.reference also softcaps the mode-0 output; the spec defines it as the raw QK product.
    attrs = {"qk_matmul_output_mode": mode, "softcap": 3.0 if mode else 0.0, "is_causal": 1}
    check_node("Attention", ins, attrs, outputs=OUT4, opset=23, rtol=1e-5, atol=1e-5)


def test_attention_qk_mode0_is_raw_product_under_softcap():
    ins = _qkv4(sq=2, skv=2)
    model = node_model("Attention", ins, {"softcap": 0.5}, outputs=OUT4, opset=23)
    qk = run_onnxlite(model, ins)[3]
    want = ins["Q"] @ ins["K"].swapaxes(-1, -2) / np.sqrt(8)
    np.testing.assert_allclose(qk, want, rtol=1e-5, atol=1e-5)


def test_attention_fully_masked_row_is_zero():
    ins = _qkv4()
    m = np.ones((3, 5), bool)
    m[1] = False
    ins["attn_mask"] = m
    (y,) = check_node("Attention", ins, opset=23)
    assert not y[:, :, 1].any() and np.isfinite(y).all()


@pytest.mark.parametrize("is_causal", [0, 1])
def test_attention_nonpad_kv_seqlen(is_causal):
    ins = _qkv4(sq=2, skv=6)
    ins["nonpad_kv_seqlen"] = np.array([3, 6], np.int64)
    names = ["Q", "K", "V", "", "", "", "nonpad_kv_seqlen"]
    check_node(
        "Attention",
        ins,
        {"is_causal": is_causal},
        opset=24,
        input_names=names,
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("left,right,causal", [(1, 0, 1), (2, 1, 0), (-1, 1, 0), (0, -1, 0)])
def test_attention_sliding_window(left, right, causal):
    attrs = {"left_window_size": left, "right_window_size": right, "is_causal": causal}
    check_node("Attention", _qkv4(sq=5, skv=5), attrs, opset=25, rtol=1e-5, atol=1e-5)


def test_attention_fp16_softmax_precision():
    ins = {k: v.astype(np.float16) for k, v in _qkv4().items()}
    attrs = {"softmax_precision": 1, "qk_matmul_output_mode": 3}
    out = check_node("Attention", ins, attrs, outputs=OUT4, opset=24, rtol=2e-3, atol=2e-3)
    assert out[0].dtype == np.float16 and out[3].dtype == np.float16


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rot_dim", [0, 4])
def test_rotary_embedding_4d_position_ids(interleaved, rot_dim):
    half = (rot_dim or 8) // 2
    ins = {
        "X": _f32(2, 3, 5, 8),
        "cos": _f32(10, half),
        "sin": _f32(10, half),
        "pos": rng.integers(0, 10, (2, 5)).astype(np.int64),
    }
    attrs = {"interleaved": interleaved, "rotary_embedding_dim": rot_dim}
    check_node("RotaryEmbedding", ins, attrs, opset=23)


def test_rotary_embedding_3d_no_position_ids():
    ins = {"X": _f32(2, 5, 3 * 8), "cos": _f32(2, 5, 4), "sin": _f32(2, 5, 4)}
    check_node("RotaryEmbedding", ins, {"num_heads": 3, "interleaved": 1}, opset=23)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_swiglu(dtype):
    ins = {"A": _f32(3, 7).astype(dtype) * 4, "B": _f32(3, 7).astype(dtype)}
    check_node("SwiGLU", ins, {"alpha": 1.702}, opset=28, rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("activation", ["none", "silu"])
@pytest.mark.parametrize("past", [False, True])
def test_causal_conv_with_state(k, activation, past):
    ins = {"x": _f32(2, 3, 6), "w": _f32(3, 1, k), "b": _f32(3)}
    names = ["x", "w", "b"]
    if past:
        ins["p"] = _f32(2, 3, k - 1)
        names.append("p")
    check_node(
        "CausalConvWithState",
        ins,
        {"activation": activation},
        opset=27,
        outputs=("y", "state"),
        input_names=names,
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("hq,hkv", [(2, 2), (4, 2)])
@pytest.mark.parametrize("past", [False, True])
def test_linear_attention(rule, hq, hkv, past):
    b, t, dk, dv = 2, 5, 4, 3
    ins = {
        "q": _f32(b, t, hq * dk),
        "k": _f32(b, t, hkv * dk) * 0.5,
        "v": _f32(b, t, hkv * dv),
    }
    names = ["q", "k", "v"]
    names.append("s" if past else "")
    if past:
        ins["s"] = _f32(b, hkv, dk, dv)
    if rule in ("gated", "gated_delta"):
        ins["g"] = -np.abs(_f32(b, t, hkv * dk if hq == hkv else hkv))
        names.append("g")
    elif rule == "delta":
        names.append("")
    if rule in ("delta", "gated_delta"):
        ins["beta"] = rng.uniform(0, 1, (b, t, hkv)).astype(np.float32)
        names.append("beta")
    attrs = {"q_num_heads": hq, "kv_num_heads": hkv, "update_rule": rule}
    check_node(
        "LinearAttention",
        ins,
        attrs,
        opset=27,
        outputs=("y", "state"),
        input_names=names,
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("hkv", [4, 2])
def test_flex_attention(hkv):
    ins = _qkv4(hkv=hkv)
    check_node(
        "FlexAttention",
        ins,
        {"scale": 0.5},
        opset=26,
        domain="ai.onnx.preview",
        rtol=1e-5,
        atol=1e-5,
    )


def test_attention_does_not_mutate_inputs():
    ins = _qkv4()
    ins["attn_mask"] = _f32(3, 6)
    ins["past_key"] = _f32(2, 4, 1, 8)
    ins["past_value"] = _f32(2, 4, 1, 8)
    copies = {k: v.copy() for k, v in ins.items()}
    model = node_model("Attention", ins, {"is_causal": 1}, outputs=OUT4, opset=23)
    run_onnxlite(model, ins)
    for k, v in ins.items():
        np.testing.assert_array_equal(v, copies[k])
