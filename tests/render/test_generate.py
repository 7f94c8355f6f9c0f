"""Parallel generation into shards: contents equal in-process renders, splits are disjoint."""

import time

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.data import schema, shards
from mtsyn_tf.render import generate

TINY = generate.RenderConfig(resolution=20, spp=2, max_depth=2, seed=1, variant="scalar_rgb")
ARRAYS = ("image", "depth", "normals", "instance", "contour", "valid", "intrinsics")


def _read_split(data_dir, split):
    records = []
    for path in shards.list_shards(data_dir, split):
        records += [schema.decode_synthetic_numpy(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    return {r["image_id"]: r for r in records}


def test_split_ids_are_disjoint_and_stable():
    a = generate.split_scene_ids(5, 2)
    b = generate.split_scene_ids(50, 2)
    assert list(a["train"]) == [0, 1, 2, 3, 4]
    assert a["test"] == b["test"]
    assert not set(b["train"]) & set(b["test"])
    assert "test" not in generate.split_scene_ids(3, 0)


def test_generate_with_two_workers_matches_in_process_render(tmp_path):
    started = time.perf_counter()
    summary = generate.generate_dataset(
        str(tmp_path),
        num_scenes=3,
        num_test_scenes=1,
        config=TINY,
        workers=2,
        images_per_shard=2,
        keep_samples=2,
    )
    assert summary["splits"]["train"]["images"] == 3 and summary["splits"]["test"]["images"] == 1
    elapsed = time.perf_counter() - started
    assert summary["images"] == 4 and len(summary["samples"]) == 2
    # The rate is the rendered images over the run's own wall time (within the test's).
    assert 0 < summary["seconds"] <= elapsed
    assert summary["images_per_s"] == pytest.approx(4 / summary["seconds"])
    assert shards.verify_shards(str(tmp_path), "train") == 3
    assert len(shards.list_shards(str(tmp_path), "train")) == 2
    train = _read_split(str(tmp_path), "train")
    test = _read_split(str(tmp_path), "test")
    assert not set(train) & set(test)
    # Worker processes reproduce the parent's render bit for bit.
    (expected,) = generate.render_one(generate.TEST_SCENE_ID_OFFSET, TINY)
    got = test[expected["image_id"]]
    for key in ARRAYS:
        np.testing.assert_array_equal(
            np.asarray(got[key]).reshape(expected[key].shape), expected[key], err_msg=key
        )
    assert got["source"] == "mtsyn_render"


def test_existing_split_is_refused_without_overwrite(tmp_path):
    generate.generate_dataset(str(tmp_path), num_scenes=1, config=TINY)
    with pytest.raises(ValueError, match="overwrite"):
        generate.generate_dataset(str(tmp_path), num_scenes=1, config=TINY)
    generate.generate_dataset(str(tmp_path), num_scenes=1, config=TINY, overwrite=True)


@pytest.mark.parametrize("kwargs", [{"num_scenes": 0}, {"num_scenes": 1, "workers": 0}])
def test_bad_arguments_raise(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate.generate_dataset(str(tmp_path), config=TINY, **kwargs)
