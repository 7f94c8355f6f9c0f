"""Input checks shared by the numpy reference metrics.

Every metric in this package follows one policy, so that a number it returns can be
trusted:

* arrays that should line up but do not raise ``ValueError`` naming both shapes;
* non-finite predictions on pixels that are scored raise ``ValueError`` (a NaN would
  otherwise poison a dataset-wide sum without saying where it came from);
* pixels without ground truth are excluded, never guessed;
* a metric over zero scored pixels is NaN (``float("nan")``), never 0 and never an
  exception: an all-invalid image contributes nothing to a dataset and a dataset with no
  valid pixel at all reports NaN so that it cannot be mistaken for a perfect or a
  worthless score.
"""

from __future__ import annotations

import numpy as np


def check_same_shape(pred: np.ndarray, gt: np.ndarray) -> None:
    """Raises if ``pred`` and ``gt`` do not have identical shapes."""
    if pred.shape != gt.shape:
        raise ValueError(
            "predictions and ground truth of different shapes: "
            f"pred {tuple(pred.shape)}, gt {tuple(gt.shape)}"
        )


def resolve_mask(mask, expected_shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Returns ``mask`` as a bool array of ``expected_shape`` (all True when ``None``).

    Non-bool masks are accepted when they only hold 0/1 (e.g. the float {0, 1} masks of
    the training pipeline); anything else is ambiguous and raises.
    """
    if mask is None:
        return np.ones(expected_shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != tuple(expected_shape):
        raise ValueError(
            f"{name} must have the shape of the ground truth {tuple(expected_shape)}. "
            f"Received: {name}.shape={mask.shape}"
        )
    if mask.dtype != bool:
        values = np.unique(mask)
        if not np.all(np.isin(values, (0, 1))):
            raise ValueError(
                f"{name} must be boolean or hold only 0/1. Received values: {values[:8]}"
            )
        mask = mask.astype(bool)
    return mask


def check_finite_where(pred: np.ndarray, where: np.ndarray, what: str = "predictions") -> None:
    """Raises if ``pred`` holds NaN/inf on any pixel selected by ``where``."""
    scored = pred[where]
    bad = ~np.isfinite(scored)
    if np.any(bad):
        raise ValueError(
            f"{what} contain {int(bad.sum())} non-finite value(s) on valid pixels "
            f"(e.g. {scored[bad][:4]}); metrics would be NaN."
        )
