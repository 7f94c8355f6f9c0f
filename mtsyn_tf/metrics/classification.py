"""PASCAL VOC classification average precision, in both devkit conventions.

Always say which AP a number uses; the result dicts carry it in ``"convention"``:

* ``"voc07_11point"`` — VOC2007 devkit: mean over recall levels 0, 0.1, ..., 1 of the
  maximum precision at recall >= that level (0 if the level is never reached). The
  paper's 68.0 mAP on VOC07 uses this.
* ``"voc10_area"`` — VOC2010+ devkit (``VOCap``): area under the precision–recall curve
  after making precision monotonically non-increasing (each point takes the maximum
  precision at any higher recall), summed over the recall steps.

As in ``VOCevalcls``: images are ranked by decreasing score (ties keep input order — a
stable sort, which is what MATLAB's ``sort`` does), "difficult" images are ignored
(neither true nor false positives, not counted as positives), precision at rank ``i`` is
``TP_i / i`` over non-ignored images and recall is ``TP_i / #positives``. A class without
any (non-difficult) positive has an undefined AP: it is NaN, and so is any mAP that
includes it.
"""

from __future__ import annotations

import numpy as np

VOC07_11POINT = "voc07_11point"
VOC10_AREA = "voc10_area"
CONVENTIONS = (VOC07_11POINT, VOC10_AREA)


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(
            f"convention must be one of {CONVENTIONS}. Received: convention={convention!r}"
        )


def voc_labels_to_masks(voc_labels) -> tuple[np.ndarray, np.ndarray]:
    """Splits devkit labels (1 positive, -1 negative, 0 difficult) into ``(labels, difficult)``."""
    voc_labels = np.asarray(voc_labels)
    if not np.all(np.isin(voc_labels, (-1, 0, 1))):
        raise ValueError(
            f"VOC labels must be -1, 0 or 1. Received values: {np.unique(voc_labels)[:8]}"
        )
    return voc_labels == 1, voc_labels == 0


def precision_recall_curve(scores, labels, difficult=None) -> tuple[np.ndarray, np.ndarray]:
    """Devkit precision and recall at every rank of the non-difficult images."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(
            "scores and labels must be 1-D arrays of the same length. "
            f"Received: scores {scores.shape}, labels {labels.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain non-finite values.")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError(
            f"labels must be 0/1 (use voc_labels_to_masks for -1/0/1). Received: {np.unique(labels)[:8]}"
        )
    difficult = np.zeros(labels.shape, bool) if difficult is None else np.asarray(difficult, bool)
    if difficult.shape != labels.shape:
        raise ValueError(f"difficult must match labels {labels.shape}. Received: {difficult.shape}")
    keep = ~difficult
    order = np.argsort(-scores[keep], kind="stable")
    positive = labels[keep].astype(bool)[order]
    tp = np.cumsum(positive)
    fp = np.cumsum(~positive)
    num_pos = int(positive.sum())
    recall = tp / num_pos if num_pos else np.full(tp.shape, np.nan)
    precision = tp / np.maximum(tp + fp, 1)
    return precision, recall


def _ap_from_curve(precision, recall, convention: str) -> float:
    if recall.size == 0 or np.isnan(recall).any():
        return float("nan")
    if convention == VOC07_11POINT:
        ap = 0.0
        for t in np.linspace(0.0, 1.0, 11):
            above = precision[recall >= t]
            ap += (above.max() if above.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


def voc_average_precision(scores, labels, difficult=None, convention: str = VOC07_11POINT) -> dict:
    """AP of one class. Returns ``{"ap", "convention", "num_positives"}``.

    Args:
        scores: ``[N]`` classifier scores, higher = more confident.
        labels: ``[N]`` 0/1 ground truth.
        difficult: optional ``[N]`` bool, True for images the devkit ignores.
        convention: ``"voc07_11point"`` or ``"voc10_area"``.
    """
    _check_convention(convention)
    precision, recall = precision_recall_curve(scores, labels, difficult)
    ignored = np.zeros(np.shape(labels), bool) if difficult is None else np.asarray(difficult, bool)
    num_pos = int(np.sum(np.asarray(labels).astype(bool) & ~ignored))
    return {
        "ap": _ap_from_curve(precision, recall, convention),
        "convention": convention,
        "num_positives": num_pos,
    }


def voc_mean_average_precision(
    scores, labels, difficult=None, convention: str = VOC07_11POINT
) -> dict:
    """mAP over classes: ``scores``/``labels``/``difficult`` are ``[N, C]``.

    Returns ``{"map", "convention", "per_class_ap"}`` (``per_class_ap`` is a list of C floats).
    """
    _check_convention(convention)
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must both be [N, C]. Received: scores {scores.shape}, labels {labels.shape}"
        )
    if difficult is not None:
        difficult = np.asarray(difficult, bool)
        if difficult.shape != labels.shape:
            raise ValueError(
                f"difficult must match labels {labels.shape}. Received: {difficult.shape}"
            )
    per_class = [
        voc_average_precision(
            scores[:, c], labels[:, c], None if difficult is None else difficult[:, c], convention
        )["ap"]
        for c in range(scores.shape[1])
    ]
    return {"map": float(np.mean(per_class)), "convention": convention, "per_class_ap": per_class}
