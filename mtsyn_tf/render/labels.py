"""Turns raw renderer outputs into the project's sample conventions (pure numpy).

Kept apart from the Mitsuba backend so the conversions are testable without rendering
and reusable by any other backend that produces ray distances and world normals.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf import geometry

SOURCE = "mtsyn_render"
# Rec. 709 / sRGB luminance weights for linear RGB.
_LUMA = np.array([0.2126, 0.7152, 0.0722])


def planar_depth_from_mitsuba(depth_aov: np.ndarray, intrinsics, near_clip: float) -> np.ndarray:
    """Planar z-depth from Mitsuba's ``depth`` AOV.

    Mitsuba's perspective camera starts each ray on the near-clip plane, at distance
    ``near_clip * ||(x, y, 1)||`` from the centre of projection, and the AOV reports the
    hit distance ``t`` from there. So the ray distance is ``t + near_clip * ||ray||`` and
    the planar depth is ``planar(t) + near_clip``. Misses (t = 0) stay 0.
    """
    t = np.asarray(depth_aov, dtype=np.float64)
    z = geometry.ray_distance_to_planar_depth(t, intrinsics).astype(np.float64)
    return np.where(z > 0, z + near_clip, 0.0).astype(np.float32)


def camera_normals(
    world_normals: np.ndarray, world_to_camera: np.ndarray, intrinsics, valid
) -> np.ndarray:
    """World-frame normals → unit OpenCV camera-frame normals facing the camera."""
    n = geometry.rotate_normals(world_normals, world_to_camera)
    return geometry.normalize_and_orient(n, intrinsics, mask=valid)


def instances_from_shape_index(
    shape_index: np.ndarray, lut: dict[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Maps the ``shape_index`` AOV to instance ids via ``lut`` (AOV value → instance id).

    Returns ``(instance int32, hit bool)``; pixels whose value is not a known shape (a
    miss, value 0) get instance -1 and ``hit = False``. The AOV must come from a render
    at 1 spp with a box filter, so every value is exactly one shape's index; anything
    else (a blended, fractional value) is a bug and raises.
    """
    values = np.asarray(shape_index, dtype=np.float64)
    rounded = np.rint(values)
    if not np.array_equal(rounded, values):
        raise ValueError(
            "shape_index AOV has fractional values; it must be rendered at 1 spp with a box "
            f"filter. Received values such as {values[rounded != values][:3]}"
        )
    keys = rounded.astype(np.int64)
    table = np.full(max(max(lut, default=0), int(keys.max(initial=0))) + 1, -1, dtype=np.int64)
    for k, v in lut.items():
        table[k] = v
    instance = table[np.clip(keys, 0, None)]
    instance[keys < 0] = -1
    return instance.astype(np.int32), instance >= 0


def exposure(linear_rgb: np.ndarray, percentile: float = 97.0, white: float = 0.9) -> float:
    """Scale that maps the ``percentile``-th luminance of ``linear_rgb`` to ``white``."""
    rgb = np.clip(np.nan_to_num(np.asarray(linear_rgb, np.float64), nan=0.0, posinf=0.0), 0, None)
    return white / max(float(np.percentile(rgb @ _LUMA, percentile)), 1e-8)


def tonemap(
    linear_rgb: np.ndarray, percentile: float = 97.0, white: float = 0.9, scale=None
) -> np.ndarray:
    """Linear radiance → uint8 sRGB with automatic exposure.

    Lights have random power, so a fixed exposure would give black or blown-out frames;
    scaling the ``percentile``-th luminance to ``white`` keeps images in a photographic
    range while visible light panels (above the percentile) saturate, as in a photo.
    ``scale`` overrides the automatic exposure (to show two renders of one view alike).
    """
    rgb = np.nan_to_num(np.asarray(linear_rgb, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    rgb = np.clip(rgb, 0.0, None)
    if scale is None:
        scale = exposure(rgb, percentile, white)
    x = np.clip(rgb * scale, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


def assemble_sample(
    linear_rgb,
    depth_aov,
    normal_aov,
    shape_index_aov,
    lut,
    world_to_camera,
    intrinsics,
    near_clip,
    scene_id,
    image_id,
) -> dict:
    """Builds one sample dict exactly as docs/CONTRACTS.md specifies."""
    instance, hit = instances_from_shape_index(shape_index_aov, lut)
    depth = planar_depth_from_mitsuba(depth_aov, intrinsics, near_clip)
    valid = geometry.valid_mask(depth) & hit
    depth = np.where(valid, depth, 0.0).astype(np.float32)
    return {
        "image": tonemap(linear_rgb),
        "depth": depth,
        "normals": camera_normals(normal_aov, world_to_camera, intrinsics, valid),
        "instance": instance,
        "contour": geometry.contours_from_instances(instance),
        "valid": valid,
        "intrinsics": np.asarray(intrinsics, dtype=np.float32),
        "scene_id": str(scene_id),
        "image_id": str(image_id),
        "source": SOURCE,
    }
