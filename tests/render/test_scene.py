"""Procedural scene descriptions: determinism, validity of placement, camera sanity."""

import numpy as np
import pytest
from render_testlib import assert_scenes_equal

from mtsyn_tf.render import scene as scene_lib


def test_same_id_same_scene_bit_for_bit():
    assert_scenes_equal(
        scene_lib.make_scene(11, seed=3, num_views=2), scene_lib.make_scene(11, seed=3, num_views=2)
    )


@pytest.mark.parametrize("other", [(12, 3), (11, 4)])
def test_different_id_or_seed_differs(other):
    a = scene_lib.make_scene(11, seed=3)
    b = scene_lib.make_scene(other[0], seed=other[1])
    assert a.room_size != b.room_size
    assert a.cameras != b.cameras


@pytest.mark.parametrize("scene_id", range(12))
def test_scene_is_physically_plausible(scene_id):
    desc = scene_lib.make_scene(scene_id, seed=0)
    width, height, depth = desc.room_size
    assert 3.0 <= width <= 7.0 and 3.0 <= depth <= 7.0 and 2.4 <= height <= 3.2
    objects = {p.instance for p in desc.primitives if p.name.startswith("obj")}
    assert 3 <= len(objects) <= 8
    assert 1 <= sum(p.emission is not None for p in desc.primitives) <= 2
    for inst in objects:
        parts = [p for p in desc.primitives if p.instance == inst]
        lows, highs = [], []
        for p in parts:
            corners = _unit_corners(p.kind) @ p.to_world[:3, :3].T + p.to_world[:3, 3]
            lows.append(corners.min(0))
            highs.append(corners.max(0))
        low, high = np.min(lows, 0), np.max(highs, 0)
        # Rests on the floor (no floating, no sinking) and stays inside the room.
        assert abs(low[1]) < 1e-9, (scene_id, [p.name for p in parts], low)
        assert low[0] > 0 and low[2] > 0 and high[0] < width and high[2] < depth
        assert high[1] < height
    cam = desc.cameras[0]
    assert 50.0 <= cam.fov_x <= 75.0
    assert 0 < cam.origin[0] < width and 0 < cam.origin[1] < height and 0 < cam.origin[2] < depth


def _unit_corners(kind):
    """Corner points bounding each unit primitive in its local frame."""
    if kind == "cylinder":
        g = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (0, 1)], float)
    elif kind == "disk":
        g = np.array([[x, y, 0] for x in (-1, 1) for y in (-1, 1)], float)
    elif kind in ("cube", "sphere"):
        g = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    else:
        g = np.array([[x, y, 0] for x in (-1, 1) for y in (-1, 1)], float)
    return g


def test_opencv_rotation_is_proper_and_looks_forward():
    cam = scene_lib.Camera(origin=(1.0, 1.5, 1.0), target=(3.0, 0.5, 4.0), fov_x=60.0)
    r = scene_lib.world_to_opencv_rotation(cam)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    forward = np.subtract(cam.target, cam.origin)
    np.testing.assert_allclose(r @ (forward / np.linalg.norm(forward)), [0.0, 0.0, 1.0], atol=1e-12)
    # World up must point up in the image: negative OpenCV y.
    assert (r @ np.array([0.0, 1.0, 0.0]))[1] < 0


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_scene_id_raises(bad):
    with pytest.raises(ValueError, match="scene_id"):
        scene_lib.make_scene(bad)
