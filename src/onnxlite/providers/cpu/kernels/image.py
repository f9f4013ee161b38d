"""ImageDecoder, decoding with Pillow (an optional dependency, imported when a node runs).

Pillow decodes every format the spec lists (BMP, JPEG, JPEG 2000, TIFF, PNG, WebP, PBM/PGM/PPM);
the ONNX backend cases are generated with Pillow and match it byte for byte. Grayscale uses
Pillow's ITU-R 601-2 luma conversion (L = 0.299 R + 0.587 G + 0.114 B), as the backend cases do;
onnxruntime (OpenCV) decodes JPEG luma directly and may differ by a unit or so.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from ..registry import kernel

_CHANNELS = {"RGB": 3, "BGR": 3, "Grayscale": 1}


def _pillow():
    try:
        import PIL.Image
    except ImportError as e:
        raise ImportError(
            "ImageDecoder needs the 'Pillow' package to decode images: pip install Pillow"
        ) from e
    return PIL.Image


@kernel("ImageDecoder", since=20)
def image_decoder(encoded_stream: np.ndarray, *, pixel_format: str = "RGB") -> np.ndarray:
    if pixel_format not in _CHANNELS:
        raise ValueError(f"ImageDecoder: unknown pixel_format {pixel_format!r}")
    image_mod = _pillow()
    data = np.ascontiguousarray(encoded_stream, dtype=np.uint8).tobytes()
    try:
        with image_mod.open(io.BytesIO(data)) as img:
            img.load()
            mode = "L" if pixel_format == "Grayscale" else "RGB"
            # Palette, alpha, 16-bit, CMYK... images are converted to the requested layout.
            decoded = np.asarray(img if img.mode == mode else img.convert(mode))
    except Exception as e:  # the spec: an undecodable stream gives an empty image
        warnings.warn(
            f"ImageDecoder: could not decode the stream ({e}); returning an empty image",
            stacklevel=2,
        )
        return np.zeros((0, 0, _CHANNELS[pixel_format]), dtype=np.uint8)
    if pixel_format == "Grayscale":
        return np.ascontiguousarray(decoded[:, :, None])
    if pixel_format == "BGR":
        return np.ascontiguousarray(decoded[:, :, ::-1])
    return np.array(decoded)
