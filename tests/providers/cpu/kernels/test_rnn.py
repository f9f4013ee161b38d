"""RNN / GRU / LSTM against onnx.reference, plus explicit checks for what it ignores
(sequence_lens, activations, clip)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite, run_reference

rng = np.random.default_rng(0)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
OUTS = {"RNN": ("y", "y_h"), "GRU": ("y", "y_h"), "LSTM": ("y", "y_h", "y_c")}
S, BATCH, IN, H = 4, 3, 5, 6


def _inputs(op, nd, layout=0, bias=True, init=True, peep=False):
    g = GATES[op]
    d = {
        "X": rng.standard_normal((BATCH, S, IN) if layout else (S, BATCH, IN)),
        "W": rng.standard_normal((nd, g * H, IN)) * 0.5,
        "R": rng.standard_normal((nd, g * H, H)) * 0.5,
    }
    names = ["X", "W", "R"]
    if bias:
        d["B"] = rng.standard_normal((nd, 2 * g * H))
        names.append("B")
    state = (BATCH, nd, H) if layout else (nd, BATCH, H)
    if init:
        names += ["", "h0"]
        d["h0"] = rng.standard_normal(state)
        if op == "LSTM":
            d["c0"] = rng.standard_normal(state)
            names.append("c0")
    if peep:
        d["P"] = rng.standard_normal((nd, 3 * H))
        names.append("P")
    return {k: v.astype(np.float32) for k, v in d.items()}, names


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("opset", [7, 14, 22])
def test_directions(op, direction, opset):
    nd = 2 if direction == "bidirectional" else 1
    ins, names = _inputs(op, nd)
    attrs = {"hidden_size": H, "direction": direction}
    check_node(op, ins, attrs, outputs=OUTS[op], opset=opset, input_names=names, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_layout_batch_first(op):
    ins, names = _inputs(op, 2, layout=1)
    attrs = {"hidden_size": H, "direction": "bidirectional", "layout": 1}
    check_node(op, ins, attrs, outputs=OUTS[op], opset=14, input_names=names, rtol=1e-4, atol=1e-5)


def test_gru_linear_before_reset_and_defaults():
    ins, names = _inputs("GRU", 1, bias=False, init=False)
    attrs = {"hidden_size": H, "linear_before_reset": 1}
    check_node("GRU", ins, attrs, outputs=("y", "y_h"), input_names=names, rtol=1e-4, atol=1e-5)


def test_lstm_peepholes_and_y_only():
    ins, names = _inputs("LSTM", 1, peep=True)
    check_node("LSTM", ins, {"hidden_size": H}, outputs=("y",), input_names=names, rtol=1e-4, atol=1e-5)


def test_float64():
    ins, names = _inputs("GRU", 1)
    ins = {k: v.astype(np.float64) for k, v in ins.items()}
    out = check_node("GRU", ins, {"hidden_size": H}, outputs=("y", "y_h"), input_names=names)
    assert out[0].dtype == np.float64


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_sequence_lens(op, direction):
    """Each batch entry must equal the op run on its own unpadded sequence; padding is 0."""
    nd = 2 if direction == "bidirectional" else 1
    ins, names = _inputs(op, nd)
    lens = np.array([4, 2, 1], np.int32)
    full = dict(ins, seq=lens)
    full_names = [*names[:4], "seq", *names[5:]]
    attrs = {"hidden_size": H, "direction": direction}
    model = node_model(op, full, attrs, outputs=OUTS[op], input_names=full_names)
    got = run_onnxlite(model, full)
    for b, n in enumerate(lens):
        one = dict(ins, X=ins["X"][:n, b : b + 1])
        for k in ("h0", "c0"):
            if k in one:
                one[k] = ins[k][:, b : b + 1]
        want = run_reference(node_model(op, one, attrs, outputs=OUTS[op], input_names=names), one)
        np.testing.assert_allclose(got[0][:n, :, b : b + 1], want[0], rtol=1e-4, atol=1e-5)
        assert not got[0][n:, :, b].any()
        for g, w in zip(got[1:], want[1:]):
            np.testing.assert_allclose(g[:, b : b + 1], w, rtol=1e-4, atol=1e-5)


def _rnn_by_hand(x, w, r, b, h, f):
    ys = []
    for t in range(x.shape[0]):
        h = f(x[t] @ w.T + h @ r.T + b[:H] + b[H:])
        ys.append(h)
    return np.stack(ys)[:, None], h[None]


@pytest.mark.parametrize(
    "acts,alpha,beta,f",
    [
        (["Relu"], None, None, lambda v: np.maximum(v, 0)),
        (["LeakyRelu"], [0.2], None, lambda v: np.where(v >= 0, v, 0.2 * v)),
        (["HardSigmoid"], [0.3], [0.4], lambda v: np.clip(0.3 * v + 0.4, 0, 1)),
        (["ScaledTanh"], [1.5], [0.5], lambda v: 1.5 * np.tanh(0.5 * v)),
        (["Affine"], [2.0], [-1.0], lambda v: 2.0 * v - 1.0),
    ],
)
def test_rnn_activations(acts, alpha, beta, f):
    ins, names = _inputs("RNN", 1)
    attrs = {"hidden_size": H, "activations": acts}
    if alpha:
        attrs["activation_alpha"] = alpha
    if beta:
        attrs["activation_beta"] = beta
    model = node_model("RNN", ins, attrs, outputs=("y", "y_h"), input_names=names)
    y, yh = run_onnxlite(model, ins)
    wy, wyh = _rnn_by_hand(ins["X"], ins["W"][0], ins["R"][0], ins["B"][0], ins["h0"][0], f)
    np.testing.assert_allclose(y, wy, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yh, wyh, rtol=1e-5, atol=1e-5)


def test_rnn_clip():
    ins, names = _inputs("RNN", 1)
    attrs = {"hidden_size": H, "clip": 0.25}
    model = node_model("RNN", ins, attrs, outputs=("y", "y_h"), input_names=names)
    y, _ = run_onnxlite(model, ins)
    f = lambda v: np.tanh(np.clip(v, -0.25, 0.25))  # noqa: E731
    wy, _ = _rnn_by_hand(ins["X"], ins["W"][0], ins["R"][0], ins["B"][0], ins["h0"][0], f)
    np.testing.assert_allclose(y, wy, rtol=1e-5, atol=1e-6)
