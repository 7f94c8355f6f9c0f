"""Colourised PNG views of the physical predictions (depth, normals, contour)."""

from __future__ import annotations

import numpy as np

# Turbo colormap, polynomial fit by Anton Mikhailov (Google, Apache-2.0), as 6th-order
# coefficients per channel; avoids a matplotlib dependency.
_TURBO = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)


def turbo(values: np.ndarray) -> np.ndarray:
    """Maps values in [0, 1] to uint8 RGB with the Turbo colormap."""
    t = np.clip(np.asarray(values, np.float64), 0.0, 1.0)[..., None]
    powers = np.concatenate([t**i for i in range(6)], axis=-1)
    return (np.clip(powers @ _TURBO.T, 0.0, 1.0) * 255).round().astype(np.uint8)


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """Inverse depth, normalised by the image's 2nd–98th percentiles; near = warm colours."""
    depth = np.asarray(depth, np.float64).squeeze(-1) if depth.ndim == 3 else np.asarray(depth)
    inverse = 1.0 / np.maximum(depth, 1e-6)
    lo, hi = np.percentile(inverse, [2, 98])
    return turbo((inverse - lo) / max(hi - lo, 1e-12))


def colorize_normals(normals: np.ndarray) -> np.ndarray:
    """Camera-frame unit normals (x right, y down, z forward) → RGB = (n + 1) / 2."""
    return ((np.clip(normals, -1, 1) + 1.0) * 127.5).round().astype(np.uint8)


def colorize_contour(contour: np.ndarray) -> np.ndarray:
    """Contour probability → grey RGB, black where a contour is certain."""
    p = np.asarray(contour).squeeze(-1) if contour.ndim == 3 else np.asarray(contour)
    grey = ((1.0 - np.clip(p, 0, 1)) * 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def prediction_sheet(image: np.ndarray, outputs: dict) -> np.ndarray:
    """Side by side: input | depth | normals | contour (those present), uint8 RGB."""
    panels = [(np.clip(image, 0, 1) * 255).round().astype(np.uint8)]
    for key, fn in (
        ("depth", colorize_depth),
        ("normals", colorize_normals),
        ("contour", colorize_contour),
    ):
        if key in outputs:
            panels.append(fn(outputs[key]))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return np.concatenate(row, axis=1)
