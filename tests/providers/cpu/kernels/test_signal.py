"""Signal kernels against onnx.reference and numpy.fft."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto
from tests.oracle import check_node, node_model, run_onnxlite

RNG = np.random.default_rng(3)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def as_complex(y):
    return y[..., 0] + 1j * y[..., 1]


@pytest.mark.parametrize("last", [1, 2])
@pytest.mark.parametrize(("axis", "n"), [(1, None), (2, None), (1, 5), (2, 12), (-2, 4)])
@pytest.mark.parametrize("inverse", [0, 1])
def test_dft_17(last, axis, n, inverse):
    inputs = {"x": rand(2, 8, 6, last)}
    names = ["x"]
    if n is not None:
        inputs["n"] = np.array(n, dtype=np.int64)
        names.append("n")
    attrs = {"axis": axis, "inverse": inverse}
    check_node("DFT", inputs, attrs, opset=17, input_names=names, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("axis", [0, 1, -2, -3])
@pytest.mark.parametrize("n", [None, 7])
def test_dft_20_axis_input(axis, n):
    x = rand(4, 6, 2)
    names = ["x", "" if n is None else "n", "a"]
    inputs = {"x": x, "a": np.array(axis, dtype=np.int64)}
    if n is not None:
        inputs = {"x": x, "n": np.array(n, dtype=np.int32), "a": inputs["a"]}
    check_node("DFT", inputs, {}, opset=20, input_names=names, rtol=1e-4, atol=1e-4)


def test_dft_20_default_axis_is_last_signal_axis():
    x = rand(3, 5, 2)
    (y,) = run_onnxlite(node_model("DFT", {"x": x}, {}, opset=20), {"x": x})
    np.testing.assert_allclose(as_complex(y), np.fft.fft(as_complex(x), axis=-1), atol=1e-5)


@pytest.mark.parametrize("n", [None, 9, 10])
def test_rfft_and_irfft_round_trip(n):
    x = rand(2, 10, 1)
    names = ["x"] + ([] if n is None else ["n"])
    feeds = {"x": x} if n is None else {"x": x, "n": np.array(n, dtype=np.int64)}
    (spec,) = check_node("DFT", feeds, {"onesided": 1}, opset=20, input_names=names, atol=1e-4)
    length = 10 if n is None else n
    assert spec.shape == (2, length // 2 + 1, 2)
    want = np.fft.rfft(x[..., 0], n=length, axis=1)
    np.testing.assert_allclose(as_complex(spec), want, rtol=1e-5, atol=1e-5)
    # IRFFT back to the (possibly truncated) real signal
    m = node_model(
        "DFT", {"s": spec, "n": np.array(length, np.int64)}, {"onesided": 1, "inverse": 1}, opset=20
    )
    (back,) = run_onnxlite(m, {"s": spec, "n": np.array(length, np.int64)})
    assert back.shape == (2, length, 1) and back.dtype == np.float32
    np.testing.assert_allclose(back[:, : min(length, 10), 0], x[:, : min(length, 10), 0], atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_dft_dtypes(dtype):
    x = rand(2, 6, 2, dtype=dtype)
    (y,) = run_onnxlite(node_model("DFT", {"x": x}, {}, opset=20), {"x": x})
    assert y.dtype == dtype
    want = np.fft.fft(as_complex(x.astype(np.float64)), axis=1)
    np.testing.assert_allclose(as_complex(y.astype(np.float64)), want, rtol=1e-2, atol=1e-2)


def test_dft_rejects_complex_axis():
    from onnxlite.providers.cpu.kernels.signal import dft_17

    with pytest.raises(ValueError):
        dft_17(rand(2, 4, 2), axis=-1)


@pytest.mark.parametrize(
    ("step", "window", "frame_length", "onesided"),
    [(4, True, None, 1), (3, False, 8, 1), (5, True, 8, 0), (2, False, 16, 0)],
)
def test_stft(step, window, frame_length, onesided):
    inputs = {"x": rand(2, 32, 1), "step": np.array(step, dtype=np.int64)}
    names = ["x", "step"]
    if window:
        inputs["w"] = np.hanning(8).astype(np.float32)
        names.append("w")
    if frame_length is not None:
        if not window:
            names.append("")
        inputs["fl"] = np.array(frame_length, dtype=np.int64)
        names.append("fl")
    check_node("STFT", inputs, {"onesided": onesided}, opset=17, input_names=names, rtol=1e-4, atol=1e-4)


def test_stft_complex_signal():
    x = rand(1, 20, 2)
    w = np.hamming(6).astype(np.float32)
    feeds = {"x": x, "step": np.array(2, np.int64), "w": w}
    (y,) = run_onnxlite(node_model("STFT", feeds, {"onesided": 0}, opset=17), feeds)
    assert y.shape == (1, 8, 6, 2)
    sig = as_complex(x)[0]
    want = np.stack([np.fft.fft(sig[2 * f : 2 * f + 6] * w) for f in range(8)])
    np.testing.assert_allclose(as_complex(y)[0], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("out_type", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_windows(op, periodic, out_type):
    inputs = {"size": np.array(10, dtype=np.int64)}
    attrs = {"periodic": periodic, "output_datatype": out_type}
    check_node(op, inputs, attrs, opset=17)


def test_windows_match_numpy():
    size = {"size": np.array(9, dtype=np.int32)}
    for op, ref in [("HannWindow", np.hanning), ("BlackmanWindow", np.blackman)]:
        (w,) = run_onnxlite(node_model(op, size, {"periodic": 0}, opset=17), size)
        np.testing.assert_allclose(w, ref(9), atol=1e-6)
    # periodic = the first `size` points of the symmetric window one longer
    (w,) = run_onnxlite(node_model("HannWindow", size, {}, opset=17), size)
    np.testing.assert_allclose(w, np.hanning(10)[:9], atol=1e-6)


def test_window_sizes_zero_and_one():
    from onnxlite.providers.cpu.kernels.signal import hann_window

    assert hann_window(np.array(0)).shape == (0,)
    np.testing.assert_array_equal(hann_window(np.array(1), periodic=0), [1.0])
    assert hann_window(np.array(4), output_datatype=TensorProto.INT32).dtype == np.int32


@pytest.mark.parametrize(
    ("mel", "n_fft", "rate", "lo", "hi"),
    [(8, 16, 8192, 0.0, 8192 / 2), (10, 64, 16000, 20.0, 8000.0), (5, 32, 22050, 300.0, 6000.0)],
)
@pytest.mark.parametrize("out_type", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_mel_weight_matrix(mel, n_fft, rate, lo, hi, out_type):
    inputs = {
        "m": np.array(mel, np.int64),
        "n": np.array(n_fft, np.int64),
        "r": np.array(rate, np.int64),
        "lo": np.array(lo, np.float32),
        "hi": np.array(hi, np.float32),
    }
    (w,) = check_node("MelWeightMatrix", inputs, {"output_datatype": out_type}, opset=17)
    assert w.shape == (n_fft // 2 + 1, mel)
    assert w.max() == 1.0
