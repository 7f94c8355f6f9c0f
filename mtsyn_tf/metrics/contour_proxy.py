"""Fast pixel-exact contour scores: the numpy reference of ``keras_metrics.ContourMetrics``.

Used during training, where the BSDS protocol (thinning + tolerant matching, see
``contours.py``) is too slow. Here a predicted edge pixel counts as a true positive only
if the ground truth has an edge at *exactly* that pixel; there is no thinning and no
distance tolerance. The numbers are therefore lower than BSDS ODS/OIS and are only a
proxy for tracking training — report ``contours.py`` results as the evaluation.

Conventions:

* thresholds: the BSDS grid ``linspace(1/(K+1), 1 - 1/(K+1), K)`` rounded to float32
  (the TF metric compares in float32, so both agree bit for bit); positive if
  ``prob >= t``. The F-score at 0.5 uses its own exact threshold 0.5.
* ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``, 0 for a zero denominator;
  ``F = 2PR / (P + R)``, 0 when ``P + R = 0`` (same conventions as BSDS).
* ``ap`` is the step-wise (non-interpolated) area under the PR curve sampled at the
  grid, ``sum_k (R_k - R_{k+1}) P_k`` with ``R_K = 0`` — what
  ``sklearn.metrics.average_precision_score`` gives for scores quantised to the grid.
  Probabilities below the lowest threshold are never positive, so the curve does not
  reach the (recall 1, base rate) point.
* pixels are pooled over the dataset; with no scored pixel at all every value is NaN.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.metrics._validation import check_finite_where, check_same_shape, resolve_mask

PROXY_NUM_THRESHOLDS = 99
PROXY_METRIC_NAMES = ("f_0_5", "precision_0_5", "recall_0_5", "best_f", "ap")


def proxy_thresholds(num_thresholds: int = PROXY_NUM_THRESHOLDS) -> np.ndarray:
    """The BSDS grid in float32."""
    if num_thresholds < 1:
        raise ValueError(f"num_thresholds must be >= 1. Received: num_thresholds={num_thresholds}")
    k = int(num_thresholds)
    return np.linspace(1.0 / (k + 1), 1.0 - 1.0 / (k + 1), k).astype(np.float32)


def precision_recall_f(tp, fp, fn):
    """Precision, recall and F from counts, 0 wherever a denominator is 0."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    precision = tp / np.where(tp + fp == 0, 1.0, tp + fp)
    recall = tp / np.where(tp + fn == 0, 1.0, tp + fn)
    total = precision + recall
    return precision, recall, 2 * precision * recall / np.where(total == 0, 1.0, total)


def step_average_precision(tp, fp, fn) -> float:
    """``sum_k (R_k - R_{k+1}) P_k`` over thresholds in increasing order, ``R_K = 0``."""
    precision, recall, _ = precision_recall_f(tp, fp, fn)
    next_recall = np.append(recall[1:], 0.0)
    return float(np.sum((recall - next_recall) * precision))


class ContourProxyAccumulator:
    """Pooled pixel-exact TP/FP/FN counts over a threshold grid plus the 0.5 threshold."""

    def __init__(self, num_thresholds: int = PROXY_NUM_THRESHOLDS):
        self.thresholds = proxy_thresholds(num_thresholds)
        self.reset()

    def reset(self) -> None:
        k = self.thresholds.size
        self.tp, self.fp, self.fn = (np.zeros(k, dtype=np.int64) for _ in range(3))
        self.counts_0_5 = np.zeros(3, dtype=np.int64)  # tp, fp, fn at threshold 0.5
        self.num_pixels = 0

    def update(self, prob, gt, mask=None) -> None:
        """Adds ``prob`` (probabilities in [0, 1]) against {0,1} ``gt``, any identical shape."""
        prob = np.asarray(prob, dtype=np.float32)
        gt = np.asarray(gt)
        check_same_shape(prob, gt)
        valid = resolve_mask(mask, gt.shape)
        check_finite_where(prob, valid, what="contour probabilities")
        if not np.all(np.isin(np.unique(gt[valid]), (0, 1))):
            raise ValueError(
                f"ground-truth contours must hold only 0/1. Received values: {np.unique(gt)[:8]}"
            )
        p = prob[valid]
        g = gt[valid].astype(bool)
        if p.size and (p.min() < 0 or p.max() > 1):
            raise ValueError(
                "contour predictions must be probabilities in [0, 1] (apply a sigmoid to logits). "
                f"Received range: [{p.min()}, {p.max()}]"
            )
        positive = p[None, :] >= self.thresholds[:, None]
        self.tp += np.sum(positive & g, axis=1)
        self.fp += np.sum(positive & ~g, axis=1)
        self.fn += np.sum(~positive & g, axis=1)
        at_half = p >= np.float32(0.5)
        self.counts_0_5 += [np.sum(at_half & g), np.sum(at_half & ~g), np.sum(~at_half & g)]
        self.num_pixels += int(p.size)

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {"num_pixels": self.num_pixels}
        if self.num_pixels == 0:
            out.update({name: float("nan") for name in PROXY_METRIC_NAMES})
            return out
        p05, r05, f05 = precision_recall_f(*self.counts_0_5)
        _, _, f = precision_recall_f(self.tp, self.fp, self.fn)
        out.update(
            {
                "f_0_5": float(f05),
                "precision_0_5": float(p05),
                "recall_0_5": float(r05),
                "best_f": float(f.max()),
                "ap": step_average_precision(self.tp, self.fp, self.fn),
            }
        )
        return out


def contour_proxy_metrics(prob, gt, mask=None, num_thresholds: int = PROXY_NUM_THRESHOLDS):
    """One-shot pixel-exact contour scores (see module docstring)."""
    acc = ContourProxyAccumulator(num_thresholds)
    acc.update(prob, gt, mask)
    return acc.result()
