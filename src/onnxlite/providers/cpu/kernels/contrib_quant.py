"""com.microsoft quantized ops: QuantizeLinear and DequantizeLinear (the forms onnxruntime's
quantizer writes for 16-bit and 4-bit QDQ models below opset 21), MatMulNBits,
MatMulIntegerToFloat, DynamicQuantizeMatMul, QGemm, the QLinear elementwise / pooling / concat
ops, QAttention and DynamicQuantizeLSTM.

Integer products run as float64 GEMMs on zero-point-shifted operands (exact for 8-bit operands);
requantization follows onnxruntime's MLAS: float32 multipliers, round half to even, saturate.
"""

from __future__ import annotations

import threading

import numpy as np

from ...registry import NodeInfo
from ..registry import kernel
from .contrib_attention import attention_from_qkv
from .conv import compute_dtype
from .linalg import exact_int_matmul
from .pool import average_pool
from .quantize import dequantize_linear, dynamic_quantize_linear, quantize_linear
from .rnn import _activations, _clipper

MS = "com.microsoft"
_F32 = np.float32
_FLOAT = 1  # TensorProto.FLOAT


def _scalar(v, default=0.0):
    return default if v is None else np.asarray(v).reshape(-1)[0]


def _shift(x, zp, axis=None) -> np.ndarray:
    """x - zero_point in float64 (exact); a 1-D zero point lies along ``axis``."""
    xf = np.asarray(x).astype(np.float64)
    if zp is None:
        return xf
    z = np.asarray(zp).astype(np.float64)
    if z.size == 1:
        return xf - z.reshape(())
    if axis is not None:
        shape = [1] * xf.ndim
        shape[axis] = z.size
        z = z.reshape(shape)
    return xf - z


def _saturate(v: np.ndarray, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def _quantize(v: np.ndarray, scale, zp, dtype) -> np.ndarray:
    """MLAS QuantizeLinear: round-half-even(v / scale) + zp, in float32, saturated."""
    q = np.rint(np.asarray(v, dtype=_F32) / _F32(scale))
    q += _F32(_scalar(zp))
    return _saturate(q, dtype)


def _requantize(acc: np.ndarray, mult, zp, dtype) -> np.ndarray:
    """MLAS requantization of an int32 accumulator: round(float32(acc) * mult) + zp."""
    q = np.rint(acc.astype(_F32) * np.asarray(mult, dtype=_F32))
    q += _F32(_scalar(zp))
    return _saturate(q, dtype)


def _zp_dtype(zp, x) -> np.dtype:
    return np.asarray(zp).dtype if zp is not None else np.asarray(x).dtype


# --------------------------------------------------------------------------- MatMulNBits


def _unpack(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 (..., n) -> (..., n * 8 / bits) values, low bits first."""
    if bits == 8:
        return packed
    per = 8 // bits
    shifts = (np.arange(per, dtype=np.uint8) * bits).astype(np.uint8)
    vals = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    return vals.reshape(*packed.shape[:-1], packed.shape[-1] * per)


def _dequant_nbits(b, scales, zero_points, g_idx, *, K, N, bits, block_size, ct):
    """The (K, N) float weight of MatMulNBits."""
    nb = -(-K // block_size)
    q = _unpack(np.asarray(b).reshape(N, nb, -1), bits).astype(ct)  # (N, nb, block_size)
    sc = np.asarray(scales).astype(ct).reshape(N, nb)
    if zero_points is None:
        zp = np.full((N, nb), 1 << (bits - 1), dtype=ct)
    elif zero_points.dtype == np.uint8:
        zp = _unpack(zero_points.reshape(N, -1), bits)[:, :nb].astype(ct)
    else:
        zp = np.asarray(zero_points).astype(ct).reshape(N, nb)
    if g_idx is not None and np.asarray(g_idx).size:
        g = np.asarray(g_idx).reshape(-1)[:K].astype(np.int64)
        w = (q.reshape(N, -1)[:, :K] - zp[:, g]) * sc[:, g]
    else:
        w = ((q - zp[..., None]) * sc[..., None]).reshape(N, -1)[:, :K]
    return np.ascontiguousarray(w.T)


@kernel("QuantizeLinear", since=1, domain=MS)
def ms_quantize_linear(x, y_scale, y_zero_point=None, *, axis=1):
    """ONNX QuantizeLinear (per tensor or per axis) for int8/uint8/int16/uint16/int4/uint4 outputs;
    float16 input is divided in float32, as onnxruntime does (float16 division rounds some
    quotients to the other side of a half)."""
    return quantize_linear(
        x, y_scale, y_zero_point, axis=axis, precision=_FLOAT if x.dtype.itemsize < 4 else 0
    )


@kernel("DequantizeLinear", since=1, domain=MS)
def ms_dequantize_linear(x, x_scale, x_zero_point=None, *, axis=1):
    """ONNX DequantizeLinear (per tensor or per axis); the output has the scale's type."""
    return dequantize_linear(x, x_scale, x_zero_point, axis=axis)


@kernel("MatMulNBits", since=1, domain=MS, factory=True)
def matmul_nbits(info: NodeInfo):
    at = info.attrs
    unknown = set(at) - {"K", "N", "bits", "block_size", "accuracy_level", "weight_prepacked"}
    if unknown:
        raise ValueError(f"{info.describe()}: unsupported attribute(s) {sorted(unknown)}")
    K, N = int(at["K"]), int(at["N"])
    bits, block = int(at.get("bits", 4)), int(at["block_size"])
    if bits not in (1, 2, 4, 8):
        raise NotImplementedError(f"{info.describe()}: bits={bits} is not supported (1, 2, 4 or 8)")
    if int(at.get("weight_prepacked", 0)):
        raise NotImplementedError(f"{info.describe()}: EP-prepacked weights are not supported on CPU")
    # The weight is usually constant: keep the last dequantized one, keyed by its inputs' identity.
    lock = threading.Lock()
    cache: list = [None, None]

    def run(a, b, scales, zero_points=None, g_idx=None, bias=None):
        ct = compute_dtype(a.dtype)
        out_shape = (*a.shape[:-1], N)
        if 0 in np.shape(b):  # an omitted projection
            y = np.zeros(out_shape, dtype=ct)
            if bias is not None:
                y += bias.astype(ct)
            return y.astype(a.dtype)
        key = (b, scales, zero_points, g_idx)
        with lock:
            hit = cache[0] is not None and all(x is y for x, y in zip(cache[0], key))
            w = cache[1] if hit else None
        if w is None or w.dtype != ct:
            w = _dequant_nbits(b, scales, zero_points, g_idx, K=K, N=N, bits=bits, block_size=block, ct=ct)
            with lock:
                cache[0], cache[1] = key, w
        y = a.astype(ct, copy=False) @ w
        if bias is not None:
            y += bias.astype(ct)
        return y.astype(a.dtype, copy=False)

    return run


# --------------------------------------------------------------------------- integer GEMMs


def _col_param(v, n_cols):
    """A scalar or per-column (last axis) parameter."""
    a = np.asarray(v)
    return a.reshape(()) if a.size == 1 else a.reshape(n_cols)


@kernel("MatMulIntegerToFloat", since=1, domain=MS)
def matmul_integer_to_float(a, b, a_scale, b_scale, a_zero_point=None, b_zero_point=None, bias=None):
    acc = exact_int_matmul(_shift(a, a_zero_point, -1 if a.ndim else None), _shift(b, b_zero_point, -1))
    n = b.shape[-1]
    mult = np.asarray(a_scale, dtype=_F32) * _col_param(b_scale, n).astype(_F32)
    y = acc.astype(_F32) * mult
    if bias is not None:
        y += bias.astype(_F32)
    return y.astype(np.asarray(a_scale).dtype)


@kernel("DynamicQuantizeMatMul", since=1, domain=MS)
def dynamic_quantize_matmul(a, b, b_scale, b_zero_point=None, bias=None):
    aq, a_scale, a_zp = dynamic_quantize_linear(a.astype(_F32))
    acc = exact_int_matmul(_shift(aq, a_zp), _shift(b, b_zero_point, -1))
    mult = _F32(a_scale) * _col_param(b_scale, b.shape[-1]).astype(_F32)
    y = acc.astype(_F32) * mult
    if bias is not None:
        y += bias.astype(_F32)
    return y.astype(a.dtype)


@kernel("QGemm", since=1, domain=MS)
def qgemm(
    A,
    a_scale,
    a_zero_point,
    B,
    b_scale,
    b_zero_point,
    C=None,
    y_scale=None,
    y_zero_point=None,
    *,
    alpha=1.0,
    transA=0,
    transB=0,
):
    """alpha * a_scale * b_scale * ((A - za)(B - zb) + C); quantized to y_scale when given."""
    a = _shift(A, a_zero_point)
    n = B.shape[0] if transB else B.shape[1]
    b = _shift(B, b_zero_point, 0 if transB else 1)
    acc = exact_int_matmul(a.T if transA else a, b.T if transB else b)
    if C is not None:
        acc += np.asarray(C).astype(np.float64)
    mult = _F32(a_scale) * _col_param(b_scale, n).astype(_F32) * _F32(alpha)
    if y_scale is None:
        return acc.astype(_F32) * mult
    return _requantize(acc, mult / _F32(y_scale), y_zero_point, _zp_dtype(y_zero_point, A))


# --------------------------------------------------------------------------- QLinear elementwise


@kernel("QLinearAdd", since=1, domain=MS)
def qlinear_add(A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point=None):
    ra = _F32(A_scale) / _F32(C_scale)
    rb = _F32(B_scale) / _F32(C_scale)
    a = A.astype(_F32) - _F32(_scalar(A_zero_point))
    b = B.astype(_F32) - _F32(_scalar(B_zero_point))
    # the zero point is added before rounding, as MLAS does (it decides ties)
    v = ra * a + rb * b + _F32(_scalar(C_zero_point))
    return _saturate(np.rint(v), A.dtype)


@kernel("QLinearMul", since=1, domain=MS)
def qlinear_mul(A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point=None):
    ratio = _F32(A_scale) * _F32(B_scale) / _F32(C_scale)
    a = A.astype(_F32) - _F32(_scalar(A_zero_point))
    b = B.astype(_F32) - _F32(_scalar(B_zero_point))
    return _saturate(np.rint(a * b * ratio + _F32(_scalar(C_zero_point))), A.dtype)


def _lookup(X, X_scale, X_zero_point, Y_scale, Y_zero_point, fn):
    """Table-driven 8-bit unary op, as onnxruntime builds it: dequantize each of the 256 codes,
    apply fn in float32, quantize."""
    info = np.iinfo(X.dtype)
    codes = np.arange(info.min, info.max + 1)
    d = (codes.astype(_F32) - _F32(_scalar(X_zero_point))) * _F32(X_scale)
    table = _quantize(fn(d), Y_scale, Y_zero_point, X.dtype)
    return table[X.astype(np.int64) - info.min]


@kernel("QLinearSigmoid", since=1, domain=MS)
def qlinear_sigmoid(X, X_scale, X_zero_point, Y_scale, Y_zero_point=None):
    def fn(d):
        return _F32(1) / (_F32(1) + np.exp(-d))

    return _lookup(X, X_scale, X_zero_point, Y_scale, Y_zero_point, fn)


@kernel("QLinearLeakyRelu", since=1, domain=MS)
def qlinear_leaky_relu(X, X_scale, X_zero_point, Y_scale, Y_zero_point=None, *, alpha=0.01):
    def fn(d):
        return np.where(d >= 0, d, d * _F32(alpha))

    return _lookup(X, X_scale, X_zero_point, Y_scale, Y_zero_point, fn)


# --------------------------------------------------------------------------- pooling / concat


@kernel("QLinearGlobalAveragePool", since=1, domain=MS)
def qlinear_global_average_pool(X, x_scale, x_zero_point, y_scale, y_zero_point, *, channels_last=0):
    axes = tuple(range(1, X.ndim - 1)) if channels_last else tuple(range(2, X.ndim))
    size = int(np.prod([X.shape[a] for a in axes]))
    acc = X.astype(np.int64).sum(axis=axes, keepdims=True) - int(_scalar(x_zero_point)) * size
    mult = _F32(x_scale) / (_F32(y_scale) * _F32(size))
    return _requantize(acc, mult, y_zero_point, X.dtype)


@kernel("QLinearAveragePool", since=1, domain=MS)
def qlinear_average_pool(
    X,
    x_scale,
    x_zero_point,
    y_scale,
    y_zero_point=None,
    *,
    auto_pad="NOTSET",
    ceil_mode=0,
    channels_last=0,
    count_include_pad=0,
    kernel_shape=None,
    pads=None,
    strides=None,
):
    x = np.moveaxis(X, -1, 1) if channels_last else X
    d = (x.astype(_F32) - _F32(_scalar(x_zero_point))) * _F32(x_scale)
    y = average_pool(
        d,
        auto_pad=auto_pad,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        kernel_shape=kernel_shape,
        pads=pads,
        strides=strides,
    )
    # unlike MLAS QuantizeLinear, the pool adds the zero point before rounding
    q = _saturate(np.rint(y / _F32(y_scale) + _F32(_scalar(y_zero_point))), X.dtype)
    return np.ascontiguousarray(np.moveaxis(q, 1, -1)) if channels_last else q


@kernel("QLinearConcat", since=1, domain=MS)
def qlinear_concat(Y_scale, Y_zero_point, *inputs, axis):
    if len(inputs) % 3:
        raise ValueError("QLinearConcat inputs come in (tensor, scale, zero_point) triples")
    dtype = np.asarray(Y_zero_point).dtype
    parts = []
    for x, s, z in zip(inputs[0::3], inputs[1::3], inputs[2::3]):
        if _F32(s) == _F32(Y_scale) and _scalar(z) == _scalar(Y_zero_point):
            parts.append(x)
        else:
            parts.append(_lookup(x, s, z, Y_scale, Y_zero_point, lambda d: d))
    return np.concatenate(parts, axis=axis).astype(dtype, copy=False)


# --------------------------------------------------------------------------- QAttention


@kernel("QAttention", since=1, domain=MS)
def qattention(
    input,
    weight,
    bias,
    input_scale,
    weight_scale,
    mask_index=None,
    input_zero_point=None,
    weight_zero_point=None,
    past=None,
    *,
    num_heads,
    scale=0.0,
    mask_filter_value=-10000.0,
    unidirectional=0,
    past_present_share_buffer=0,
    do_rotary=0,
):
    if do_rotary:
        raise NotImplementedError("QAttention: do_rotary is not supported by the CPU kernel")
    acc = exact_int_matmul(_shift(input, input_zero_point), _shift(weight, weight_zero_point, -1))
    mult = _F32(input_scale) * _col_param(weight_scale, weight.shape[-1]).astype(_F32)
    qkv = acc.astype(_F32) * mult + bias.astype(_F32)
    return attention_from_qkv(
        qkv,
        mask_index,
        past,
        None,
        None,
        num_heads=num_heads,
        qkv_hidden_sizes=None,
        scale=scale,
        mask_filter_value=mask_filter_value,
        unidirectional=unidirectional,
        past_present_share_buffer=past_present_share_buffer,
        out_dtype=np.asarray(bias).dtype,
    )


# --------------------------------------------------------------------------- DynamicQuantizeLSTM


def _dyn_qgemm(x: np.ndarray, w_shifted: np.ndarray, w_scale) -> np.ndarray:
    """onnxruntime's quantized-weight GEMM: x is quantized per call to uint8 over its own range,
    multiplied exactly, and scaled back per output column."""
    xq, xs, xz = dynamic_quantize_linear(x.astype(_F32))
    acc = exact_int_matmul(_shift(xq, xz), w_shifted)
    return acc.astype(_F32) * (_F32(xs) * w_scale)


@kernel("DynamicQuantizeLSTM", since=1, domain=MS)
def dynamic_quantize_lstm(
    X,
    W,
    R,
    B=None,
    sequence_lens=None,
    initial_h=None,
    initial_c=None,
    P=None,
    W_scale=None,
    W_zero_point=None,
    R_scale=None,
    R_zero_point=None,
    *,
    activation_alpha=None,
    activation_beta=None,
    activations=None,
    clip=None,
    direction="forward",
    hidden_size=None,
    input_forget=0,
):
    """LSTM (gates i, o, f, c) with int8/uint8 weights laid out [dirs, in, 4H] for X @ W.

    X and each step's hidden state are quantized over all batch rows at once, which is what
    onnxruntime does with one intra-op thread; with more threads it quantizes each thread's
    chunk of rows on its own, so its results then depend on the thread count (by ~1e-3).
    """
    nd = W.shape[0]
    seq, batch, _ = X.shape
    hid = R.shape[1]
    acts = _activations(activations, activation_alpha, activation_beta, ("Sigmoid", "Tanh", "Tanh"), nd)
    clipper = _clipper(clip)
    lens = np.full(batch, seq) if sequence_lens is None else np.asarray(sequence_lens).astype(np.int64)
    Y = np.zeros((seq, nd, batch, hid), _F32)
    Yh = np.zeros((nd, batch, hid), _F32)
    Yc = np.zeros((nd, batch, hid), _F32)
    for d in range(nd):
        reverse = direction == "reverse" or d == 1
        ws = np.asarray(W_scale, dtype=_F32).reshape(nd, -1)[d]
        rs = np.asarray(R_scale, dtype=_F32).reshape(nd, -1)[d]
        wz = np.asarray(W_zero_point).reshape(nd, -1)[d]
        rz = np.asarray(R_zero_point).reshape(nd, -1)[d]
        wf = _shift(W[d], wz if wz.size > 1 else wz[0], -1)
        rf = _shift(R[d], rz if rz.size > 1 else rz[0], -1)
        bias = np.zeros(4 * hid, _F32) if B is None else (B[d, : 4 * hid] + B[d, 4 * hid :]).astype(_F32)
        p = np.zeros((3, hid), _F32) if P is None else P[d].astype(_F32).reshape(3, hid)
        f_act, g_act, h_act = acts[d]
        # reverse: each sequence reversed within its own length, padding steps left in place
        # (they still widen the shared quantization range of X, as in onnxruntime)
        steps = np.arange(seq)[:, None]
        idx = np.where(steps < lens[None, :], lens[None, :] - 1 - steps, steps) if reverse else None
        xs = X.astype(_F32)
        if idx is not None:
            xs = xs[idx, np.arange(batch)[None, :]]
        xw = _dyn_qgemm(xs.reshape(seq * batch, -1), wf, ws).reshape(seq, batch, 4 * hid)
        h = np.zeros((batch, hid), _F32) if initial_h is None else initial_h[d].astype(_F32)
        c = np.zeros((batch, hid), _F32) if initial_c is None else initial_c[d].astype(_F32)
        for t in range(seq):
            # the recurrent GEMM reads the previous output rows: zeros for finished sequences,
            # which matters because the rows share one quantization range
            h_in = h if t == 0 or sequence_lens is None else np.where((t - 1 < lens)[:, None], h, 0)
            gates = xw[t] + _dyn_qgemm(h_in, rf, rs) + bias
            gi, go, gf, gc = np.split(gates, 4, axis=1)
            i = f_act(clipper(gi + p[0] * c))
            f = 1 - i if input_forget else f_act(clipper(gf + p[2] * c))
            c_new = f * c + i * g_act(clipper(gc))
            o = f_act(clipper(go + p[1] * c_new))
            h_new = o * h_act(c_new)
            live = (t < lens)[:, None]
            h = np.where(live, h_new, h)
            c = np.where(live, c_new, c)
            out_t = np.where(live, h_new, 0)
            if idx is None:
                Y[t, d] = out_t
            else:
                rows = np.arange(batch)[lens > t]
                Y[idx[t, rows], d, rows] = out_t[rows]
        Yh[d], Yc[d] = h, c
    return Y, Yh, Yc
