"""A 2-D scatter plot drawn with OpenCV (no plotting library needed)."""

from __future__ import annotations

import cv2
import numpy as np

from mtsyn_tf.io_utils import write_png

# RGB; colour-blind-safe pair (orange / blue).
DOMAIN_COLOURS = {"synthetic": (230, 159, 0), "real": (0, 114, 178)}


def scatter_png(points: dict, path: str, title: str = "", size: int = 400) -> dict:
    """Draws ``{label: [N, 2] points}`` with a legend; returns the pixel positions used."""
    labels = list(points)
    allpts = np.concatenate([np.asarray(points[k], dtype=np.float64) for k in labels])
    if allpts.ndim != 2 or allpts.shape[1] != 2 or not np.all(np.isfinite(allpts)):
        raise ValueError(f"points must be finite [N, 2] arrays. Received shape: {allpts.shape}")
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    margin, top = 20, 30
    canvas = np.full((size + top, size, 3), 255, np.uint8)
    corners = ((margin - 5, top + margin - 5), (size - margin + 5, top + size - margin + 5))
    cv2.rectangle(canvas, *corners, (200, 200, 200), 1)
    pixels = {}
    palette = [DOMAIN_COLOURS.get(k, (80, 80, 80)) for k in labels]
    for label, colour in zip(labels, palette):
        p = np.asarray(points[label], dtype=np.float64)
        xy = margin + (p - lo) / span * (size - 2 * margin)
        xy[:, 1] = top + size - xy[:, 1]  # image rows grow downwards
        pixels[label] = np.round(xy).astype(int)
        for x, y in pixels[label]:
            cv2.circle(canvas, (int(x), int(y)), 4, colour[::-1], -1, cv2.LINE_AA)
    x = 5
    for label, colour in zip(labels, palette):
        cv2.circle(canvas, (x + 5, 15), 5, colour[::-1], -1, cv2.LINE_AA)
        cv2.putText(canvas, label, (x + 14, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        x += 24 + 9 * len(label)
    if title:
        cv2.putText(canvas, title, (x + 10, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    write_png(path, canvas[..., ::-1])
    return {"path": path, "pixels": pixels}
