import numpy as np

from onnxlite.quantization.qmath import compute_scale_zp, quantize_bias, quantize_weight
from onnxlite.quantization.types import QuantType


def test_range_includes_zero_and_asymmetric_zero_point():
    s, z = compute_scale_zp(1.0, 3.0, QuantType.QUInt8)  # widened to [0, 3]
    assert np.isclose(s, 3.0 / 255) and z == 0
    s, z = compute_scale_zp(-1.0, 3.0, QuantType.QUInt8)
    assert np.isclose(s, 4.0 / 255) and z == round(0 - (-1.0) / (4.0 / 255))
    s, z = compute_scale_zp(-1.0, 3.0, QuantType.QInt8)
    assert z == round(-128 + 1.0 / s)


def test_symmetric_zero_points():
    s, z = compute_scale_zp(-1.0, 2.0, QuantType.QInt8, symmetric=True)
    assert z == 0 and np.isclose(s, 4.0 / 254)
    s, z = compute_scale_zp(-1.0, 2.0, QuantType.QUInt8, symmetric=True)
    assert z == 128


def test_degenerate_range_and_reduce_range():
    s, _z = compute_scale_zp(0.0, 0.0, QuantType.QInt8)
    assert s == 1.0
    s, _ = compute_scale_zp(-1.0, 1.0, QuantType.QInt8, symmetric=True, reduce_range=True)
    assert np.isclose(s, 2.0 / 128)


def test_per_channel_weight_roundtrip():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 8)).astype(np.float32) * np.logspace(-2, 1, 8, dtype=np.float32)
    q, p = quantize_weight(w, QuantType.QInt8, axis=1, symmetric=True)
    assert q.dtype == np.int8 and p.scale.shape == (8,)
    back = (q.astype(np.float32) - p.zero_point) * p.scale
    assert np.all(np.abs(back - w) <= p.scale / 2 + 1e-7)
    qt, pt = quantize_weight(w, QuantType.QInt8, axis=None, symmetric=True)
    err_t = np.abs((qt * pt.scale) - w)[:, 0].max()
    assert np.abs(back - w)[:, 0].max() < err_t  # per-channel keeps small channels precise


def test_bias_int32():
    q, s = quantize_bias(
        np.array([0.5, -1.0], np.float32), np.float32(0.01), np.array([0.1, 0.2], np.float32)
    )
    assert q.dtype == np.int32 and np.allclose(q * s, [0.5, -1.0])
