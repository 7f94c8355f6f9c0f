"""Tiny synthetic samples that satisfy the CONTRACTS.md sample schema."""

import numpy as np
import pytest

from mtsyn_tf import geometry


def make_synthetic_sample(height=16, width=24, seed=0, image_id="img0"):
    """A tilted plane seen by a pinhole camera, with two instances and a void corner."""
    rng = np.random.default_rng(seed)
    intrinsics = geometry.intrinsics_from_fov(width, height, 60.0).astype(np.float32)
    rays = geometry.pixel_rays(height, width, intrinsics)
    normal = np.array([0.2, -0.1, -1.0]) / np.linalg.norm([0.2, -0.1, -1.0])
    depth = (-2.0 / (rays @ normal)).astype(np.float32)  # plane n.X = 2
    depth[: height // 4, : width // 4] = 0.0  # void (sky) corner
    valid = depth > 0
    normals = np.where(valid[..., None], normal, 0.0).astype(np.float32)
    instance = np.zeros((height, width), np.int32)
    instance[:, width // 2 :] = 7
    instance[height // 2 :, : width // 3] = -1
    return {
        "image": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "depth": depth,
        "normals": normals,
        "instance": instance,
        "contour": geometry.contours_from_instances(instance),
        "valid": valid,
        "intrinsics": intrinsics,
        "scene_id": f"scene{seed % 2}",
        "image_id": image_id,
        "source": "fixture",
    }


@pytest.fixture
def synthetic_sample():
    return make_synthetic_sample()


@pytest.fixture
def make_sample():
    """The factory itself, for tests that need several distinct samples."""
    return make_synthetic_sample
