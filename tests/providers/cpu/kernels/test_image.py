"""ImageDecoder: images encoded with Pillow decode back to their pixels (lossless formats) and
to Pillow's own decoding (JPEG), in each pixel format."""

from __future__ import annotations

import builtins
import io

import numpy as np
import pytest
from tests.oracle import node_model, run_onnxlite, run_reference

PIL_Image = pytest.importorskip("PIL.Image")

rng = np.random.default_rng(0)


def encode(image: np.ndarray, fmt: str) -> np.ndarray:
    buf = io.BytesIO()
    PIL_Image.fromarray(image).save(buf, format=fmt)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def decode(data: np.ndarray, pixel_format: str = "RGB") -> np.ndarray:
    model = node_model("ImageDecoder", {"x": data}, {"pixel_format": pixel_format}, opset=20)
    (y,) = run_onnxlite(model, {"x": data})
    return y


IMAGE = rng.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "PPM", "WEBP"])
def test_lossless_formats_round_trip(fmt):
    kw = {"lossless": True} if fmt == "WEBP" else {}
    buf = io.BytesIO()
    PIL_Image.fromarray(IMAGE).save(buf, format=fmt, **kw)
    data = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    y = decode(data)
    assert y.dtype == np.uint8 and y.shape == (12, 17, 3)
    np.testing.assert_array_equal(y, IMAGE)
    np.testing.assert_array_equal(decode(data, "BGR"), IMAGE[:, :, ::-1])


@pytest.mark.parametrize("pixel_format", ["RGB", "BGR", "Grayscale"])
def test_jpeg_matches_reference(pixel_format):
    data = encode(IMAGE, "JPEG")
    model = node_model("ImageDecoder", {"x": data}, {"pixel_format": pixel_format}, opset=20)
    (got,) = run_onnxlite(model, {"x": data})
    (want,) = run_reference(model, {"x": data})
    assert got.shape == want.shape and got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


def test_grayscale_palette_and_alpha_images_are_converted():
    gray = IMAGE[:, :, 0]
    y = decode(encode(gray, "PNG"), "Grayscale")
    assert y.shape == (12, 17, 1)
    np.testing.assert_array_equal(y[:, :, 0], gray)
    rgb_from_gray = decode(encode(gray, "PNG"), "RGB")
    np.testing.assert_array_equal(rgb_from_gray, np.repeat(gray[:, :, None], 3, axis=2))
    rgba = np.concatenate([IMAGE, np.full((12, 17, 1), 128, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode(encode(rgba, "PNG")), IMAGE)


def test_undecodable_stream_gives_empty_image():
    with pytest.warns(UserWarning, match="could not decode"):
        y = decode(np.array([1, 2, 3, 4], np.uint8), "Grayscale")
    assert y.shape == (0, 0, 1) and y.dtype == np.uint8


def test_missing_pillow_is_named(monkeypatch):
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(Exception, match="Pillow"):
        decode(encode(IMAGE, "PNG"))
