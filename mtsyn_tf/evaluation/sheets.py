"""Contact sheets: tiles of RGB images with captions on a white sheet.

OpenCV draws everything (no matplotlib dependency); ``mtsyn_tf.io_utils.write_png`` writes
the result atomically.
"""

from __future__ import annotations

import cv2
import numpy as np

from mtsyn_tf.visualize import to_uint8_rgb

BACKGROUND = 255
GAP = 4


def fit_tile(image, size: int) -> np.ndarray:
    """Resizes a tile to ``size``×``size`` (nearest for upscaling, so filters stay crisp)."""
    a = to_uint8_rgb(image)
    interp = cv2.INTER_NEAREST if max(a.shape[:2]) < size else cv2.INTER_AREA
    return cv2.resize(a, (size, size), interpolation=interp)


def caption(text: str, width: int, height: int = 18) -> np.ndarray:
    """A white strip of ``width`` pixels with black ``text`` (clipped to fit)."""
    strip = np.full((height, width, 3), BACKGROUND, np.uint8)
    scale = 0.4
    while text and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width - 4:
        text = text[:-1]
    cv2.putText(strip, text, (2, height - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                cv2.LINE_AA)  # fmt: skip
    return strip


def grid_sheet(rows, tile: int = 128, column_titles=None, row_titles=None) -> np.ndarray:
    """Lays out ``rows`` (lists of images, ``None`` = empty cell) on a white sheet.

    ``column_titles`` go above the first row; ``row_titles`` above each row.
    """
    rows = [list(r) for r in rows]
    if not rows or not any(rows):
        raise ValueError("A sheet needs at least one image. Received: no rows")
    ncols = max(len(r) for r in rows)
    width = ncols * tile + (ncols + 1) * GAP
    blocks = []
    if column_titles:
        strip = np.full((18, width, 3), BACKGROUND, np.uint8)
        for j, title in enumerate(column_titles[:ncols]):
            x0 = GAP + j * (tile + GAP)
            strip[:, x0 : x0 + tile] = caption(str(title), tile)
        blocks.append(strip)
    for i, row in enumerate(rows):
        if row_titles:
            blocks.append(caption(str(row_titles[i]), width))
        band = np.full((tile + 2 * GAP, width, 3), BACKGROUND, np.uint8)
        for j, image in enumerate(row):
            if image is None:
                continue
            x0 = GAP + j * (tile + GAP)
            band[GAP : GAP + tile, x0 : x0 + tile] = fit_tile(image, tile)
        blocks.append(band)
    return np.concatenate(blocks, axis=0)
