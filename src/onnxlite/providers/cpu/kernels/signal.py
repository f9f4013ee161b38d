"""Signal kernels: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix.

Signals carry complex values as a trailing dimension: 1 (real) or 2 (real, imaginary).
"""

from __future__ import annotations

import numpy as np

from ....types import np_dtype
from ..registry import kernel


def _scalar_int(v) -> int:
    return int(np.asarray(v).reshape(-1)[0])


def _work_dtype(dt: np.dtype) -> np.dtype:
    # numpy.fft runs natively in float32/float64; half types go through float32.
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _to_complex(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """The signal without its trailing component dim, as real or complex values, and whether
    it is complex."""
    wd = _work_dtype(x.dtype)
    if x.shape[-1] == 1:
        return x[..., 0].astype(wd, copy=False), False
    if x.shape[-1] != 2:
        raise ValueError(f"the last dimension of a signal must be 1 or 2, got {x.shape[-1]}")
    xc = np.ascontiguousarray(x, dtype=wd)
    return xc.view(np.complex128 if wd == np.float64 else np.complex64)[..., 0], True


def _to_pairs(c: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.empty((*c.shape, 2), dtype=dtype)
    out[..., 0] = c.real
    out[..., 1] = c.imag
    return out


def _dft(x, dft_length, axis: int, inverse: int, onesided: int) -> np.ndarray:
    x = np.asarray(x)
    r = x.ndim
    if not -r <= axis <= r - 2 or axis == -1:
        raise ValueError(f"DFT axis {axis} is out of range for an input of rank {r}")
    ax = axis % r
    sig, is_complex = _to_complex(x)
    dim = sig.shape[ax]
    if dft_length is not None:
        n = _scalar_int(dft_length)
    elif inverse and onesided:
        n = 2 * (dim - 1)
    else:
        n = dim
    if n < 1:
        raise ValueError(f"DFT length must be positive, got {n}")
    if inverse:
        if onesided:  # IRFFT: one-sided spectrum -> real signal
            return np.fft.irfft(sig, n=n, axis=ax)[..., None].astype(x.dtype, copy=False)
        res = np.fft.ifft(sig, n=n, axis=ax)
    elif onesided and not is_complex:
        res = np.fft.rfft(sig, n=n, axis=ax)
    else:
        res = np.fft.fft(sig, n=n, axis=ax)
        if onesided:  # complex input: keep the first half as a one-sided spectrum
            res = np.take(res, np.arange(n // 2 + 1), axis=ax)
    return _to_pairs(res, x.dtype)


@kernel("DFT", since=17)
def dft_17(input, dft_length=None, *, axis=1, inverse=0, onesided=0):
    return _dft(input, dft_length, int(axis), inverse, onesided)


@kernel("DFT", since=20)
def dft_20(input, dft_length=None, axis=None, *, inverse=0, onesided=0):
    ax = -2 if axis is None else _scalar_int(axis)
    return _dft(input, dft_length, ax, inverse, onesided)


@kernel("STFT", since=17)
def stft(signal, frame_step, window=None, frame_length=None, *, onesided=1):
    signal = np.asarray(signal)
    if signal.ndim != 3:
        raise ValueError(f"STFT needs a signal of rank 3, got shape {signal.shape}")
    sig, is_complex = _to_complex(signal)  # [batch, length]
    length = sig.shape[1]
    step = _scalar_int(frame_step)
    if frame_length is not None:
        flen = _scalar_int(frame_length)
    elif window is not None:
        flen = int(np.asarray(window).shape[0])
    else:
        flen = length
    if window is not None and np.asarray(window).shape[0] != flen:
        raise ValueError(f"STFT window length {np.asarray(window).shape[0]} != frame_length {flen}")
    if step < 1 or flen < 1 or flen > length:
        raise ValueError(f"STFT: invalid frame_step {step} / frame_length {flen} for {length}")
    n_frames = (length - flen) // step + 1
    frames = np.lib.stride_tricks.sliding_window_view(sig, flen, axis=1)[:, ::step][:, :n_frames]
    if window is not None:
        frames = frames * np.asarray(window).astype(sig.real.dtype, copy=False)
    if onesided and not is_complex:
        res = np.fft.rfft(frames, n=flen, axis=-1)
    else:
        res = np.fft.fft(frames, n=flen, axis=-1)
        if onesided:
            res = res[..., : flen // 2 + 1]
    return _to_pairs(res, signal.dtype)


# --- windows -------------------------------------------------------------------------------------


def _window(size, periodic: int, output_datatype: int, coeffs: tuple[float, ...]) -> np.ndarray:
    """Generalised cosine window sum_k (-1)^k a_k cos(2 pi k n / N)."""
    n = _scalar_int(size)
    if n < 0:
        raise ValueError(f"window size must be non-negative, got {n}")
    denom = n if periodic else n - 1
    if denom <= 0:  # a single-point symmetric window is all ones
        w = np.ones(n, dtype=np.float64)
    else:
        phase = 2.0 * np.pi * np.arange(n, dtype=np.float64) / denom
        w = np.zeros(n, dtype=np.float64)
        for k, a in enumerate(coeffs):
            w += (-1) ** k * a * np.cos(k * phase)
    return w.astype(np_dtype(output_datatype))


@kernel("HannWindow", since=17)
def hann_window(size, *, periodic=1, output_datatype=1):
    return _window(size, periodic, output_datatype, (0.5, 0.5))


@kernel("HammingWindow", since=17)
def hamming_window(size, *, periodic=1, output_datatype=1):
    return _window(size, periodic, output_datatype, (25.0 / 46.0, 21.0 / 46.0))


@kernel("BlackmanWindow", since=17)
def blackman_window(size, *, periodic=1, output_datatype=1):
    return _window(size, periodic, output_datatype, (0.42, 0.5, 0.08))


@kernel("MelWeightMatrix", since=17)
def mel_weight_matrix(
    num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, *, output_datatype=1
):
    n_mel = _scalar_int(num_mel_bins)
    n_fft = _scalar_int(dft_length)
    rate = float(np.asarray(sample_rate).reshape(-1)[0])
    lo = float(np.asarray(lower_edge_hertz).reshape(-1)[0])
    hi = float(np.asarray(upper_edge_hertz).reshape(-1)[0])
    n_bins = n_fft // 2 + 1
    lo_mel = 2595.0 * np.log10(1.0 + lo / 700.0)
    hi_mel = 2595.0 * np.log10(1.0 + hi / 700.0)
    # n_mel + 2 edge points; the step divides by their count, as onnxruntime does.
    mel_step = (hi_mel - lo_mel) / (n_mel + 2)
    hz = 700.0 * (10.0 ** ((np.arange(n_mel + 2) * mel_step + lo_mel) / 2595.0) - 1.0)
    edges = np.floor((n_fft + 1) * hz / rate).astype(np.int64)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    j = np.arange(n_bins, dtype=np.int64)[:, None]
    rise_w = np.maximum(center - left, 1)
    fall_w = np.maximum(right - center, 1)
    rise = np.where((j >= left) & (j <= center), (j - left) / rise_w, 0.0)
    fall = np.where((j > center) & (j < right), (right - j) / fall_w, 0.0)
    out = np.where(j == center, 1.0, rise + fall)
    return out.astype(np_dtype(output_datatype))
