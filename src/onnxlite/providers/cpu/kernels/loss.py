"""Loss kernels: SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss."""

from __future__ import annotations

import numpy as np

from ..registry import kernel


def _compute_dtype(dt: np.dtype) -> np.dtype:
    # float16/bfloat16 accumulate in float32; double stays double.
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def _nll(logp, target, weight, reduction, ignore_index, out_dtype):
    """Negative log-likelihood of ``logp`` (N, C, d1, ...) at ``target`` (N, d1, ...)."""
    target = np.asarray(target).astype(np.int64, copy=False)
    n_cls = logp.shape[1]
    valid = None if ignore_index is None else target != ignore_index
    # Ignored targets may be out of range; point them at class 0 and zero them afterwards.
    idx = target if valid is None else np.where(valid, target, 0)
    picked = np.take_along_axis(logp, np.expand_dims(idx, 1), axis=1)[:, 0]
    loss = -picked
    w = None
    if weight is not None:
        w = np.asarray(weight).astype(logp.dtype)[np.clip(idx, 0, n_cls - 1)]
        if valid is not None:
            w = np.where(valid, w, 0).astype(logp.dtype)
    elif valid is not None:
        w = valid.astype(logp.dtype)
    if w is not None:
        loss = loss * w
    if reduction == "none":
        out = loss
    elif reduction == "sum":
        out = loss.sum()
    elif reduction == "mean":
        out = loss.sum() / w.sum() if w is not None else loss.mean()
    else:
        raise ValueError(f"unsupported reduction {reduction!r}")
    return np.asarray(out).astype(out_dtype)


@kernel("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(x, target, weight=None, *, ignore_index=None, reduction="mean"):
    x = np.asarray(x)
    logp = x.astype(_compute_dtype(x.dtype), copy=False)
    return _nll(logp, target, weight, reduction, ignore_index, x.dtype)


@kernel("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(scores, labels, weights=None, *, ignore_index=None, reduction="mean"):
    x = np.asarray(scores)
    xf = x.astype(_compute_dtype(x.dtype), copy=False)
    shifted = xf - xf.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = _nll(logp, labels, weights, reduction, ignore_index, x.dtype)
    return loss, logp.astype(x.dtype)
