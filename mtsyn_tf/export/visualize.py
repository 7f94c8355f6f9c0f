"""The side-by-side sheet ``scripts/predict.py`` writes next to each photo's predictions.

Colours come from ``mtsyn_tf.visualize`` (MAGMA inverse depth, ``(n + 1) / 2`` normals,
contours white on black), the same as in every other figure of the package.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.visualize import (
    colorize_contour,
    colorize_depth,
    colorize_normals,
    to_uint8_rgb,
)

# Task → colouring of one physical prediction, in the sheet's column order.
COLORIZERS = {"depth": colorize_depth, "normals": colorize_normals, "contour": colorize_contour}
_GAP = 4


def prediction_sheet(image, outputs: dict) -> np.ndarray:
    """Side by side: input | depth | normals | contour (those present), uint8 RGB.

    Panels keep their size and are separated by 4 white pixels.
    """
    panels = [to_uint8_rgb(image)]
    panels += [fn(outputs[key]) for key, fn in COLORIZERS.items() if key in outputs]
    gap = np.full((panels[0].shape[0], _GAP, 3), 255, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return np.concatenate(row, axis=1)
