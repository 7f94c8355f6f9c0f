"""Surface-normal angular error metrics (Fouhey et al. / Eigen & Fergus protocol).

Conventions:

* ``pred`` and ``gt`` are ``[..., 3]`` arrays of identical shape; both are L2-normalised
  here (the network's normals are unnormalised), so only directions are compared.
* Scored pixels are ``mask & isfinite(gt) & (|gt| > 0)`` (the data schema stores 0 where
  there is no geometry). Predictions on scored pixels must be finite and non-zero,
  otherwise ``ValueError`` (a zero vector has no direction).
* The angle is ``atan2(|p × g|, p · g)`` in degrees, equal to ``arccos(clip(p·g, -1, 1))``
  but accurate for tiny angles too, where ``arccos`` loses half the float digits.
* ``pct_11_25``/``pct_22_5``/``pct_30`` are percentages (0..100) of pixels with angle
  strictly below the threshold; ``mean``/``median``/``rmse`` are in degrees.
* Pooling: all statistics are over the pooled pixels of the whole dataset (not averages
  of per-image statistics). Mean, RMSE and the percentages are exact (float64 sums and
  integer counts). The median is taken from a histogram of angles over [0°, 180°] with
  ``bin_degrees``-wide bins (default 0.01°): each of the two middle order statistics is
  replaced by its bin centre, so the reported median is within ``bin_degrees / 2`` of the
  exact pooled median while memory stays constant. ``exact_median=True`` keeps every
  angle instead (exact, O(pixels) memory; for tests and small sets).
* No valid pixel at all: every metric is NaN and ``num_pixels`` is 0.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.metrics._validation import check_finite_where, check_same_shape, resolve_mask

NORMAL_THRESHOLDS_DEGREES = (11.25, 22.5, 30.0)
NORMAL_METRIC_NAMES = ("mean", "median", "rmse", "pct_11_25", "pct_22_5", "pct_30")


def angular_error_degrees(pred, gt) -> np.ndarray:
    """Per-pixel angle between ``pred`` and ``gt`` directions, degrees, shape ``[...]``.

    Vectors are normalised first; zero vectors give NaN (no direction), which the
    accumulator prevents by checking its inputs.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    check_same_shape(pred, gt)
    if pred.shape[-1:] != (3,):
        raise ValueError(f"normals must have a last axis of size 3. Received shape: {pred.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        p = pred / np.linalg.norm(pred, axis=-1, keepdims=True)
        g = gt / np.linalg.norm(gt, axis=-1, keepdims=True)
    cross = np.linalg.norm(np.cross(p, g), axis=-1)
    dot = np.clip(np.sum(p * g, axis=-1), -1.0, 1.0)
    return np.degrees(np.arctan2(cross, dot))


class NormalAccumulator:
    """Streams angular-error statistics over a dataset (see module docstring)."""

    def __init__(self, bin_degrees: float = 0.01, exact_median: bool = False):
        if not 0.0 < bin_degrees <= 180.0:
            raise ValueError(
                f"bin_degrees must be in (0, 180]. Received: bin_degrees={bin_degrees}"
            )
        self.bin_degrees = float(bin_degrees)
        self.exact_median = bool(exact_median)
        self._num_bins = int(np.ceil(180.0 / self.bin_degrees))
        self.reset()

    def reset(self) -> None:
        self._count = 0
        self._sum = 0.0
        self._sum_sq = 0.0
        self._below = np.zeros(len(NORMAL_THRESHOLDS_DEGREES), dtype=np.int64)
        self._hist = np.zeros(self._num_bins, dtype=np.int64)
        self._angles: list[np.ndarray] = []

    def update(self, pred, gt, mask=None) -> None:
        """Adds one image (``[H, W, 3]``) or a batch (``[B, H, W, 3]``)."""
        pred = np.asarray(pred, dtype=np.float64)
        gt = np.asarray(gt, dtype=np.float64)
        check_same_shape(pred, gt)
        if gt.ndim < 1 or gt.shape[-1] != 3:
            raise ValueError(f"normals must have a last axis of size 3. Received shape: {gt.shape}")
        with np.errstate(invalid="ignore"):
            valid = (
                resolve_mask(mask, gt.shape[:-1])
                & np.all(np.isfinite(gt), axis=-1)
                & (np.linalg.norm(gt, axis=-1) > 0)
            )
        check_finite_where(
            pred, np.broadcast_to(valid[..., None], pred.shape), "normal predictions"
        )
        p, g = pred[valid], gt[valid]
        zero = np.linalg.norm(p, axis=-1) == 0
        if np.any(zero):
            raise ValueError(
                f"normal predictions have {int(zero.sum())} zero vector(s) on valid pixels; "
                "a zero vector has no direction."
            )
        if p.shape[0] == 0:
            return
        angles = angular_error_degrees(p, g)
        self._count += angles.size
        self._sum += float(np.sum(angles))
        self._sum_sq += float(np.sum(angles**2))
        for i, t in enumerate(NORMAL_THRESHOLDS_DEGREES):
            self._below[i] += int(np.sum(angles < t))
        bins = np.minimum((angles / self.bin_degrees).astype(np.int64), self._num_bins - 1)
        self._hist += np.bincount(bins, minlength=self._num_bins)
        if self.exact_median:
            self._angles.append(angles)

    def _histogram_median(self) -> float:
        cumulative = np.cumsum(self._hist)
        lo_rank, hi_rank = (self._count - 1) // 2, self._count // 2  # 0-based order statistics
        lo_bin = int(np.searchsorted(cumulative, lo_rank, side="right"))
        hi_bin = int(np.searchsorted(cumulative, hi_rank, side="right"))
        return float((lo_bin + hi_bin + 1) * 0.5 * self.bin_degrees)

    def result(self) -> dict[str, float]:
        n = self._count
        out: dict[str, float] = {"num_pixels": n}
        if n == 0:
            out.update({name: float("nan") for name in NORMAL_METRIC_NAMES})
            return out
        if self.exact_median:
            median = float(np.median(np.concatenate(self._angles)))
        else:
            median = self._histogram_median()
        out.update(
            {
                "mean": self._sum / n,
                "median": median,
                "rmse": float(np.sqrt(self._sum_sq / n)),
                "pct_11_25": 100.0 * self._below[0] / n,
                "pct_22_5": 100.0 * self._below[1] / n,
                "pct_30": 100.0 * self._below[2] / n,
            }
        )
        return out


def normal_metrics(pred, gt, mask=None, exact_median: bool = True) -> dict[str, float]:
    """One-shot normal metrics; the median is exact by default here."""
    acc = NormalAccumulator(exact_median=exact_median)
    acc.update(pred, gt, mask)
    return acc.result()
