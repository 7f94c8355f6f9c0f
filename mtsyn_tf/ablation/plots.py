"""Grouped bar charts with ±std error bars, drawn with OpenCV (matplotlib is not installed)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from mtsyn_tf.demo.plots import _COLOURS


def bar_chart(
    groups: list[str], series: dict, title: str, width: int = 720, height: int = 340
) -> np.ndarray:
    """RGB image: for each group (e.g. a tap) one bar per series (e.g. an experiment).

    Args:
        series: ``{name: [(mean, std) or None per group]}``; None leaves a gap.
    """
    values = [m for bars in series.values() for b in bars if b for m in (b[0] - b[1], b[0] + b[1])]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        raise ValueError(f"Nothing to plot for {title!r}. Received: {series}")
    lo, hi = min(0.0, min(values)), max(values)
    hi = hi if hi > lo else lo + 1.0
    image = np.full((height + 20 * len(series) + 10, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, width - 20, 40, height - 40
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (left, 25), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)

    def y_of(v):
        return int(bottom - (bottom - top) * (v - lo) / (hi - lo))

    cv2.line(image, (left, y_of(0.0)), (right, y_of(0.0)), (0, 0, 0), 1)
    cv2.line(image, (left, top), (left, bottom), (0, 0, 0), 1)
    for v in (lo, hi):
        cv2.putText(image, f"{v:.3g}", (5, y_of(v) + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    slot = (right - left) / max(len(groups), 1)
    bar = slot * 0.8 / max(len(series), 1)
    for g, group in enumerate(groups):
        x0 = left + g * slot + slot * 0.1
        cv2.putText(image, group, (int(x0), bottom + 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for s, bars in enumerate(series.values()):
            if g >= len(bars) or not bars[g] or not math.isfinite(bars[g][0]):
                continue
            mean, std = bars[g]
            colour = _COLOURS[s % len(_COLOURS)][::-1]
            xa, xb = int(x0 + s * bar), int(x0 + (s + 1) * bar) - 2
            cv2.rectangle(image, (xa, y_of(mean)), (xb, y_of(0.0)), colour, -1)
            xm = (xa + xb) // 2
            cv2.line(image, (xm, y_of(mean - std)), (xm, y_of(mean + std)), (0, 0, 0), 1)
    for s, name in enumerate(series):
        colour = _COLOURS[s % len(_COLOURS)][::-1]
        y = height + 12 + 20 * s
        cv2.rectangle(image, (left, y - 10), (left + 14, y + 2), colour, -1)
        cv2.putText(image, name, (left + 20, y), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image[..., ::-1].copy()  # BGR → RGB
