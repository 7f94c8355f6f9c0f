"""Metric depth on a real photo with ground truth that ships offline: Middlebury "Motorcycle".

``skimage.data.stereo_motorcycle()`` returns the left image (500×741), the right image and
the left ground-truth disparity (pixels; ``inf``/NaN where unknown). Its docstring gives
the calibration of these 4× down-sampled images: focal length 994.978 px, baseline
193.001 mm, and ``doffs`` (principal point x difference between the cameras) 31.086 px.
Middlebury 2014 depth is ``Z = baseline · f / (d + doffs)`` (mm), converted here to metres.

Protocol: the left image's centre square (500×500) is resized to the model's input; the
predicted depth is resized back (bilinear) to 500×500 and scored against the ground truth
at full resolution on pixels with finite disparity. Two numbers are reported:

* ``raw``: metric depth as predicted (tests metric scale transfer from synthetic data,
  which no monocular model can be expected to get right on an unseen camera);
* ``median_scaled``: the prediction multiplied by ``median(gt) / median(pred)`` over the
  scored pixels of this image (the usual scale-ambiguity correction).
"""

from __future__ import annotations

import cv2
import numpy as np

from mtsyn_tf.evaluation.features import square_resize
from mtsyn_tf.evaluation.predict import predict_numpy
from mtsyn_tf.metrics import depth_metrics

FOCAL_PX = 994.978
BASELINE_MM = 193.001
DOFFS_PX = 31.086


def disparity_to_depth(
    disparity, focal_px: float = FOCAL_PX, baseline_mm: float = BASELINE_MM,
    doffs_px: float = DOFFS_PX,
) -> np.ndarray:  # fmt: skip
    """Middlebury disparity (px) → planar depth in metres; 0 where disparity is unknown."""
    d = np.asarray(disparity, dtype=np.float64)
    ok = np.isfinite(d) & (d + doffs_px > 0)
    z = np.where(ok, baseline_mm * focal_px / np.where(ok, d + doffs_px, 1.0), 0.0) / 1000.0
    return z.astype(np.float32)


def centre_square(array) -> np.ndarray:
    a = np.asarray(array)
    h, w = a.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return a[y0 : y0 + side, x0 : x0 + side]


def motorcycle_ground_truth() -> dict:
    """``{"image": uint8 [H, W, 3], "depth": float32 [H, W] metres (0 invalid)}``."""
    from skimage import data

    left, _, disparity = data.stereo_motorcycle()
    return {"image": np.ascontiguousarray(left[..., :3]), "depth": disparity_to_depth(disparity)}


def median_scale(pred, gt, valid) -> float:
    """``median(gt) / median(pred)`` over valid pixels."""
    p, g = np.asarray(pred)[valid], np.asarray(gt)[valid]
    if p.size == 0:
        raise ValueError("No valid ground-truth pixel: median scaling is undefined.")
    return float(np.median(g) / np.median(p))


def score_depth(pred, gt) -> dict:
    """Raw and median-scaled Eigen metrics of one prediction against metric ground truth."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ. Received: {pred.shape} vs {gt.shape}")
    valid = np.isfinite(gt) & (gt > 0)
    scale = median_scale(pred, gt, valid)
    return {
        "raw": depth_metrics(pred, gt, valid),
        "median_scaled": depth_metrics(pred * scale, gt, valid),
        "median_scale_factor": scale,
        "num_pixels": int(valid.sum()),
    }


def motorcycle_depth_metrics(model, grayscale: bool = False, sample: dict | None = None) -> dict:
    """Scores ``model``'s depth on the motorcycle (or on ``sample`` with the same keys)."""
    if "depth" not in model.tasks:
        raise ValueError(f"The model predicts no depth. Received tasks: {model.tasks}")
    sample = motorcycle_ground_truth() if sample is None else sample
    image, gt = centre_square(sample["image"]), centre_square(sample["depth"])
    x = square_resize(image, model.image_size)[None]
    pred = predict_numpy(model, x, grayscale)["depth"][0, ..., 0]
    pred = cv2.resize(pred, gt.shape[::-1], interpolation=cv2.INTER_LINEAR)
    result = score_depth(pred, gt)
    gt_valid = gt[gt > 0]
    result.update(
        prediction=pred,
        ground_truth=gt,
        gt_depth_range_m=(float(gt_valid.min()), float(gt_valid.max())),
    )
    return result
