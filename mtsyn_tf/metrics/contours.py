"""BSDS / HED boundary benchmark (ODS, OIS, AP) in numpy + scipy + scikit-image.

This re-implements the MATLAB ``edgesEvalImg`` / ``collect_eval_bdry`` protocol that
HED and the paper's contour numbers use, so no MATLAB is needed:

1. For ``K`` thresholds ``t_k = linspace(1/(K+1), 1 - 1/(K+1), K)`` (K = 99 as in HED),
   binarise the probability map with ``prob >= t_k`` and thin it to 1-pixel-wide
   edges (``skimage.morphology.thin``, the equivalent of ``bwmorph(..., 'thin', inf)``).
2. Match predicted edge pixels one-to-one to ground-truth edge pixels within
   ``max_dist_fraction × image diagonal`` pixels (0.0075 in BSDS), see
   ``edge_matching.match_edge_maps`` for how this relates to ``correspondPixels``.
   With several ground-truth maps per image (BSDS has ~5 annotators) recall counts the
   matched pixels of every map, and a predicted pixel is correct if it matches any map.
3. Per image and threshold keep ``cntR, sumR, cntP, sumP`` (matched / total ground-truth
   pixels, matched / total predicted pixels). ``R = cntR / sumR`` and
   ``P = cntP / sumP`` with 0 for a zero denominator; ``F = 2PR / (P + R)`` (0 if both 0).
4. ODS: F of the dataset-summed counts at the best fixed threshold. As in BSDS, P and R
   are linearly interpolated between neighbouring thresholds (100 steps) and the best
   interpolated F is reported (``interpolate=False`` gives the best grid threshold).
5. OIS: for each image the grid threshold with the best F (first on ties); the counts
   at those thresholds are summed over images and turned into one F.
6. AP: precision linearly interpolated at recall 0, 0.01, ..., 1 over the dataset curve
   (recall values made unique keeping the first, i.e. lowest-threshold, occurrence;
   outside the observed recall range precision counts as 0), summed × 0.01.

Ground-truth maps are used as given (they are already 1-pixel Canny boundaries here);
only predictions are thinned. An image with no ground-truth edge has R = 0 at every
threshold, as in BSDS.
"""

from __future__ import annotations

import numpy as np
from skimage.morphology import thin

from mtsyn_tf.metrics.edge_matching import match_edge_maps

BSDS_MAX_DIST_FRACTION = 0.0075
BSDS_NUM_THRESHOLDS = 99


def bsds_thresholds(num_thresholds: int = BSDS_NUM_THRESHOLDS) -> np.ndarray:
    """The BSDS threshold grid ``linspace(1/(K+1), 1 - 1/(K+1), K)``."""
    if num_thresholds < 1:
        raise ValueError(f"num_thresholds must be >= 1. Received: num_thresholds={num_thresholds}")
    k = int(num_thresholds)
    return np.linspace(1.0 / (k + 1), 1.0 - 1.0 / (k + 1), k)


def f_measure(recall, precision):
    """``2PR / (P + R)`` with 0 where ``P + R == 0`` (BSDS ``fmeasure``)."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    total = precision + recall
    return 2.0 * precision * recall / np.where(total == 0, 1.0, total)


def _safe_ratio(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return num / np.where(den == 0, 1.0, den)


def _check_prob_and_gts(prob, gt) -> tuple[np.ndarray, list[np.ndarray]]:
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim == 3 and prob.shape[-1] == 1:
        prob = prob[..., 0]
    gts = list(gt) if isinstance(gt, (list, tuple)) else [gt]
    if not gts:
        raise ValueError("gt must be an edge map or a non-empty list of edge maps. Received: []")
    out = []
    for g in gts:
        g = np.asarray(g)
        if g.ndim == 3 and g.shape[-1] == 1:
            g = g[..., 0]
        if g.shape != prob.shape:
            raise ValueError(
                f"predictions and ground truth of different shapes: pred {prob.shape}, gt {g.shape}"
            )
        if not np.all(np.isin(np.unique(g), (0, 1))):
            raise ValueError(
                f"ground-truth edge maps must hold only 0/1. Received values: {np.unique(g)[:8]}"
            )
        out.append(g.astype(bool))
    if prob.ndim != 2:
        raise ValueError(f"prob must be an [H, W] (or [H, W, 1]) map. Received shape: {prob.shape}")
    if not np.all(np.isfinite(prob)):
        raise ValueError("contour probabilities contain non-finite values.")
    if prob.min() < 0 or prob.max() > 1:
        raise ValueError(
            "contour predictions must be probabilities in [0, 1] (apply a sigmoid to logits). "
            f"Received range: [{prob.min()}, {prob.max()}]"
        )
    return prob, out


def image_boundary_counts(
    prob,
    gt,
    thresholds=None,
    max_dist_fraction: float = BSDS_MAX_DIST_FRACTION,
    thin_predictions: bool = True,
) -> np.ndarray:
    """BSDS counts of one image, float64 ``[K, 4]`` = ``(cntR, sumR, cntP, sumP)`` per threshold.

    Args:
        prob: ``[H, W]`` edge probabilities in [0, 1].
        gt: ``[H, W]`` {0,1} edge map, or a list of them (several annotators).
        thresholds: 1-D thresholds; defaults to the 99-level BSDS grid.
        max_dist_fraction: match tolerance as a fraction of the image diagonal.
        thin_predictions: thin binarised predictions before matching (BSDS default).
    """
    prob, gts = _check_prob_and_gts(prob, gt)
    thresholds = bsds_thresholds() if thresholds is None else np.asarray(thresholds, np.float64)
    max_dist = max_dist_fraction * float(np.hypot(*prob.shape))
    sum_r = float(sum(int(g.sum()) for g in gts))
    counts = np.zeros((thresholds.size, 4), dtype=np.float64)
    previous_key, previous_row = None, None
    for k, t in enumerate(thresholds):
        binary = prob >= t
        key = binary.tobytes()
        if key == previous_key:  # same binary map as the last threshold: same counts
            counts[k] = previous_row
            continue
        edges = thin(binary) if thin_predictions else binary
        matched_any = np.zeros_like(edges)
        cnt_r = 0
        for g in gts:
            matched_pred, matched_gt = match_edge_maps(edges, g, max_dist)
            cnt_r += int(matched_gt.sum())
            matched_any |= matched_pred
        counts[k] = (cnt_r, sum_r, matched_any.sum(), edges.sum())
        previous_key, previous_row = key, counts[k].copy()
    return counts


def _best_f_interpolated(thresholds, recall, precision, interpolate: bool):
    """BSDS ``maxF``: best F over the grid, optionally along linear segments (100 steps)."""
    f = f_measure(recall, precision)
    best = int(np.argmax(f))
    best_t, best_r, best_p, best_f = thresholds[best], recall[best], precision[best], f[best]
    if interpolate and thresholds.size > 1:
        d = np.linspace(0.0, 1.0, 100)[None, :]
        t = thresholds[1:, None] * d + thresholds[:-1, None] * (1 - d)
        r = recall[1:, None] * d + recall[:-1, None] * (1 - d)
        p = precision[1:, None] * d + precision[:-1, None] * (1 - d)
        fi = f_measure(r, p)
        i = int(np.argmax(fi))
        if fi.flat[i] > best_f:
            best_t, best_r, best_p, best_f = t.flat[i], r.flat[i], p.flat[i], fi.flat[i]
    return float(best_t), float(best_r), float(best_p), float(best_f)


def bsds_average_precision(recall, precision) -> float:
    """BSDS AP: precision interpolated at recall 0:0.01:1, zero outside the curve, × 0.01."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    unique_r, first = np.unique(recall, return_index=True)
    if unique_r.size < 2:
        return 0.0
    grid = np.linspace(0.0, 1.0, 101)
    interpolated = np.interp(grid, unique_r, precision[first], left=0.0, right=0.0)
    return float(np.sum(interpolated) * 0.01)


def summarize_boundary_counts(per_image_counts, thresholds=None, interpolate: bool = True) -> dict:
    """ODS / OIS / AP from per-image ``[K, 4]`` counts (see module docstring).

    Returns a dict with ``ods``, ``ods_threshold``, ``ods_recall``, ``ods_precision``,
    ``ois``, ``ap``, the dataset curves ``thresholds``, ``recall``, ``precision`` and
    ``num_images``. With no image at all every score is NaN.
    """
    counts = np.asarray(per_image_counts, dtype=np.float64)
    if counts.size == 0:
        nan = float("nan")
        return {"ods": nan, "ods_threshold": nan, "ois": nan, "ap": nan, "num_images": 0}
    if counts.ndim != 3 or counts.shape[-1] != 4:
        raise ValueError(f"per_image_counts must be [N, K, 4]. Received shape: {counts.shape}")
    thresholds = bsds_thresholds(counts.shape[1]) if thresholds is None else np.asarray(thresholds)
    if thresholds.shape != (counts.shape[1],):
        raise ValueError(
            f"thresholds must have one entry per count row ({counts.shape[1]}). "
            f"Received shape: {thresholds.shape}"
        )
    total = counts.sum(axis=0)
    recall = _safe_ratio(total[:, 0], total[:, 1])
    precision = _safe_ratio(total[:, 2], total[:, 3])
    ods_t, ods_r, ods_p, ods_f = _best_f_interpolated(thresholds, recall, precision, interpolate)

    image_f = f_measure(
        _safe_ratio(counts[..., 0], counts[..., 1]), _safe_ratio(counts[..., 2], counts[..., 3])
    )
    best = np.argmax(image_f, axis=1)  # first maximum, like MATLAB's max
    ois_counts = counts[np.arange(counts.shape[0]), best].sum(axis=0)
    ois = float(
        f_measure(
            _safe_ratio(ois_counts[0], ois_counts[1]), _safe_ratio(ois_counts[2], ois_counts[3])
        )
    )
    return {
        "ods": ods_f,
        "ods_threshold": ods_t,
        "ods_recall": ods_r,
        "ods_precision": ods_p,
        "ois": ois,
        "ap": bsds_average_precision(recall, precision),
        "thresholds": thresholds,
        "recall": recall,
        "precision": precision,
        "num_images": int(counts.shape[0]),
    }


class BoundaryEvaluator:
    """Streams images through the BSDS protocol; ``result()`` gives ODS/OIS/AP.

    Example:

    >>> ev = BoundaryEvaluator()
    >>> for prob, gt in images:
    ...     ev.update(prob, gt)
    >>> ev.result()["ods"]
    """

    def __init__(
        self,
        num_thresholds: int = BSDS_NUM_THRESHOLDS,
        max_dist_fraction: float = BSDS_MAX_DIST_FRACTION,
        thin_predictions: bool = True,
        interpolate: bool = True,
    ):
        if not 0 <= max_dist_fraction < 1:
            raise ValueError(f"max_dist_fraction must be in [0, 1). Received: {max_dist_fraction}")
        self.thresholds = bsds_thresholds(num_thresholds)
        self.max_dist_fraction = float(max_dist_fraction)
        self.thin_predictions = bool(thin_predictions)
        self.interpolate = bool(interpolate)
        self.per_image_counts: list[np.ndarray] = []

    def update(self, prob, gt) -> np.ndarray:
        """Evaluates one image; returns (and stores) its ``[K, 4]`` counts."""
        counts = image_boundary_counts(
            prob, gt, self.thresholds, self.max_dist_fraction, self.thin_predictions
        )
        self.per_image_counts.append(counts)
        return counts

    def result(self) -> dict:
        return summarize_boundary_counts(self.per_image_counts, self.thresholds, self.interpolate)


def boundary_metrics(probs, gts, **kwargs) -> dict:
    """One-shot ODS/OIS/AP over parallel sequences of probability maps and ground truths."""
    if len(probs) != len(gts):
        raise ValueError(
            f"probs and gts must have the same number of images. Received: {len(probs)} and {len(gts)}"
        )
    evaluator = BoundaryEvaluator(**kwargs)
    for prob, gt in zip(probs, gts):
        evaluator.update(prob, gt)
    return evaluator.result()
