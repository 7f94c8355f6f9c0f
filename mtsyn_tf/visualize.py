"""Colours for depth, normals and contours: the one place every picture gets them from.

Dataset sample grids, training image summaries, evaluation sheets, exported-model
predictions and the demo report all colour through these functions, so a colour means the
same thing in every figure:

* depth: inverse depth through OpenCV's MAGMA colormap, near = bright, far = dark. The
  scale is the image's own 2nd–98th percentile of valid inverse depth unless a
  ``depth_range=(near, far)`` in metres is given (to compare two images, e.g. prediction
  and ground truth); invalid pixels (non-finite, <= 0 or masked out) are black. Inverse
  depth spends the colours where a camera resolves detail (close by).
* normals: ``(n + 1) / 2`` as RGB in the camera frame (x right = red, y down = green,
  z forward = blue, so a wall facing the camera is violet-blue); zero (unknown) normals
  are black.
* contours: probability → brightness, edges white on black (a {0, 1} map shows as pure
  black and white).

Inputs may be numpy arrays or tensors (anything with ``.numpy()``); single-channel maps may
be [H, W] or [H, W, 1]. Every function returns uint8 RGB [H, W, 3] (normals: [..., 3]).
"""

from __future__ import annotations

import cv2
import numpy as np

# Percentiles of valid inverse depth that span the colormap by default: robust to a few
# stray pixels (a sky hole, a sensor spike) that would otherwise wash out the image.
DEPTH_PERCENTILES = (2.0, 98.0)


def _to_numpy(value) -> np.ndarray:
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _single_channel(value, name: str) -> np.ndarray:
    """[H, W] or [H, W, 1] array or tensor → float64 [H, W]."""
    a = _to_numpy(value)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"Expected {name} of shape [H, W] or [H, W, 1]. Received: shape {a.shape}")
    return a.astype(np.float64)


def to_uint8_rgb(image) -> np.ndarray:
    """uint8, or float in [0, 1] (clipped, rounded); [H, W], [H, W, 1] or [H, W, 3] → uint8 RGB."""
    a = _to_numpy(image)
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"Expected an [H, W] or [H, W, 3] image. Received: shape {a.shape}")
    return a


def _valid_depth(depth: np.ndarray, valid) -> np.ndarray:
    ok = np.isfinite(depth) & (depth > 0)
    if valid is not None:
        mask = _single_channel(valid, "valid")
        if mask.shape != depth.shape:
            raise ValueError(
                f"valid must match depth's shape {depth.shape}. Received: shape {mask.shape}"
            )
        ok &= mask.astype(bool)
    return ok


def inverse_depth_range(depth, valid=None) -> tuple[float, float] | None:
    """``(near, far)`` metres spanning the 2nd–98th percentile of valid inverse depth.

    The scale ``colorize_depth`` uses by default; pass it as ``depth_range`` to colour a
    prediction on its ground truth's scale. ``None`` when no pixel is valid.
    """
    d = _single_channel(depth, "depth")
    ok = _valid_depth(d, valid)
    if not ok.any():
        return None
    lo, hi = np.percentile(1.0 / d[ok], DEPTH_PERCENTILES)
    return float(1.0 / hi), float(1.0 / lo)


def colorize_depth(depth, valid=None, depth_range=None) -> np.ndarray:
    """Depth in metres [H, W] (or [H, W, 1]) → uint8 RGB, near bright, invalid black.

    Args:
        depth: metric depth; non-finite or <= 0 pixels are invalid.
        valid: optional mask of the same shape (bool or {0, 1}); False pixels are invalid.
        depth_range: ``(near, far)`` metres mapped to the ends of the colormap; by default
            ``inverse_depth_range(depth, valid)``.
    """
    d = _single_channel(depth, "depth")
    ok = _valid_depth(d, valid)
    if depth_range is None:
        depth_range = inverse_depth_range(d, ok)
        if depth_range is None:
            return np.zeros(d.shape + (3,), np.uint8)
    near, far = (float(x) for x in depth_range)
    if not 0 < near <= far:
        raise ValueError(
            f"depth_range must be (near, far) with 0 < near <= far. Received: {depth_range}"
        )
    lo, hi = 1.0 / far, 1.0 / near
    inverse = np.where(ok, 1.0 / np.where(ok, d, 1.0), 0.0)
    scaled = np.clip((inverse - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    bgr = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_MAGMA)
    return np.where(ok[..., None], bgr[..., ::-1], 0).astype(np.uint8)


def colorize_normals(normals) -> np.ndarray:
    """Unit normals [..., 3] → uint8 RGB ``(n + 1) / 2`` (truncated); zero normals black.

    Works on a batch [B, H, W, 3] as well as on one image.
    """
    n = _to_numpy(normals).astype(np.float64)
    if n.ndim < 1 or n.shape[-1] != 3:
        raise ValueError(f"Expected normals of shape [..., 3]. Received: shape {n.shape}")
    rgb = np.clip((n + 1.0) * 127.5, 0, 255)
    unknown = ~(np.linalg.norm(n, axis=-1, keepdims=True) >= 1e-6)  # also NaN normals
    return np.where(unknown, 0, rgb).astype(np.uint8)


def colorize_contour(contour) -> np.ndarray:
    """Contour probability [H, W] (or [H, W, 1]) → uint8 grey RGB, edges white on black.

    Brightness is ``round(255 * p)`` with ``p`` clipped to [0, 1]; non-finite values are 0.
    """
    p = _single_channel(contour, "contour")
    p = np.clip(np.where(np.isfinite(p), p, 0.0), 0.0, 1.0)
    grey = np.round(p * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
