"""Standard monocular-depth error metrics (Eigen et al. 2014), pooled over a dataset.

Conventions (write them next to any number you report):

* Inputs are planar depth in metres, any shape, ``pred`` and ``gt`` identical shapes.
* Scored pixels are ``mask & isfinite(gt) & (gt > 0)``: the caller's mask is
  intersected with the project's validity rule (``mtsyn_tf.geometry.valid_mask``), so a
  pixel with no ground truth can never be scored even if the mask says otherwise.
* Predictions on scored pixels must be finite and strictly positive (the log metrics
  are undefined otherwise); violations raise ``ValueError``.
* Pooling: every metric is a mean over *all scored pixels of the dataset* (the
  accumulator keeps sums and a pixel count, never per-image means). Images with many
  valid pixels therefore weigh more than nearly-empty ones. ``rmse`` and ``rmse_log``
  are the square roots of the pooled mean squares.
* ``log10`` is ``mean |log10 pred - log10 gt|``; ``rmse_log`` uses natural logs.
* ``delta1/2/3`` are the fractions of pixels with ``max(pred/gt, gt/pred) < 1.25**k``
  (strict inequality, as in Eigen's evaluation code).
* ``scale_invariant`` is Eigen's scale-invariant error with λ = 1,
  ``mean(d²) − mean(d)²`` with ``d = log pred − log gt`` (natural log), i.e. the variance
  of the log ratio, computed over the pooled pixels (one global scale for the whole
  dataset, not one per image). The training loss uses λ = 0.5 instead (SPEC §3).
* No valid pixel at all: every metric is NaN and ``num_pixels`` is 0.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.metrics._validation import check_finite_where, check_same_shape, resolve_mask

DEPTH_METRIC_NAMES = (
    "abs_rel",
    "sq_rel",
    "rmse",
    "rmse_log",
    "log10",
    "delta1",
    "delta2",
    "delta3",
    "scale_invariant",
)
DELTA_BASE = 1.25


class DepthAccumulator:
    """Streams depth metrics over a dataset by accumulating pixel sums in float64.

    Example:

    >>> acc = DepthAccumulator()
    >>> for pred, gt, valid in batches:
    ...     acc.update(pred, gt, valid)
    >>> acc.result()["abs_rel"]
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._count = 0
        self._sums = {
            "abs_rel": 0.0,
            "sq_rel": 0.0,
            "sq_err": 0.0,
            "sq_log": 0.0,
            "abs_log10": 0.0,
            "log_diff": 0.0,
            "delta1": 0,
            "delta2": 0,
            "delta3": 0,
        }

    def update(self, pred, gt, mask=None) -> None:
        """Adds one image (or a batch: any shape) to the running sums."""
        pred = np.asarray(pred, dtype=np.float64)
        gt = np.asarray(gt, dtype=np.float64)
        check_same_shape(pred, gt)
        with np.errstate(invalid="ignore"):
            valid = resolve_mask(mask, gt.shape) & np.isfinite(gt) & (gt > 0)
        check_finite_where(pred, valid, what="depth predictions")
        p, g = pred[valid], gt[valid]
        if np.any(p <= 0):
            raise ValueError(
                f"depth predictions must be > 0 on valid pixels (log metrics are undefined); "
                f"found {int(np.sum(p <= 0))} value(s) <= 0, min {p.min()}."
            )
        if p.size == 0:
            return
        d = np.log(p) - np.log(g)
        ratio = np.maximum(p / g, g / p)
        s = self._sums
        s["abs_rel"] += float(np.sum(np.abs(p - g) / g))
        s["sq_rel"] += float(np.sum((p - g) ** 2 / g))
        s["sq_err"] += float(np.sum((p - g) ** 2))
        s["sq_log"] += float(np.sum(d**2))
        s["abs_log10"] += float(np.sum(np.abs(np.log10(p) - np.log10(g))))
        s["log_diff"] += float(np.sum(d))
        for k in (1, 2, 3):
            s[f"delta{k}"] += int(np.sum(ratio < DELTA_BASE**k))
        self._count += int(p.size)

    def result(self) -> dict[str, float]:
        """Pooled metrics (see module docstring); NaN everywhere if no pixel was valid."""
        n = self._count
        out: dict[str, float] = {"num_pixels": n}
        if n == 0:
            out.update({name: float("nan") for name in DEPTH_METRIC_NAMES})
            return out
        s = self._sums
        mean_d = s["log_diff"] / n
        out.update(
            {
                "abs_rel": s["abs_rel"] / n,
                "sq_rel": s["sq_rel"] / n,
                "rmse": float(np.sqrt(s["sq_err"] / n)),
                "rmse_log": float(np.sqrt(s["sq_log"] / n)),
                "log10": s["abs_log10"] / n,
                "delta1": s["delta1"] / n,
                "delta2": s["delta2"] / n,
                "delta3": s["delta3"] / n,
                # Variance of d; clamp the tiny negative values cancellation can produce.
                "scale_invariant": max(s["sq_log"] / n - mean_d**2, 0.0),
            }
        )
        return out


def depth_metrics(pred, gt, mask=None) -> dict[str, float]:
    """One-shot depth metrics over ``pred``/``gt`` of any (identical) shape."""
    acc = DepthAccumulator()
    acc.update(pred, gt, mask)
    return acc.result()
