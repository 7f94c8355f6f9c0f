"""Helpers for renderer tests: tiny hand-built scenes with closed-form answers."""

import numpy as np

from mtsyn_tf.render import scene as scene_lib

GREY = scene_lib.Material("diffuse", (0.5, 0.5, 0.5))


def single_shape_scene(kind, to_world, camera, instance=7):
    """One primitive in front of a camera; everything else is empty space."""
    prim = scene_lib.Primitive(
        "target", kind, np.asarray(to_world, dtype=np.float64), GREY, instance
    )
    return scene_lib.SceneDescription(
        scene_id=0,
        seed=0,
        room_size=(1.0, 1.0, 1.0),
        primitives=(prim,),
        lights=(),
        cameras=(camera,),
    )


def assert_scenes_equal(a, b):
    """Field-by-field equality of two SceneDescriptions, numpy arrays compared exactly."""
    assert (a.scene_id, a.seed, a.room_size, a.lights, a.cameras) == (
        b.scene_id,
        b.seed,
        b.room_size,
        b.lights,
        b.cameras,
    )
    assert len(a.primitives) == len(b.primitives)
    for p, q in zip(a.primitives, b.primitives):
        assert (p.name, p.kind, p.material, p.instance, p.emission) == (
            q.name,
            q.kind,
            q.material,
            q.instance,
            q.emission,
        )
        np.testing.assert_array_equal(p.to_world, q.to_world)
        if p.material.bitmap is not None or q.material.bitmap is not None:
            np.testing.assert_array_equal(p.material.bitmap, q.material.bitmap)
