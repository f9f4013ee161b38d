"""Recurrent kernels: RNN, GRU and LSTM (all directions, sequence_lens, layout, activations).

The input projection ``X @ W^T + Wb`` is one GEMM over every time step; only the recurrent
``H @ R^T`` runs per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..registry import kernel

Act = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x):
    # Split by sign so exp never overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _make_act(name: str, alpha: float | None, beta: float | None) -> Act:
    n = name.lower()
    if n == "relu":
        return lambda x: np.maximum(x, 0)
    if n == "tanh":
        return np.tanh
    if n == "sigmoid":
        return _sigmoid
    if n == "affine":
        a, b = (1.0 if alpha is None else alpha), (0.0 if beta is None else beta)
        return lambda x: a * x + b
    if n == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: np.where(x >= 0, x, a * x)
    if n == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x > a, x, 0).astype(x.dtype)
    if n == "scaledtanh":
        a, b = (1.0 if alpha is None else alpha), (1.0 if beta is None else beta)
        return lambda x: a * np.tanh(b * x)
    if n == "hardsigmoid":
        a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        return lambda x: np.clip(a * x + b, 0, 1)
    if n == "elu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1))
    if n == "softsign":
        return lambda x: x / (1 + np.abs(x))
    if n == "softplus":
        return lambda x: np.logaddexp(0, x)
    raise ValueError(f"unsupported RNN activation {name!r}")


_USES_ALPHA = {"affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid", "elu"}
_USES_BETA = {"affine", "scaledtanh", "hardsigmoid"}


def _activations(
    names: Sequence[str] | None,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
    defaults: Sequence[str],
    num_dirs: int,
) -> list[list[Act]]:
    """Activation functions per direction; alpha/beta are consumed in order by the
    activations that take them (onnxruntime's convention)."""
    per_dir = len(defaults)
    names = list(names) if names else list(defaults) * num_dirs
    if len(names) < per_dir * num_dirs:  # a forward-only list reused for both directions
        names = (names * num_dirs)[: per_dir * num_dirs]
    ia, ib = iter(alphas or ()), iter(betas or ())
    acts = []
    for n in names[: per_dir * num_dirs]:
        low = n.lower()
        a = next(ia, None) if low in _USES_ALPHA else None
        b = next(ib, None) if low in _USES_BETA else None
        acts.append(_make_act(n, a, b))
    return [acts[d * per_dir : (d + 1) * per_dir] for d in range(num_dirs)]


def _clipper(clip: float | None) -> Callable[[np.ndarray], np.ndarray]:
    if clip is None:
        return lambda x: x
    c = float(clip)
    return lambda x: np.clip(x, -c, c)


def _compute_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


# A cell runs one direction over time: (xw[S,B,G*H], R^T, Rb, h0, c0, mask[S,B] | None, acts)
# -> (Y[S,B,H], h_last, c_last).


def _run_rnn(
    X,
    W,
    R,
    B,
    sequence_lens,
    initial_h,
    initial_c,
    *,
    n_gates,
    direction,
    layout,
    cell,
    need_c=False,
):
    dt = X.dtype
    cdt = _compute_dtype(dt)
    X = X.astype(cdt, copy=False)
    if layout:
        X = X.swapaxes(0, 1)
        initial_h = None if initial_h is None else initial_h.swapaxes(0, 1)
        initial_c = None if initial_c is None else initial_c.swapaxes(0, 1)
    S, Bt, I = X.shape
    nd, hidden = W.shape[0], R.shape[-1]
    G = n_gates * hidden
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"unsupported direction {direction!r}")
    if nd != (2 if direction == "bidirectional" else 1):
        raise ValueError(f"direction={direction!r} does not match W's {nd} direction(s)")
    if B is None:
        B = np.zeros((nd, 2 * G), dtype=cdt)
    B = B.astype(cdt, copy=False)
    h0 = np.zeros((nd, Bt, hidden), cdt) if initial_h is None else initial_h.astype(cdt)
    c0 = np.zeros((nd, Bt, hidden), cdt) if initial_c is None else initial_c.astype(cdt)

    lens = None
    if sequence_lens is not None:
        lens = np.asarray(sequence_lens).astype(np.int64).reshape(-1)
        if np.all(lens == S):
            lens = None
    steps = np.arange(S)[:, None]
    mask = None if lens is None else steps < lens[None, :]
    bidx = np.arange(Bt)[None, :]

    Y = np.zeros((S, nd, Bt, hidden), dtype=cdt)
    Yh = np.empty((nd, Bt, hidden), dtype=cdt)
    Yc = np.empty((nd, Bt, hidden), dtype=cdt)
    x2 = X.reshape(S * Bt, I)
    for d in range(nd):
        reverse = direction == "reverse" or d == 1
        xw = (x2 @ W[d].astype(cdt, copy=False).T + B[d, :G]).reshape(S, Bt, G)
        if reverse:
            if lens is None:
                xw = xw[::-1]
            else:  # each batch entry reverses within its own length
                ridx = np.where(mask, lens[None, :] - 1 - steps, 0)
                xw = xw[ridx, bidx]
        y, h, c = cell(xw, R[d].astype(cdt, copy=False).T, B[d, G:], h0[d], c0[d], mask, d)
        if reverse:
            if lens is None:
                y = y[::-1]
            else:
                y_out = np.zeros_like(y)
                y_out[ridx[mask], np.broadcast_to(bidx, mask.shape)[mask]] = y[mask]
                y = y_out
        Y[:, d] = y
        Yh[d], Yc[d] = h, c
    if layout:
        Y = Y.transpose(2, 0, 1, 3)
        Yh = Yh.swapaxes(0, 1)
        Yc = Yc.swapaxes(0, 1)
    out = (Y.astype(dt), Yh.astype(dt))
    return (*out, Yc.astype(dt)) if need_c else out


def _step_loop(xw, mask, h, c, step):
    """Drives ``step(t, h, c) -> (h_new, c_new)`` over time, freezing finished sequences."""
    S = xw.shape[0]
    ys = np.zeros((S, *h.shape), dtype=h.dtype)
    for t in range(S):
        hn, cn = step(t, h, c)
        if mask is not None:
            m = mask[t][:, None]
            hn = np.where(m, hn, h)
            cn = np.where(m, cn, c)
            ys[t] = np.where(m, hn, 0)
        else:
            ys[t] = hn
        h, c = hn, cn
    return ys, h, c


@kernel("RNN", since=1)
def rnn(
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    *,
    activation_alpha=None,
    activation_beta=None,
    activations=("Tanh", "Tanh"),
    clip=None,
    direction="forward",
    hidden_size=None,
    layout=0,
    output_sequence=0,
):
    nd = W.shape[0]
    acts = _activations(activations, activation_alpha, activation_beta, ("Tanh",), nd)
    clipf = _clipper(clip)

    def cell(xw, Rt, Rb, h0, c0, mask, d):
        (f,) = acts[d]
        xw = xw + Rb

        def step(t, h, c):
            return f(clipf(xw[t] + h @ Rt)), c

        return _step_loop(xw, mask, h0, c0, step)

    return _run_rnn(
        X,
        W,
        R,
        B,
        sequence_lens,
        initial_h,
        None,
        n_gates=1,
        direction=direction,
        layout=layout,
        cell=cell,
    )


@kernel("GRU", since=1)
def gru(
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    *,
    activation_alpha=None,
    activation_beta=None,
    activations=None,
    clip=None,
    direction="forward",
    hidden_size=None,
    layout=0,
    linear_before_reset=0,
    output_sequence=0,
):
    nd = W.shape[0]
    acts = _activations(activations, activation_alpha, activation_beta, ("Sigmoid", "Tanh"), nd)
    clipf = _clipper(clip)
    if direction == "foward":  # GRU-1's default attribute value carries this typo
        direction = "forward"

    def cell(xw, Rt, Rb, h0, c0, mask, d):
        f, g = acts[d]
        H = Rt.shape[0]
        Rzr, Rh = Rt[:, : 2 * H], Rt[:, 2 * H :]
        xzr = xw[:, :, : 2 * H] + Rb[: 2 * H]
        xh = xw[:, :, 2 * H :]
        rbh = Rb[2 * H :]

        def step(t, h, c):
            zr = f(clipf(xzr[t] + h @ Rzr))
            z, r = zr[:, :H], zr[:, H:]
            if linear_before_reset:
                hh = g(clipf(xh[t] + r * (h @ Rh + rbh)))
            else:
                hh = g(clipf(xh[t] + (r * h) @ Rh + rbh))
            return (1 - z) * hh + z * h, c

        return _step_loop(xw, mask, h0, c0, step)

    return _run_rnn(
        X,
        W,
        R,
        B,
        sequence_lens,
        initial_h,
        None,
        n_gates=3,
        direction=direction,
        layout=layout,
        cell=cell,
    )


@kernel("LSTM", since=1)
def lstm(
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    initial_c=None,
    P=None,
    *,
    activation_alpha=None,
    activation_beta=None,
    activations=None,
    clip=None,
    direction="forward",
    hidden_size=None,
    input_forget=0,
    layout=0,
    output_sequence=0,
):
    nd = W.shape[0]
    acts = _activations(activations, activation_alpha, activation_beta, ("Sigmoid", "Tanh", "Tanh"), nd)
    clipf = _clipper(clip)
    cdt = _compute_dtype(X.dtype)
    peep = None if P is None else P.astype(cdt).reshape(nd, 3, -1)

    def cell(xw, Rt, Rb, h0, c0, mask, d):
        f, g, hact = acts[d]
        H = Rt.shape[0]
        xw = xw + Rb
        pi = po = pf = None
        if peep is not None:
            pi, po, pf = peep[d]

        def step(t, h, c):
            gates = xw[t] + h @ Rt
            gi, go, gf, gc = (gates[:, k * H : (k + 1) * H] for k in range(4))
            if pi is not None:
                gi = gi + pi * c
                gf = gf + pf * c
            i = f(clipf(gi))
            fg = 1 - i if input_forget else f(clipf(gf))
            cn = fg * c + i * g(clipf(gc))
            if po is not None:
                go = go + po * cn
            o = f(clipf(go))
            return o * hact(cn), cn

        return _step_loop(xw, mask, h0, c0, step)

    return _run_rnn(
        X,
        W,
        R,
        B,
        sequence_lens,
        initial_h,
        initial_c,
        n_gates=4,
        direction=direction,
        layout=layout,
        cell=cell,
        need_c=True,
    )
