"""Linear and SVM models of ai.onnx.ml: LinearClassifier, LinearRegressor, SVMClassifier,
SVMRegressor.

Scores, labels and post-transforms follow onnxruntime (linearclassifier.cc, svmclassifier.cc),
which skl2onnx targets, including its binary-classification conventions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...registry import NodeInfo
from ..registry import kernel
from ._ml_common import (
    as_2d_float,
    binary_scores,
    check_post_transform,
    labels_array,
    logistic,
    post_transform,
    probit,
)


def _class_labels(attrs: Any, ints_name: str) -> list[Any]:
    return list(attrs.get("classlabels_strings") or attrs.get(ints_name) or [])


def _transform_scores(scores: np.ndarray, post: str, add_second: int) -> np.ndarray:
    """onnxruntime's batched score update: several columns are post-transformed together; a
    single column is PROBIT-ed, or expanded to two when ``add_second`` >= 0 (binary_scores)."""
    if scores.shape[1] != 1:
        return post_transform(scores, post)
    if add_second >= 0:
        return binary_scores(scores[:, 0], post, add_second)
    return probit(scores) if post == "PROBIT" else scores


# --- Linear models -------------------------------------------------------------------------------


@kernel("LinearClassifier", since=1, domain="ai.onnx.ml", factory=True)
def linear_classifier_factory(node: NodeInfo):
    a = node.attrs
    coef = np.asarray(a["coefficients"], dtype=np.float32).astype(np.float64)
    intercepts = a.get("intercepts")
    labels = _class_labels(a, "classlabels_ints")
    is_str = bool(labels) and isinstance(labels[0], str)
    post = check_post_transform(a.get("post_transform", "NONE"))
    n_class = len(intercepts) if intercepts else None

    def linear_classifier(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x2 = as_2d_float(np.asarray(x, dtype=np.float32))
        k = n_class or coef.size // x2.shape[1]
        w = coef.reshape(k, -1)
        scores = x2 @ w.T
        if intercepts:
            scores += np.asarray(intercepts, dtype=np.float32)
        if k == 1:
            win = (scores[:, 0] > 0).astype(np.int64)
            if len(labels) == 2:
                y = labels_array(labels, win)
            elif is_str:
                y = np.where(win == 1, "1", "0").astype(object)
            else:
                y = win
        else:
            # The label comes from the raw scores (the first maximum), before the transform.
            y = labels_array(labels, np.argmax(scores, axis=1))
        add_second = 1 if k == 1 and len(labels) == 2 else -1
        return y, _transform_scores(scores, post, add_second).astype(np.float32)

    return linear_classifier


@kernel("LinearRegressor", since=1, domain="ai.onnx.ml", factory=True)
def linear_regressor_factory(node: NodeInfo):
    a = node.attrs
    targets = int(a.get("targets", 1))
    coef = np.asarray(a.get("coefficients", []), dtype=np.float32).astype(np.float64)
    w = coef.reshape(targets, -1)
    intercepts = a.get("intercepts")
    b = np.asarray(intercepts, dtype=np.float32) if intercepts else None
    post = check_post_transform(a.get("post_transform", "NONE"))

    def linear_regressor(x: np.ndarray) -> np.ndarray:
        y = as_2d_float(np.asarray(x, dtype=np.float32)) @ w.T
        if b is not None:
            y += b
        return _transform_scores(y, post, -1).astype(np.float32)

    return linear_regressor


# --- SVMs ----------------------------------------------------------------------------------------


class _Kernel:
    def __init__(self, name: str, params: Any) -> None:
        if name not in ("LINEAR", "POLY", "RBF", "SIGMOID"):
            raise ValueError(f"unknown SVM kernel_type {name!r}")
        self.name = name
        p = list(params or [])
        self.gamma, self.coef0, self.degree = (
            (float(p[0]), float(p[1]), float(p[2])) if len(p) >= 3 else (0.0, 0.0, 0.0)
        )

    def __call__(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Kernel matrix [N, V] between rows of x [N, F] and vectors v [V, F]."""
        if self.name == "RBF":
            d2 = (x * x).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2.0 * (x @ v.T)
            return np.exp(-self.gamma * np.maximum(d2, 0.0))
        dot = x @ v.T
        if self.name == "POLY":
            return (self.gamma * dot + self.coef0) ** self.degree
        if self.name == "SIGMOID":
            return np.tanh(self.gamma * dot + self.coef0)
        return dot


def _multiclass_probability(r: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Pairwise coupling (Wu, Lin and Weng 2004, as libsvm), vectorised over samples.
    ``r`` [N, k, k] holds r[i, j] = P(i | i or j)."""
    n, k, _ = r.shape
    q = -r.transpose(0, 2, 1) * r  # Q[i, j] = -r[j, i] * r[i, j]
    diag = (r * r).sum(axis=1) - np.einsum("nii->ni", r * r)  # Q[i, i] = sum_{j != i} r[j, i]^2
    idx = np.arange(k)
    q[:, idx, idx] = diag
    p = np.full((n, k), 1.0 / k)
    eps = 0.005 / k
    live = np.ones(n, dtype=bool)
    for _ in range(max_iter):
        qp = np.einsum("nij,nj->ni", q, p)
        pqp = (p * qp).sum(1)
        live &= np.abs(qp - pqp[:, None]).max(axis=1) >= eps
        if not live.any():
            break
        for t in range(k):
            diff = np.where(live, (-qp[:, t] + pqp) / q[:, t, t], 0.0)
            p[:, t] += diff
            pqp = (pqp + diff * (diff * q[:, t, t] + 2 * qp[:, t])) / (1 + diff) ** 2
            qp = (qp + diff[:, None] * q[:, t, :]) / (1 + diff[:, None])
            p /= (1 + diff)[:, None]
    return p


@kernel("SVMClassifier", since=1, domain="ai.onnx.ml", factory=True)
def svm_classifier_factory(node: NodeInfo):
    a = node.attrs
    labels = _class_labels(a, "classlabels_ints")
    if not labels:
        raise ValueError("SVMClassifier needs classlabels_strings or classlabels_ints")
    n_class = len(labels)
    coef = np.asarray(a.get("coefficients", []), dtype=np.float32).astype(np.float64)
    rho = np.asarray(a.get("rho", []), dtype=np.float32).astype(np.float64)
    per_class = [int(v) for v in a.get("vectors_per_class") or []]
    n_vec = sum(per_class)
    prob_a = np.asarray(a.get("prob_a") or [], dtype=np.float32).astype(np.float64)
    prob_b = np.asarray(a.get("prob_b") or [], dtype=np.float32).astype(np.float64)
    have_proba = prob_a.size > 0
    post = check_post_transform(a.get("post_transform", "NONE"))
    all_positive = bool((coef >= 0).all())
    svc = n_vec > 0
    kern = _Kernel(a.get("kernel_type", "LINEAR") if svc else "LINEAR", a.get("kernel_params"))
    if svc:
        sv = np.asarray(a["support_vectors"], dtype=np.float32).astype(np.float64).reshape(n_vec, -1)
        coef = coef.reshape(-1, n_vec)
        starts = np.cumsum([0, *per_class])
    pairs = [(i, j) for i in range(n_class) for j in range(i + 1, n_class)]

    def svm_classifier(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x2 = as_2d_float(np.asarray(x, dtype=np.float32))
        n = x2.shape[0]
        votes = None
        if not svc:
            scores = x2 @ coef.reshape(n_class, -1).T + rho[0]
        else:
            kx = kern(x2, sv)
            scores = np.empty((n, len(pairs)))
            votes = np.zeros((n, n_class), dtype=np.int64)
            for c, (i, j) in enumerate(pairs):
                si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                s = kx[:, si] @ coef[j - 1, si] + kx[:, sj] @ coef[i, sj] + rho[c]
                scores[:, c] = s
                win = s > 0
                votes[:, i] += win
                votes[:, j] += ~win
            if have_proba:
                r = np.zeros((n, n_class, n_class))
                for c, (i, j) in enumerate(pairs):
                    v = 1.0 - logistic(scores[:, c] * prob_a[c] + prob_b[c])
                    v = np.clip(v, 1e-7, 1 - 1e-7)
                    r[:, i, j], r[:, j, i] = v, 1.0 - v
                scores = _multiclass_probability(r)
        if votes is not None:
            maxclass = np.argmax(votes, axis=1)
            max_weight = np.zeros(n)
        else:
            maxclass = np.argmax(scores, axis=1)
            max_weight = scores[np.arange(n), maxclass]
        if len(pairs) == 1 and not have_proba:  # two classes
            pos = (max_weight >= 0.5) if all_positive else (max_weight > 0)
            maxclass = np.where(pos, 1, maxclass)
        y = labels_array(labels, maxclass)
        add_second = -1
        if svc and not have_proba and n_class <= 2:
            add_second = 2 if post == "NONE" else 0
        return y, _transform_scores(scores, post, add_second).astype(np.float32)

    return svm_classifier


@kernel("SVMRegressor", since=1, domain="ai.onnx.ml", factory=True)
def svm_regressor_factory(node: NodeInfo):
    a = node.attrs
    coef = np.asarray(a.get("coefficients", []), dtype=np.float32).astype(np.float64)
    rho = np.asarray(a.get("rho", []), dtype=np.float32).astype(np.float64)
    n_sup = int(a.get("n_supports", 0))
    one_class = bool(a.get("one_class", 0))
    check_post_transform(a.get("post_transform", "NONE"))
    kern = _Kernel(a.get("kernel_type", "LINEAR") if n_sup > 0 else "LINEAR", a.get("kernel_params"))
    if n_sup > 0:
        sv = np.asarray(a["support_vectors"], dtype=np.float32).astype(np.float64).reshape(n_sup, -1)

    def svm_regressor(x: np.ndarray) -> np.ndarray:
        x2 = as_2d_float(np.asarray(x, dtype=np.float32))
        if n_sup > 0:
            s = kern(x2, sv) @ coef[:n_sup]
        else:
            s = x2 @ coef
        s = s + (rho[0] if rho.size else 0.0)
        if one_class:
            s = np.where(s > 0, 1.0, -1.0)
        # onnxruntime writes the raw score whatever post_transform says.
        return s[:, None].astype(np.float32)

    return svm_regressor
