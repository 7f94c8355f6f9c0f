"""Renders of a plane and a sphere checked against closed-form depth and normals."""

import numpy as np
import pytest
from render_testlib import single_shape_scene

from mtsyn_tf import geometry
from mtsyn_tf.render import mitsuba_backend
from mtsyn_tf.render import scene as scene_lib

# Camera at the origin looking down world +z with world +y up. Mitsuba's camera frame is
# x-left / y-up, so world +x appears on the image's LEFT and world +y at the TOP: the
# OpenCV frame (x right, y down, z forward) is diag(-1, -1, 1) of the world here.
AXIS_CAMERA = scene_lib.Camera(origin=(0.0, 0.0, 0.0), target=(0.0, 0.0, 1.0), fov_x=60.0)
WORLD_TO_CV = np.diag([-1.0, -1.0, 1.0])


def _render(desc, size, variant):
    (sample,) = mitsuba_backend.render_scene(desc, resolution=size, variant=variant, with_rgb=False)
    return sample


@pytest.mark.parametrize("axis, angle", [("y", 0.0), ("y", 35.0), ("x", -25.0)])
def test_tilted_plane_depth_and_normals(variant, axis, angle):
    d, size = 2.5, 40
    to_world = scene_lib.chain(
        scene_lib.translate((0.0, 0.0, d)), scene_lib.rotate(axis, angle), scene_lib.scale(50.0)
    )
    sample = _render(single_shape_scene("rectangle", to_world, AXIS_CAMERA), size, variant)

    n_world = to_world[:3, :3] @ np.array([0.0, 0.0, 1.0])
    n_cv = WORLD_TO_CV @ (n_world / np.linalg.norm(n_world))
    k = geometry.intrinsics_from_fov(size, size, 60.0)
    rays = geometry.pixel_rays(size, size, k)
    # Plane n . X = n . p0 with X = z * ray:  z = (n . p0) / (n . ray).
    expected_depth = (n_cv @ np.array([0.0, 0.0, d])) / (rays @ n_cv)
    expected_normal = -np.sign(n_cv[2]) * n_cv  # toward the camera: n . ray < 0 on the axis

    assert sample["valid"].all()
    np.testing.assert_allclose(sample["depth"], expected_depth, atol=1e-3)
    np.testing.assert_allclose(
        sample["normals"], np.broadcast_to(expected_normal, (size, size, 3)), atol=1e-4
    )
    np.testing.assert_array_equal(sample["instance"], 7)
    np.testing.assert_array_equal(sample["contour"], 0)
    np.testing.assert_allclose(sample["intrinsics"], k, rtol=1e-6)


def test_sphere_depth_normals_and_handedness(variant):
    size, r, dist, offset = 33, 0.5, 3.0, 0.4
    center_world = np.array([offset, 0.0, dist])  # world +x: must land on the image's left
    to_world = scene_lib.chain(scene_lib.translate(center_world), scene_lib.scale(r))
    sample = _render(single_shape_scene("sphere", to_world, AXIS_CAMERA), size, variant)

    k = geometry.intrinsics_from_fov(size, size, 60.0)
    rays = geometry.pixel_rays(size, size, k)
    c = WORLD_TO_CV @ center_world
    # Ray-sphere intersection with X = z * ray: |z ray - c|^2 = r^2, nearest root.
    a = np.sum(rays * rays, -1)
    b = -2.0 * rays @ c
    disc = b * b - 4.0 * a * (c @ c - r * r)
    hit = disc > 0
    z = np.where(hit, (-b - np.sqrt(np.where(hit, disc, 0.0))) / (2.0 * a), 0.0)
    normals = (z[..., None] * rays - c) / r

    # Grazing pixels are excluded from the coverage comparison only.
    clear = np.abs(disc) > 1e-2 * np.max(disc)
    np.testing.assert_array_equal(sample["valid"][clear], hit[clear])
    both = sample["valid"] & hit
    np.testing.assert_allclose(sample["depth"][both], z[both], atol=1e-3)
    np.testing.assert_allclose(sample["normals"][both], normals[both], atol=2e-3)
    assert np.all(sample["depth"][~sample["valid"]] == 0)
    assert np.all(sample["normals"][~sample["valid"]] == 0)
    assert np.all(sample["instance"][~sample["valid"]] == -1)
    assert sample["contour"].sum() > 0
    # Handedness: the sphere sits left of centre, the centre row's depth is the closest
    # point where the ray from the camera to the sphere centre meets its surface.
    cols = np.nonzero(sample["valid"][size // 2])[0]
    assert cols.mean() < size / 2
    centre_col = int(round(k[2] + k[0] * c[0] / c[2] - 0.5))
    expected = z[size // 2, centre_col]
    assert abs(sample["depth"][size // 2, centre_col] - expected) < 1e-3


def test_oblique_camera_normals_agree_with_depth(variant):
    """Any camera pose: normals from the world-to-camera rotation match normals_from_depth."""
    camera = scene_lib.Camera(origin=(1.0, 1.6, -0.5), target=(0.2, 0.3, 2.0), fov_x=70.0)
    to_world = scene_lib.chain(
        scene_lib.translate((0.0, 0.0, 2.5)), scene_lib.rotate("x", 20.0), scene_lib.scale(40.0)
    )
    sample = _render(single_shape_scene("rectangle", to_world, camera), 32, variant)
    assert sample["valid"].all()
    from_depth = geometry.normals_from_depth(sample["depth"], sample["intrinsics"])
    np.testing.assert_allclose(sample["normals"], from_depth, atol=5e-3)
