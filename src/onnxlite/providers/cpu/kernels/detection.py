"""Detection kernels: NonMaxSuppression."""

from __future__ import annotations

import numpy as np

from ..registry import kernel


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """[N, 4] boxes as (x_min, y_min, x_max, y_max) with min <= max."""
    if center_point_box:
        xc, yc, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2] / 2, boxes[:, 3] / 2
        return np.stack([xc - w, yc - h, xc + w, yc + h], axis=1)
    # [y1, x1, y2, x2], any diagonal pair of corners
    y1, x1, y2, x2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return np.stack([np.minimum(x1, x2), np.minimum(y1, y2), np.maximum(x1, x2), np.maximum(y1, y2)], axis=1)


def _suppressed_by(box: np.ndarray, box_area, c: np.ndarray, area: np.ndarray, thr) -> np.ndarray:
    """Which of the boxes ``c`` the selected ``box`` suppresses: IoU > thr, with empty overlaps
    and degenerate boxes never suppressed (onnxruntime's rules)."""
    iw = np.minimum(box[2], c[:, 2]) - np.maximum(box[0], c[:, 0])
    ih = np.minimum(box[3], c[:, 3]) - np.maximum(box[1], c[:, 1])
    overlap = (iw > 0) & (ih > 0)
    inter = np.where(overlap, iw * ih, 0)
    union = box_area + area - inter
    ok = overlap & (box_area > 0) & (area > 0) & (union > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / np.where(ok, union, 1)
    return ok & (iou > thr)


@kernel("NonMaxSuppression", since=10)
def non_max_suppression(
    boxes,
    scores,
    max_output_boxes_per_class=None,
    iou_threshold=None,
    score_threshold=None,
    *,
    center_point_box=0,
):
    boxes, scores = np.asarray(boxes), np.asarray(scores)
    if boxes.ndim != 3 or boxes.shape[2] != 4:
        raise ValueError(f"NonMaxSuppression boxes must be [batch, n, 4], got {boxes.shape}")
    if scores.ndim != 3 or scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
        raise ValueError(f"NonMaxSuppression scores {scores.shape} do not match boxes {boxes.shape}")
    max_out = 0
    if max_output_boxes_per_class is not None and np.size(max_output_boxes_per_class):
        max_out = max(int(np.asarray(max_output_boxes_per_class).reshape(-1)[0]), 0)
    dt = boxes.dtype if boxes.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    thr = dt.type(0)
    if iou_threshold is not None and np.size(iou_threshold):
        thr = dt.type(np.asarray(iou_threshold).reshape(-1)[0])
    s_thr = None
    if score_threshold is not None and np.size(score_threshold):
        s_thr = np.asarray(score_threshold).reshape(-1)[0]
    out: list[tuple[int, int, np.ndarray]] = []
    if max_out > 0:
        for b in range(boxes.shape[0]):
            c = _corners(boxes[b].astype(dt, copy=False), center_point_box)
            area = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
            for k in range(scores.shape[1]):
                sc = scores[b, k]
                cand = np.arange(sc.shape[0]) if s_thr is None else np.flatnonzero(sc > s_thr)
                # highest score first, ties by lower box index
                cand = cand[np.argsort(-sc[cand], kind="stable")]
                cc, ca = c[cand], area[cand]
                alive = np.ones(cand.shape[0], dtype=bool)
                picked = []
                pos = 0
                while len(picked) < max_out and pos < alive.shape[0]:
                    i = pos + int(np.argmax(alive[pos:]))
                    if not alive[i]:
                        break
                    picked.append(i)
                    pos = i + 1  # only lower-scored candidates remain to be suppressed
                    alive[pos:] &= ~_suppressed_by(cc[i], ca[i], cc[pos:], ca[pos:], thr)
                if picked:
                    out.append((b, k, cand[np.asarray(picked)]))
    if not out:
        return np.zeros((0, 3), dtype=np.int64)
    res = np.empty((sum(len(p) for _, _, p in out), 3), dtype=np.int64)
    row = 0
    for b, k, p in out:
        res[row : row + len(p), 0] = b
        res[row : row + len(p), 1] = k
        res[row : row + len(p), 2] = p
        row += len(p)
    return res
