"""Feature and label transforms of ai.onnx.ml: ArrayFeatureExtractor, Binarizer, LabelEncoder,
CategoryMapper, OneHotEncoder, Normalizer, Scaler, Imputer, FeatureVectorizer, DictVectorizer,
CastMap, ZipMap. (Tree ensembles are in ml_trees.py, linear models and SVMs in ml_linear.py.)

Maps are Python dicts and sequences Python lists, as onnxruntime returns them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...registry import NodeInfo
from ..registry import kernel

ML = "ai.onnx.ml"


def _str_array(values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


class _Lookup:
    """Vectorised key -> value table: keys sorted once, looked up with searchsorted."""

    def __init__(self, keys: np.ndarray, values: np.ndarray, default: Any, out_dtype: Any) -> None:
        self.is_str = keys.dtype == object or keys.dtype.kind == "U"
        self.out_dtype = np.dtype(out_dtype)
        table: dict[Any, Any] = {}
        nan_value = None
        for k, v in zip(keys.tolist(), values.tolist()):  # build time only; the last duplicate wins
            if isinstance(k, float) and k != k:
                nan_value = v
            else:
                table[k] = v
        self.nan_value = nan_value
        ks = list(table)
        if self.is_str:
            self.keys = np.array(ks, dtype=str) if ks else np.zeros(0, dtype=str)
        else:
            self.keys = np.array(ks, dtype=keys.dtype) if ks else np.zeros(0, dtype=keys.dtype)
        order = np.argsort(self.keys, kind="stable")
        self.keys = self.keys[order]
        vals = [table[k] for k in ks]
        if self.out_dtype.kind == "O":
            self.values = _str_array(vals)
        else:
            self.values = np.array(vals, dtype=self.out_dtype)
        self.values = self.values[order] if len(vals) else self.values
        self.default = default

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x).reshape(-1)
        out = np.empty(flat.shape, dtype=self.out_dtype)
        out[...] = self.default
        if self.is_str:
            q = np.asarray(flat, dtype=str) if flat.size else np.zeros(0, dtype=str)
        else:
            q = flat.astype(self.keys.dtype, copy=False)
        if len(self.keys):
            pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
            hit = self.keys[pos] == q
            out[hit] = self.values[pos[hit]]
        if self.nan_value is not None and q.dtype.kind == "f":
            out[np.isnan(q)] = self.nan_value
        return out.reshape(np.shape(x))


# --- ArrayFeatureExtractor / Binarizer -----------------------------------------------------------


@kernel("ArrayFeatureExtractor", since=1, domain=ML)
def array_feature_extractor(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Select indices ``y`` of the last axis; a 1-D input gives [1, len(y)] (onnxruntime)."""
    idx = np.asarray(y, dtype=np.int64).reshape(-1)
    size = x.shape[-1] if x.ndim else 1
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise IndexError(f"ArrayFeatureExtractor: indices {idx.tolist()} out of range for size {size}")
    if x.ndim <= 1:
        return x.reshape(-1)[idx].reshape(1, -1)
    return np.take(x, idx, axis=-1)


@kernel("Binarizer", since=1, domain=ML)
def binarizer(x: np.ndarray, *, threshold: float = 0.0) -> np.ndarray:
    return (x > threshold).astype(x.dtype)


# --- LabelEncoder / CategoryMapper / OneHotEncoder -----------------------------------------------

_DEFAULT_BY_KIND = {"O": "_Unused", "i": -1, "f": -0.0}


@kernel("LabelEncoder", since=1, domain=ML, factory=True)
def label_encoder_factory(node: NodeInfo):
    a = node.attrs
    if node.version < 2:
        # v1: strings <-> their index in classes_strings.
        classes = list(a.get("classes_strings") or [])
        d_int = int(a.get("default_int64", -1))
        d_str = a.get("default_string", "_Unused")
        to_int = _Lookup(np.array(classes, dtype=object), np.arange(len(classes)), d_int, np.int64)
        table = _str_array(classes)

        def label_encoder_v1(x: np.ndarray) -> np.ndarray:
            if x.dtype == object or x.dtype.kind == "U":
                return to_int(x)
            idx = x.astype(np.int64)
            ok = (idx >= 0) & (idx < len(classes))
            out = np.full(x.shape, d_str, dtype=object)
            out[ok] = table[idx[ok]]
            return out

        return label_encoder_v1

    keys, values = None, None
    for name, dt in (("keys_strings", object), ("keys_int64s", np.int64), ("keys_floats", np.float32)):
        if a.get(name):
            keys = np.array(a[name], dtype=dt)
    if a.get("keys_tensor") is not None:
        keys = np.asarray(a["keys_tensor"]).reshape(-1)
    for name, dt in (("values_strings", object), ("values_int64s", np.int64), ("values_floats", np.float32)):
        if a.get(name):
            values, out_dtype = np.array(a[name], dtype=dt), np.dtype(dt)
            default = {
                "values_strings": a.get("default_string", "_Unused"),
                "values_int64s": int(a.get("default_int64", -1)),
                "values_floats": float(a.get("default_float", -0.0)),
            }[name]
    if a.get("values_tensor") is not None:
        values = np.asarray(a["values_tensor"]).reshape(-1)
        out_dtype = values.dtype
        if a.get("default_tensor") is not None:
            default = np.asarray(a["default_tensor"]).reshape(-1)[0]
        else:
            default = _DEFAULT_BY_KIND.get(out_dtype.kind, -1)
    if keys is None or values is None:
        raise ValueError("LabelEncoder needs one keys_* and one values_* attribute")
    if len(keys) != len(values):
        raise ValueError("LabelEncoder: keys and values must have the same length")
    lookup = _Lookup(keys, values, default, out_dtype)

    def label_encoder(x: np.ndarray) -> np.ndarray:
        return lookup(x)

    return label_encoder


@kernel("CategoryMapper", since=1, domain=ML, factory=True)
def category_mapper_factory(node: NodeInfo):
    a = node.attrs
    cats_s = list(a.get("cats_strings") or [])
    cats_i = np.asarray(a.get("cats_int64s") or [], dtype=np.int64)
    if len(cats_s) != len(cats_i):
        raise ValueError("CategoryMapper: cats_strings and cats_int64s must have the same length")
    to_int = _Lookup(np.array(cats_s, dtype=object), cats_i, int(a.get("default_int64", -1)), np.int64)
    to_str = _Lookup(cats_i, _str_array(cats_s), a.get("default_string", "_Unused"), object)

    def category_mapper(x: np.ndarray) -> np.ndarray:
        return to_int(x) if x.dtype == object or x.dtype.kind == "U" else to_str(x)

    return category_mapper


@kernel("OneHotEncoder", since=1, domain=ML, factory=True)
def one_hot_encoder_factory(node: NodeInfo):
    a = node.attrs
    cats_s, cats_i = a.get("cats_strings"), a.get("cats_int64s")
    zeros = int(a.get("zeros", 1))
    by_str = _Lookup(np.array(cats_s or [], dtype=object), np.arange(len(cats_s or [])), -1, np.int64)
    by_int = _Lookup(np.asarray(cats_i or [], dtype=np.int64), np.arange(len(cats_i or [])), -1, np.int64)
    n_cats = len(cats_s or cats_i or [])
    if not n_cats:
        raise ValueError("OneHotEncoder needs cats_strings or cats_int64s")

    def one_hot_encoder(x: np.ndarray) -> np.ndarray:
        if x.dtype == object or x.dtype.kind == "U":
            idx = by_str(x)
        else:
            # Floats are truncated to integers before the look-up.
            idx = by_int(x.astype(np.int64))
        if not zeros and (idx < 0).any():
            raise ValueError("OneHotEncoder: a value is not among the categories (zeros=0)")
        out = np.zeros((*x.shape, n_cats), dtype=np.float32)
        flat = out.reshape(-1, n_cats)
        rows = np.nonzero(idx.reshape(-1) >= 0)[0]
        flat[rows, idx.reshape(-1)[rows]] = 1.0
        return out

    return one_hot_encoder


# --- Normalizer / Scaler / Imputer ---------------------------------------------------------------


@kernel("Normalizer", since=1, domain=ML)
def normalizer(x: np.ndarray, *, norm: str = "MAX") -> np.ndarray:
    """Row-wise normalisation of [N, C] (or [C]); a zero divisor leaves the row as it is."""
    v = np.asarray(x, dtype=np.float32).astype(np.float64)
    if norm == "MAX":
        # NaNs are skipped when looking for the maximum, as in onnxruntime.
        div = np.fmax.reduce(v, axis=-1, keepdims=True) if v.shape[-1] else np.ones((*v.shape[:-1], 1))
    elif norm == "L1":
        div = np.abs(v).sum(axis=-1, keepdims=True)
    elif norm == "L2":
        div = np.sqrt((v * v).sum(axis=-1, keepdims=True))
    else:
        raise ValueError(f"Normalizer: unknown norm {norm!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(div == 0, v, v / div)
    return y.astype(np.float32)


@kernel("Scaler", since=1, domain=ML)
def scaler(
    x: np.ndarray, *, offset: list[float] | None = None, scale: list[float] | None = None
) -> np.ndarray:
    v = np.asarray(x, dtype=np.float32)
    off = np.asarray(offset if offset else [0.0], dtype=np.float32)
    sc = np.asarray(scale if scale else [1.0], dtype=np.float32)
    return ((v - off) * sc).astype(np.float32)


@kernel("Imputer", since=1, domain=ML)
def imputer(
    x: np.ndarray,
    *,
    imputed_value_floats: list[float] | None = None,
    imputed_value_int64s: list[int] | None = None,
    replaced_value_float: float = 0.0,
    replaced_value_int64: int = 0,
) -> np.ndarray:
    if x.dtype.kind == "f":
        if not imputed_value_floats:
            raise ValueError("Imputer: float input needs imputed_value_floats")
        values = np.asarray(imputed_value_floats, dtype=x.dtype)
        hit = np.isnan(x) if np.isnan(replaced_value_float) else x == np.float32(replaced_value_float)
    else:
        if not imputed_value_int64s:
            raise ValueError("Imputer: integer input needs imputed_value_int64s")
        values = np.asarray(imputed_value_int64s).astype(x.dtype)
        hit = x == replaced_value_int64
    if values.size not in (1, x.shape[-1] if x.ndim else 1):
        raise ValueError(f"Imputer: {values.size} imputed values for {x.shape[-1]} features")
    return np.where(hit, values if values.size > 1 else values[0], x).astype(x.dtype)


# --- FeatureVectorizer / DictVectorizer / CastMap / ZipMap ---------------------------------------


@kernel("FeatureVectorizer", since=1, domain=ML)
def feature_vectorizer(*xs: np.ndarray, inputdimensions: list[int] | None = None) -> np.ndarray:
    """Concatenate the inputs along the last axis, each padded with zeros or cut to its
    inputdimensions entry; [C] inputs count as [1, C]."""
    dims = list(inputdimensions or [])
    parts = []
    for i, x in enumerate(xs):
        v = np.asarray(x, dtype=np.float32)
        v = v.reshape(1, -1) if v.ndim <= 1 else v.reshape(v.shape[0], -1)
        d = dims[i] if i < len(dims) else v.shape[1]
        if v.shape[1] < d:
            v = np.concatenate([v, np.zeros((v.shape[0], d - v.shape[1]), np.float32)], axis=1)
        parts.append(v[:, :d])
    rows = {p.shape[0] for p in parts}
    if len(rows) > 1:
        raise ValueError(f"FeatureVectorizer: inputs have different batch sizes {sorted(rows)}")
    return np.concatenate(parts, axis=1) if parts else np.zeros((1, 0), np.float32)


def _map_value_dtype(values: list[Any]) -> Any:
    if values and isinstance(values[0], str):
        return object
    if values and isinstance(values[0], (int, np.integer)) and not isinstance(values[0], bool):
        return np.int64
    return np.float32


@kernel("DictVectorizer", since=1, domain=ML, factory=True)
def dict_vectorizer_factory(node: NodeInfo):
    a = node.attrs
    vocab = list(a.get("string_vocabulary") or a.get("int64_vocabulary") or [])
    position = {k: i for i, k in enumerate(vocab)}
    out_dtype = None
    if node.output_types and node.output_types[0] is not None:
        tt = node.output_types[0]
        if tt.HasField("tensor_type") and tt.tensor_type.elem_type:
            from ....types import np_dtype

            out_dtype = np_dtype(tt.tensor_type.elem_type)

    def dict_vectorizer(x: Any) -> np.ndarray:
        """A map gives [1, len(vocabulary)]; a sequence of maps one row per map."""
        maps = x if isinstance(x, list) else [x]
        values = [v for m in maps for v in m.values()]
        dtype = out_dtype if out_dtype is not None else _map_value_dtype(values)
        out = np.zeros((len(maps), len(vocab)), dtype=dtype)
        if out.dtype.kind == "O":
            out[...] = ""
        for r, m in enumerate(maps):  # map entries are Python objects: one pass over them
            cols = [position[k] for k in m if k in position]
            out[r, cols] = [m[k] for k in m if k in position]
        return out

    return dict_vectorizer


@kernel("CastMap", since=1, domain=ML)
def cast_map(
    x: dict[int, Any], *, cast_to: str = "TO_FLOAT", map_form: str = "DENSE", max_map: int = 1
) -> np.ndarray:
    keys = sorted(x)
    if map_form == "SPARSE":
        if keys and (keys[0] < 0 or keys[-1] >= max_map):
            raise ValueError(f"CastMap: keys must lie in [0, {max_map}) for SPARSE packing")
        cols, n = keys, max_map
    elif map_form == "DENSE":
        cols, n = list(range(len(keys))), len(keys)
    else:
        raise ValueError(f"CastMap: unknown map_form {map_form!r}")
    vals = [x[k] for k in keys]
    if cast_to == "TO_STRING":
        # Numbers print as C's "%f" (std::to_string), as in onnxruntime.
        out = np.full((1, n), f"{0.0:f}", dtype=object)
        out[0, cols] = [v if isinstance(v, str) else f"{float(np.float32(v)):f}" for v in vals]
        return out
    if cast_to not in ("TO_FLOAT", "TO_INT64"):
        raise ValueError(f"CastMap: unknown cast_to {cast_to!r}")
    dtype = np.float32 if cast_to == "TO_FLOAT" else np.int64
    num = np.asarray([float(v) for v in vals], dtype=np.float64)
    out = np.zeros((1, n), dtype=dtype)
    out[0, cols] = num.astype(dtype) if num.size else num
    return out


@kernel("ZipMap", since=1, domain=ML, factory=True)
def zip_map_factory(node: NodeInfo):
    a = node.attrs
    labels = list(a.get("classlabels_strings") or a.get("classlabels_int64s") or [])
    if not labels:
        raise ValueError("ZipMap needs classlabels_strings or classlabels_int64s")

    def zip_map(x: np.ndarray) -> list[dict[Any, float]]:
        v = np.asarray(x, dtype=np.float32)
        v = v.reshape(1, -1) if v.ndim == 1 else v
        if v.shape[-1] != len(labels):
            raise ValueError(f"ZipMap: {v.shape[-1]} columns for {len(labels)} labels")
        return [dict(zip(labels, row)) for row in v.tolist()]

    return zip_map
