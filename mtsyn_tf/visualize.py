"""Colourisation of depth, normals and contours for pictures people look at."""

from __future__ import annotations

import cv2
import numpy as np


def colorize_depth(
    depth: np.ndarray, valid: np.ndarray | None = None, depth_range=None
) -> np.ndarray:
    """[H, W] metres → uint8 RGB [H, W, 3] (inverse depth through a perceptual colormap).

    Near is bright, far is dark; invalid pixels are black. ``depth_range=(near, far)`` in
    metres fixes the scale (to compare images); by default it is the image's own 2nd–98th
    percentile of valid inverse depth.
    """
    d = np.asarray(depth, dtype=np.float64)
    ok = np.isfinite(d) & (d > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    inv = np.where(ok, 1.0 / np.where(ok, d, 1.0), 0.0)
    if depth_range is not None:
        lo, hi = 1.0 / depth_range[1], 1.0 / depth_range[0]
    elif ok.any():
        lo, hi = np.percentile(inv[ok], 2), np.percentile(inv[ok], 98)
    else:
        lo, hi = 0.0, 1.0
    scaled = np.clip((inv - lo) / max(hi - lo, 1e-12), 0, 1)
    rgb = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)[..., ::-1]
    return np.where(ok[..., None], rgb, 0).astype(np.uint8)


def colorize_normals(normals: np.ndarray) -> np.ndarray:
    """[..., 3] unit normals → uint8 RGB as (n + 1) / 2; zero (invalid) normals are black."""
    n = np.asarray(normals, dtype=np.float64)
    rgb = np.clip((n + 1.0) * 127.5, 0, 255)
    invalid = np.linalg.norm(n, axis=-1, keepdims=True) < 1e-6
    return np.where(invalid, 0, rgb).astype(np.uint8)


def colorize_contour(contour: np.ndarray) -> np.ndarray:
    """[H, W] probability or {0, 1} → uint8 RGB, edges dark on white (as in the paper's figures)."""
    c = np.clip(np.asarray(contour, dtype=np.float64), 0, 1)
    gray = ((1.0 - c) * 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)
