"""Static QDQ per-channel INT8 on a small CNN trained here on scikit-learn's digits."""

import pytest

import onnxlite
from onnxlite.quantization import QuantFormat, quantize_static

pytest.importorskip("torch")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    from ._digits import digits_split, train_cnn

    xtr, xte, ytr, yte = digits_split()
    path = tmp_path_factory.mktemp("digits") / "cnn.onnx"
    train_cnn(str(path), xtr, ytr)
    return path, xtr, xte, yte


@pytest.mark.parametrize("fmt", list(QuantFormat))
def test_digits_cnn_int8_top1_within_one_point(cnn, tmp_path, fmt):
    ort = pytest.importorskip("onnxruntime")
    path, xtr, xte, yte = cnn
    calib = [{"x": xtr[i : i + 32]} for i in range(0, 320, 32)]
    out = tmp_path / "q.onnx"
    quantize_static(path, out, calib, quant_format=fmt, per_channel=True)

    def top1(p, lib=onnxlite):
        logits = lib.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": xte})[0]
        return float((logits.argmax(1) == yte).mean()), logits

    a32, _ = top1(path)
    a8, l8 = top1(out)
    a8_ort, l8_ort = top1(out, ort)
    print(
        f"\ndigits CNN ({fmt}): fp32 top-1 {a32:.4f}, int8 {a8:.4f} (onnxlite) {a8_ort:.4f} (onnxruntime); "
        f"size {out.stat().st_size / path.stat().st_size:.3f} of fp32"
    )
    assert a32 > 0.9
    assert a8 >= a32 - 0.01
    assert a8_ort >= a32 - 0.01
    assert (l8.argmax(1) == l8_ort.argmax(1)).mean() > 0.99
