"""NonMaxSuppression against onnx.reference and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from tests.oracle import check_node, node_model, run_onnxlite

RNG = np.random.default_rng(5)


def random_boxes(batches, n, center=False):
    xy = RNG.uniform(0, 10, (batches, n, 2))
    wh = RNG.uniform(0.5, 4, (batches, n, 2))
    if center:
        return np.concatenate([xy, wh], axis=2).astype(np.float32)
    # [y1, x1, y2, x2] with corners in random order
    b = np.concatenate([xy, xy + wh], axis=2)[..., [1, 0, 3, 2]]
    flip = RNG.random((batches, n)) < 0.3
    b[flip] = b[flip][:, [2, 3, 0, 1]]
    return b.astype(np.float32)


def nms_inputs(boxes, scores, max_out=None, iou=None, score=None):
    inputs = {"boxes": boxes, "scores": scores}
    names = ["boxes", "scores"]
    for key, val, dt in [("m", max_out, np.int64), ("iou", iou, np.float32), ("s", score, np.float32)]:
        if val is None:
            names.append("")
        else:
            inputs[key] = np.array([val], dtype=dt)
            names.append(key)
    while names[-1] == "":
        names.pop()
    return inputs, names


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize(
    ("max_out", "iou", "score"),
    [(3, 0.5, None), (100, 0.3, 0.2), (5, 0.0, 0.5), (100, 0.7, None), (2, 0.0, None)],
)
def test_nms_random(center, max_out, iou, score):
    boxes = random_boxes(2, 40, center=bool(center))
    scores = RNG.random((2, 3, 40)).astype(np.float32)
    inputs, names = nms_inputs(boxes, scores, max_out, iou, score)
    (got,) = check_node(
        "NonMaxSuppression", inputs, {"center_point_box": center}, opset=11, input_names=names
    )
    assert got.dtype == np.int64 and got.ndim == 2 and got.shape[1] == 3


def test_nms_opset10():
    boxes = random_boxes(1, 20)
    scores = RNG.random((1, 2, 20)).astype(np.float32)
    inputs, names = nms_inputs(boxes, scores, 4, 0.4, 0.1)
    check_node("NonMaxSuppression", inputs, opset=10, input_names=names)


def test_nms_hand_worked():
    # box 1 overlaps box 0 with IoU 0.81 (> 0.5), box 2 is disjoint, box 3 is below the score cut
    boxes = np.array([[[0, 0, 10, 10], [0, 1, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]], np.float32)
    scores = np.array([[[0.8, 0.9, 0.7, 0.05]]], np.float32)
    inputs, names = nms_inputs(boxes, scores, 10, 0.5, 0.1)
    m = node_model("NonMaxSuppression", inputs, {}, opset=11, input_names=names)
    (got,) = run_onnxlite(m, inputs)
    np.testing.assert_array_equal(got, [[0, 0, 1], [0, 0, 2]])


def test_nms_ties_keep_lower_index_and_iou_equal_threshold_keeps():
    # identical scores: lower box index first; IoU exactly 0.5 is not suppressed (strict >)
    boxes = np.array([[[0, 0, 1, 2], [0, 1, 1, 3], [0, 0, 1, 2]]], np.float32)
    scores = np.array([[[0.5, 0.5, 0.5]]], np.float32)
    inputs, names = nms_inputs(boxes, scores, 10, 1.0 / 3.0)
    (got,) = check_node("NonMaxSuppression", inputs, opset=11, input_names=names)
    np.testing.assert_array_equal(got, [[0, 0, 0], [0, 0, 1]])


def test_nms_missing_iou_threshold_means_zero():
    boxes = random_boxes(1, 30)
    scores = RNG.random((1, 2, 30)).astype(np.float32)
    with_iou, names = nms_inputs(boxes, scores, 30, 0.0)
    (want,) = run_onnxlite(node_model("NonMaxSuppression", with_iou, opset=11, input_names=names), with_iou)
    inputs, names = nms_inputs(boxes, scores, 30)
    (got,) = run_onnxlite(node_model("NonMaxSuppression", inputs, opset=11, input_names=names), inputs)
    np.testing.assert_array_equal(got, want)
    assert len(got) < 60  # some overlaps were suppressed


def test_nms_no_max_output_gives_empty():
    boxes = random_boxes(1, 5)
    scores = RNG.random((1, 1, 5)).astype(np.float32)
    m = node_model("NonMaxSuppression", {"b": boxes, "s": scores}, opset=11)
    (got,) = run_onnxlite(m, {"b": boxes, "s": scores})
    assert got.shape == (0, 3) and got.dtype == np.int64


def test_nms_empty_boxes():
    boxes = np.zeros((2, 0, 4), np.float32)
    scores = np.zeros((2, 3, 0), np.float32)
    inputs, names = nms_inputs(boxes, scores, 5, 0.5)
    m = node_model("NonMaxSuppression", inputs, opset=11, input_names=names)
    (got,) = run_onnxlite(m, inputs)
    assert got.shape == (0, 3)
