"""Helpers shared by the ai.onnx.ml kernels: score post-transforms and attribute access.

The transforms follow onnxruntime's definitions (ml_common.h), which the converters (skl2onnx,
onnxmltools) target: LOGISTIC is the plain sigmoid, SOFTMAX_ZERO leaves zero scores at zero, and
PROBIT uses the same closed-form approximation of the inverse error function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

POST_TRANSFORMS = ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT")
# TreeEnsemble (ai.onnx.ml 5) spells post_transform as an int in this order.
POST_TRANSFORM_CODES = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")


def check_post_transform(name: str) -> str:
    if name not in POST_TRANSFORMS:
        raise ValueError(f"unknown post_transform {name!r} (expected one of {POST_TRANSFORMS})")
    return name


def logistic(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a 2-D array."""
    if x.shape[-1] == 0:
        return x.copy()
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_zero(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax in which entries equal to zero (|v| <= 1e-7) stay zero."""
    if x.shape[-1] == 0:
        return x.copy()
    mx = x.max(axis=-1, keepdims=True)
    nonzero = np.abs(x) > 1e-7
    with np.errstate(over="ignore"):
        e = np.where(nonzero, np.exp(x - mx), x * np.exp(-mx))
    s = np.where(nonzero, e, 0.0).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return e / s


def probit(x: np.ndarray) -> np.ndarray:
    """sqrt(2) * erfinv(2x - 1) with onnxruntime's approximation of erfinv, computed in float32
    as onnxruntime does (the approximation is good to about 1e-3)."""
    f = np.float32
    y = f(2) * np.asarray(x, dtype=f) - f(1)
    sgn = np.where(y < 0, f(-1), f(1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln = np.log((f(1) - y) * (f(1) + y))
        v = f(2 / (np.pi * 0.147)) + f(0.5) * ln
        v3 = -v + np.sqrt(v * v - ln / f(0.147))
        return (f(np.sqrt(2)) * sgn * np.sqrt(v3)).astype(np.float64)


def post_transform(scores: np.ndarray, name: str) -> np.ndarray:
    """Apply a post-transform to [N, C] scores (row-wise for the softmaxes)."""
    if name == "LOGISTIC":
        return logistic(scores)
    if name == "SOFTMAX":
        return softmax(scores)
    if name == "SOFTMAX_ZERO":
        return softmax_zero(scores)
    if name == "PROBIT":
        return probit(scores)
    return scores


def binary_scores(s: np.ndarray, name: str, mode: np.ndarray | int) -> np.ndarray:
    """onnxruntime's expansion of one binary score column ``s`` [N] into two [N, 2].

    ``mode`` (per row or scalar): 0/1 -> [1 - s, s] (all weights positive), 2/3 -> [-s, s]
    (mixed weights), -1 -> [s, 0]. LOGISTIC gives [logistic(-s), logistic(s)] and PROBIT
    [probit(s), 0] whatever the mode, as onnxruntime writes them.
    """
    out = np.zeros((s.shape[0], 2), dtype=np.float64)
    if name == "PROBIT":
        out[:, 0] = probit(s)
        return out
    mode = np.broadcast_to(np.asarray(mode), s.shape)
    if name == "LOGISTIC":
        out[:, 0] = np.where(mode >= 0, logistic(-s), s)
        out[:, 1] = np.where(mode >= 0, logistic(s), 0.0)
        return out
    out[:, 0] = np.where(mode < 0, s, np.where(mode <= 1, 1.0 - s, -s))
    out[:, 1] = np.where(mode < 0, 0.0, s)
    return out


def floats_attr(attrs: Mapping[str, Any], name: str) -> np.ndarray | None:
    """A FLOATS attribute or its ``<name>_as_tensor`` double form, as float64 (None if absent)."""
    tensor = attrs.get(f"{name}_as_tensor")
    if tensor is not None and np.asarray(tensor).size:
        return np.asarray(tensor, dtype=np.float64).reshape(-1)
    values = attrs.get(name)
    if values is None or len(values) == 0:
        return None
    # Stored as float32 in the model: widen exactly.
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def as_2d_float(x: np.ndarray) -> np.ndarray:
    """[N, F] float64 view of a model input ([F] is one row)."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    elif x.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D input, got shape {x.shape}")
    return x.astype(np.float64, copy=False)


def labels_array(labels: list[Any], idx: np.ndarray) -> np.ndarray:
    """Labels (int64 or str) picked by index array ``idx``."""
    if labels and isinstance(labels[0], str):
        table = np.empty(len(labels), dtype=object)
        table[:] = labels
        return table[idx]
    return np.asarray(labels, dtype=np.int64)[idx]
