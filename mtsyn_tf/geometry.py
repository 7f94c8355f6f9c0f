"""The project's geometric conventions, in one place (SPEC §4).

Every source (our renderer, Hypersim, SceneNet RGB-D, NYUD) is converted to:

* depth: planar z-depth in metres (distance along the optical axis, not along the ray);
* normals: unit vectors in the OpenCV camera frame (x right, y down, z forward),
  oriented toward the camera (n · ray <= 0);
* contours: 1-pixel Canny boundaries of the instance-id map, uint8 {0, 1};
* valid mask: depth finite and > 0.

Intrinsics are ``(fx, fy, cx, cy)`` in pixels, with pixel centres at integer + 0.5
(so a W-wide image centred on the axis has ``cx = W / 2``).
"""

from __future__ import annotations

import cv2
import numpy as np


def intrinsics_from_fov(width: int, height: int, fov_x_degrees: float) -> np.ndarray:
    """Pinhole intrinsics ``(fx, fy, cx, cy)`` for a horizontal field of view, square pixels."""
    if not 0.0 < fov_x_degrees < 180.0:
        raise ValueError(
            f"fov_x_degrees must be in (0, 180). Received: fov_x_degrees={fov_x_degrees}"
        )
    fx = 0.5 * width / np.tan(np.deg2rad(fov_x_degrees) / 2.0)
    return np.array([fx, fx, width / 2.0, height / 2.0], dtype=np.float64)


def _check_intrinsics(intrinsics) -> np.ndarray:
    k = np.asarray(intrinsics, dtype=np.float64).reshape(-1)
    if k.shape != (4,) or not np.all(np.isfinite(k)) or k[0] <= 0 or k[1] <= 0:
        raise ValueError(
            f"intrinsics must be finite (fx, fy, cx, cy) with fx, fy > 0. Received: {intrinsics}"
        )
    return k


def pixel_rays(height: int, width: int, intrinsics) -> np.ndarray:
    """Un-normalised camera-frame ray directions ``(x, y, 1)`` through each pixel centre, [H, W, 3]."""
    fx, fy, cx, cy = _check_intrinsics(intrinsics)
    u = np.arange(width, dtype=np.float64) + 0.5
    v = np.arange(height, dtype=np.float64) + 0.5
    uu, vv = np.meshgrid(u, v)
    return np.stack([(uu - cx) / fx, (vv - cy) / fy, np.ones_like(uu)], axis=-1)


def ray_distance_to_planar_depth(ray_distance: np.ndarray, intrinsics) -> np.ndarray:
    """Converts distance along each pixel's ray to planar z-depth (same units).

    A point at distance ``r`` along the ray ``(x, y, 1)`` has ``z = r / ||(x, y, 1)||``.
    Non-finite and non-positive inputs stay invalid (returned as 0).
    """
    r = np.asarray(ray_distance, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"ray_distance must be [H, W]. Received shape: {r.shape}")
    rays = pixel_rays(r.shape[0], r.shape[1], intrinsics)
    z = r / np.linalg.norm(rays, axis=-1)
    return np.where(np.isfinite(z) & (z > 0), z, 0.0).astype(np.float32)


def valid_mask(depth: np.ndarray) -> np.ndarray:
    """Pixels with geometry: depth finite and strictly positive."""
    d = np.asarray(depth)
    return np.isfinite(d) & (d > 0)


def rotate_normals(normals: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Applies a 3×3 rotation to every normal of an [..., 3] map (``n' = R n``)."""
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3):
        raise ValueError(f"rotation must be 3x3. Received shape: {r.shape}")
    return np.asarray(normals, dtype=np.float64) @ r.T


def normalize_and_orient(
    normals: np.ndarray, intrinsics, mask: np.ndarray | None = None
) -> np.ndarray:
    """Unit-normalises camera-frame normals and flips those facing away from the camera.

    Pixels outside ``mask`` or with a zero-length normal become (0, 0, 0).
    """
    n = np.asarray(normals, dtype=np.float64)
    if n.ndim != 3 or n.shape[-1] != 3:
        raise ValueError(f"normals must be [H, W, 3]. Received shape: {n.shape}")
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    ok = np.isfinite(norm[..., 0]) & (norm[..., 0] > 1e-12)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool)
    n = np.where(ok[..., None], n / np.where(norm > 1e-12, norm, 1.0), 0.0)
    rays = pixel_rays(n.shape[0], n.shape[1], intrinsics)
    facing_away = np.sum(n * rays, axis=-1) > 0
    n = np.where(facing_away[..., None], -n, n)
    return n.astype(np.float32)


def backproject(depth: np.ndarray, intrinsics) -> np.ndarray:
    """Camera-frame 3-D points [H, W, 3] from planar depth."""
    d = np.asarray(depth, dtype=np.float64)
    return pixel_rays(d.shape[0], d.shape[1], intrinsics) * d[..., None]


def normals_from_depth(depth: np.ndarray, intrinsics) -> np.ndarray:
    """Surface normals from planar depth by central differences of back-projected points.

    Used for every source that ships depth without normals (SceneNet RGB-D, NYUD v2), so
    that all of them share one definition. A pixel is valid when it and its four
    neighbours have valid depth; elsewhere the normal is (0, 0, 0). One-sided differences
    are used at image borders.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth must be [H, W]. Received shape: {d.shape}")
    ok = valid_mask(d)
    p = backproject(np.where(ok, d, 0.0), intrinsics)
    dpdu = np.gradient(p, axis=1)
    dpdv = np.gradient(p, axis=0)
    n = np.cross(dpdu, dpdv)
    # Valid only where every depth sample used by the differences is valid.
    okp = np.pad(ok, 1, mode="edge")
    neigh = okp[1:-1, :-2] & okp[1:-1, 2:] & okp[:-2, 1:-1] & okp[2:, 1:-1] & ok
    return normalize_and_orient(n, intrinsics, mask=neigh)


def contours_from_instances(instance_ids: np.ndarray) -> np.ndarray:
    """Instance contours: Canny edges of the instance-id map, uint8 {0, 1} (SPEC §4).

    Ids are relabelled to consecutive integers and split into byte planes; Canny (with
    thresholds that fire on any id change) runs on each plane and the results are OR-ed,
    so any number of instances is supported and two distinct ids never merge.
    """
    ids = np.asarray(instance_ids)
    if ids.ndim != 2:
        raise ValueError(f"instance_ids must be [H, W]. Received shape: {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"instance_ids must be an integer map. Received dtype: {ids.dtype}")
    _, labels = np.unique(ids, return_inverse=True)
    labels = labels.reshape(ids.shape).astype(np.int64)
    edges = np.zeros(ids.shape, dtype=bool)
    plane = 0
    while plane == 0 or (labels >> (8 * plane)).any():
        byte = ((labels >> (8 * plane)) & 0xFF).astype(np.uint8)
        edges |= cv2.Canny(byte, 1, 1, L2gradient=True) > 0
        plane += 1
    return edges.astype(np.uint8)
