"""Learning-curve plots drawn with OpenCV (no plotting dependency)."""

from __future__ import annotations

import csv
import math

import cv2
import numpy as np

_COLOURS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
]


def read_history(path: str) -> dict[str, list[float]]:
    """Columns of a Keras CSVLogger file, keeping the last row written for each epoch."""
    rows = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    columns = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
    return columns


def plot_curves(
    series: dict[str, list[float]], title: str, width: int = 640, height: int = 360
) -> np.ndarray:
    """Line plot of several series over epochs; each series min-max normalised in its own
    legend entry (losses live on different scales), with its first and last value shown."""
    # The legend goes below the axes, so it never hides a curve.
    image = np.full((height + 18 * len(series) + 10, width, 3), 255, np.uint8)
    left, right, top, bottom = 50, width - 20, 40, height - 40
    cv2.rectangle(image, (left, top), (right, bottom), (0, 0, 0), 1)
    cv2.putText(image, title, (left, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        image, "epoch", (right - 50, bottom + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1
    )
    cv2.putText(image, "scaled", (5, top + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    for i, (name, values) in enumerate(series.items()):
        values = [v for v in values if math.isfinite(v)]
        if not values:
            continue
        colour = _COLOURS[i % len(_COLOURS)][::-1]  # RGB → BGR for OpenCV
        lo, hi = min(values), max(values)
        n = len(values)
        points = [
            (
                int(left + (right - left) * (j / max(n - 1, 1))),
                int(bottom - (bottom - top) * ((v - lo) / (hi - lo) if hi > lo else 0.5)),
            )
            for j, v in enumerate(values)
        ]
        cv2.polylines(image, [np.array(points, np.int32)], False, colour, 2, cv2.LINE_AA)
        label = f"{name}: {values[0]:.3g} -> {values[-1]:.3g}"
        cv2.putText(
            image,
            label,
            (left, height + 12 + 18 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            colour,
            1,
            cv2.LINE_AA,
        )
    return image[..., ::-1].copy()  # BGR → RGB
