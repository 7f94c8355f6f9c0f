"""PASCAL VOC detection average precision (``VOCevaldet``), in both AP conventions.

Boxes are ``[y1, x1, y2, x2]`` in the devkit's inclusive pixel coordinates (tfds' VOC
``bbox`` times the image height/width gives exactly these 1-based values), so areas and
overlaps count ``+1`` pixel per side, as ``VOCevaldet`` does.

Per class, as in the devkit: detections of all images are ranked by decreasing score
(stable sort, like MATLAB's ``sort``); each is assigned to the ground-truth box of its
image with the largest IoU; if that IoU is ≥ 0.5 and the box is "difficult" the
detection is ignored (neither TP nor FP); else, if the box is not yet taken, it is a TP
and the box becomes taken; otherwise (taken box, or IoU < 0.5) it is a FP — so a
duplicate detection is a false positive. Recall divides by the number of non-difficult
ground-truth boxes. The AP itself (``voc07_11point`` / ``voc10_area``) is computed by
``mtsyn_tf.metrics.classification`` from that precision/recall curve.

A class without any non-difficult ground truth has an undefined AP (NaN); the mAP is
the mean over the classes that have ground truth, and the result lists which did.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.metrics.classification import VOC07_11POINT, _ap_from_curve, _check_convention

IOU_THRESHOLD = 0.5


def box_iou(boxes, box) -> np.ndarray:
    """``[N]`` IoU of ``boxes`` ``[N, 4]`` with one ``box`` ``[4]`` (inclusive pixels, +1)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    box = np.asarray(box, np.float64)
    ih = np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]) + 1.0
    iw = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]) + 1.0
    inter = np.clip(ih, 0, None) * np.clip(iw, 0, None)
    area = (boxes[:, 2] - boxes[:, 0] + 1.0) * (boxes[:, 3] - boxes[:, 1] + 1.0)
    union = area + (box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0) - inter
    return inter / np.maximum(union, 1e-12)


def _as_boxes(value, name: str, index: int) -> np.ndarray:
    boxes = np.asarray(value, np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.all(np.isfinite(boxes)):
        raise ValueError(
            f"{name}[{index}] must be a finite [N, 4] box array. Received shape {boxes.shape}"
        )
    return boxes


def detection_average_precision(detections, ground_truth, convention: str = VOC07_11POINT) -> dict:
    """AP of one class.

    Args:
        detections: per image, ``(boxes [K, 4], scores [K])`` of this class.
        ground_truth: per image, ``(boxes [M, 4], difficult [M] bool)`` of this class.
        convention: ``"voc07_11point"`` or ``"voc10_area"``.

    Returns:
        ``{"ap", "convention", "num_positives", "num_detections"}``.
    """
    _check_convention(convention)
    if len(detections) != len(ground_truth):
        raise ValueError(
            "detections and ground_truth need one entry per image. Received: "
            f"{len(detections)} and {len(ground_truth)} images"
        )
    gts, image_of, scores, boxes = [], [], [], []
    for i, ((det_boxes, det_scores), (gt_boxes, difficult)) in enumerate(
        zip(detections, ground_truth)
    ):
        gt_boxes = _as_boxes(gt_boxes, "ground_truth boxes", i)
        difficult = np.asarray(difficult, bool).reshape(-1)
        if difficult.shape[0] != gt_boxes.shape[0]:
            raise ValueError(f"ground_truth[{i}]: one difficult flag per box expected.")
        gts.append((gt_boxes, difficult, np.zeros(len(gt_boxes), bool)))
        det_boxes = _as_boxes(det_boxes, "detection boxes", i)
        det_scores = np.asarray(det_scores, np.float64).reshape(-1)
        if det_scores.shape[0] != det_boxes.shape[0] or not np.all(np.isfinite(det_scores)):
            raise ValueError(f"detections[{i}]: one finite score per box expected.")
        boxes.append(det_boxes)
        scores.append(det_scores)
        image_of.append(np.full(len(det_scores), i))
    num_pos = int(sum((~d).sum() for _, d, _ in gts))
    scores = np.concatenate(scores) if scores else np.zeros(0)
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    image_of = np.concatenate(image_of) if image_of else np.zeros(0, int)
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for rank, d in enumerate(order):
        gt_boxes, difficult, taken = gts[image_of[d]]
        overlaps = box_iou(gt_boxes, boxes[d]) if len(gt_boxes) else np.zeros(0)
        best = int(np.argmax(overlaps)) if overlaps.size else -1
        if best >= 0 and overlaps[best] >= IOU_THRESHOLD:
            if difficult[best]:
                continue
            if not taken[best]:
                tp[rank], taken[best] = 1.0, True
                continue
        fp[rank] = 1.0
    keep = (tp + fp) > 0  # drops the ignored (difficult) detections
    tp, fp = np.cumsum(tp[keep]), np.cumsum(fp[keep])
    if num_pos == 0:
        ap = float("nan")
    elif tp.size == 0:
        ap = 0.0
    else:
        ap = _ap_from_curve(tp / np.maximum(tp + fp, 1e-12), tp / num_pos, convention)
    return {
        "ap": ap,
        "convention": convention,
        "num_positives": num_pos,
        "num_detections": int(keep.sum()),
    }


def voc_detection_map(
    detections, ground_truth, num_classes: int, convention: str = VOC07_11POINT
) -> dict:
    """mAP over classes from per-image detections and annotations.

    Args:
        detections: per image, ``(boxes [K, 4], scores [K], labels [K])``.
        ground_truth: per image, ``(boxes [M, 4], labels [M], difficult [M])``.
        num_classes: number of object classes (labels are ``0 … num_classes − 1``).
        convention: ``"voc07_11point"`` or ``"voc10_area"``.

    Returns:
        ``{"map", "convention", "per_class_ap", "num_positives", "classes_evaluated"}``;
        ``map`` averages the classes with ground truth (``classes_evaluated``).
    """
    _check_convention(convention)
    per_class, num_positives = [], []
    detections = [(_as_boxes(b, "detection boxes", i), np.asarray(s), np.asarray(k))
                  for i, (b, s, k) in enumerate(detections)]  # fmt: skip
    ground_truth = [(_as_boxes(b, "ground_truth boxes", i), np.asarray(k), np.asarray(d, bool))
                    for i, (b, k, d) in enumerate(ground_truth)]  # fmt: skip
    for c in range(num_classes):
        dets = [(boxes[k == c], scores[k == c]) for boxes, scores, k in detections]
        gts = [(boxes[k == c], difficult[k == c]) for boxes, k, difficult in ground_truth]
        r = detection_average_precision(dets, gts, convention)
        per_class.append(r["ap"])
        num_positives.append(r["num_positives"])
    evaluated = [c for c in range(num_classes) if num_positives[c] > 0]
    if not evaluated:
        raise ValueError("No class has a non-difficult ground-truth box: mAP is undefined.")
    return {
        "map": float(np.mean([per_class[c] for c in evaluated])),
        "convention": convention,
        "per_class_ap": per_class,
        "num_positives": num_positives,
        "classes_evaluated": evaluated,
    }
