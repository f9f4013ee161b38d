"""SoftmaxCrossEntropyLoss / NegativeLogLikelihoodLoss against onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

rng = np.random.default_rng(0)


def _inputs(shape, n_cls, dtype=np.float32, weight=False, ignore=None):
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.integers(0, n_cls, (shape[0], *shape[2:])).astype(np.int64)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    d = {"x": x, "t": t}
    if weight:
        d["w"] = rng.uniform(0.2, 1.5, n_cls).astype(dtype)
    return d


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("ignore", [None, 1, -5])
@pytest.mark.parametrize("opset", [12, 13])
def test_sce(reduction, weight, ignore, opset):
    ins = _inputs((3, 5, 2, 4), 5, weight=weight, ignore=ignore)
    attrs = {"reduction": reduction}
    if ignore is not None:
        attrs["ignore_index"] = ignore
    check_node("SoftmaxCrossEntropyLoss", ins, attrs, outputs=("loss", "log_prob"), opset=opset)


def test_sce_single_output_2d_double():
    ins = _inputs((6, 4), 4, dtype=np.float64)
    check_node("SoftmaxCrossEntropyLoss", ins, {"reduction": "sum"})


def test_sce_large_logits_are_stable():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]], np.float32)
    t = np.array([0, 2], np.int64)
    model = node_model("SoftmaxCrossEntropyLoss", {"x": x, "t": t}, {"reduction": "none"})
    loss = run_onnxlite(model, {"x": x, "t": t})[0]
    assert np.all(np.isfinite(loss))
    np.testing.assert_allclose(loss, [0.0, 1000.0], rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("ignore", [None, 2, 7])
@pytest.mark.parametrize("opset", [12, 13, 22])
def test_nll(reduction, weight, ignore, opset):
    ins = _inputs((4, 3, 5), 3, weight=weight, ignore=ignore)
    attrs = {"reduction": reduction}
    if ignore is not None:
        attrs["ignore_index"] = ignore
    check_node("NegativeLogLikelihoodLoss", ins, attrs, opset=opset)


def test_nll_int32_target_and_2d():
    x = rng.standard_normal((5, 4)).astype(np.float32)
    t = np.array([0, 3, 1, 2, 3], np.int32)
    check_node("NegativeLogLikelihoodLoss", {"x": x, "t": t}, {"reduction": "mean"})


def test_nll_mean_ignores_ignored_in_denominator():
    x = -np.arange(6, dtype=np.float32).reshape(2, 3)
    t = np.array([1, 0], np.int64)
    model = node_model("NegativeLogLikelihoodLoss", {"x": x, "t": t}, {"ignore_index": 0})
    (loss,) = run_onnxlite(model, {"x": x, "t": t})
    assert loss.dtype == np.float32 and loss.shape == ()
    assert loss == pytest.approx(1.0)  # only sample 0 counts: -x[0, 1] = 1
