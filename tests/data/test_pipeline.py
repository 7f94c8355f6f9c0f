import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.data import augment, pipeline, schema, shards


@pytest.fixture
def synthetic_dir(tmp_path, make_sample):
    out = str(tmp_path / "syn")
    records = [
        schema.encode_synthetic(make_sample(16, 24, seed=i, image_id=f"t{i}")) for i in range(6)
    ]
    shards.write_shards(records, out, "train", 3, "synthetic", "fixture")
    val = [
        schema.encode_synthetic(make_sample(16, 24, seed=10 + i, image_id=f"v{i}"))
        for i in range(3)
    ]
    shards.write_shards(val, out, "val", 1, "synthetic", "fixture")
    return out


def _batches(ds, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(n)]


def test_training_batches_shapes_and_label_consistency(synthetic_dir):
    ds = pipeline.make_training_dataset(
        synthetic_dir, batch_size=4, image_size=12, seed=0, deterministic=True
    )
    channels = {"image": 3, "depth": 1, "normals": 3, "contour": 1, "valid": 1}
    for key, c in channels.items():
        assert ds.element_spec["synthetic"][key].shape == (4, 12, 12, c), key
        assert ds.element_spec["synthetic"][key].dtype == tf.float32
    assert ds.element_spec["real"]["image"].shape == (4, 12, 12, 3)
    (batch,) = _batches(ds, 1)
    syn = batch["synthetic"]
    np.testing.assert_array_equal(syn["valid"], (syn["depth"] > 0).astype(np.float32))
    assert set(np.unique(syn["contour"])) <= {0.0, 1.0}
    norms = np.linalg.norm(syn["normals"], axis=-1)[..., None]
    np.testing.assert_allclose(norms[syn["valid"] > 0], 1.0, atol=1e-5)
    for image in (syn["image"], batch["real"]["image"]):  # grayscale by default
        assert 0.0 <= image.min() and image.max() <= 1.0
        np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_same_seed_same_batches(synthetic_dir):
    def run(seed):
        return _batches(
            pipeline.make_training_dataset(
                synthetic_dir, batch_size=2, image_size=8, seed=seed, deterministic=True
            ),
            3,
        )

    a, b, c = run(7), run(7), run(8)
    tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a[0]["synthetic"]["image"], c[0]["synthetic"]["image"])
    with pytest.raises(ValueError, match="needs an integer seed"):
        pipeline.make_training_dataset(synthetic_dir, deterministic=True)


def test_eval_dataset_is_centre_crop(synthetic_dir, make_sample):
    batches = _batches(
        pipeline.make_eval_dataset(synthetic_dir, "val", batch_size=2, image_size=8), 5
    )
    assert [b["image"].shape[0] for b in batches] == [2, 1]
    sample = make_sample(16, 24, seed=10, image_id="v0")
    expected = augment.center_crop_and_resize(
        augment.to_float_image({k: tf.constant(sample[k]) for k in ("image", "depth")}), 8
    )
    np.testing.assert_array_equal(batches[0]["depth"][0, ..., 0], expected["depth"].numpy())
    np.testing.assert_allclose(batches[0]["image"][0], expected["image"].numpy(), atol=1e-6)
    gray = _batches(pipeline.make_eval_dataset(synthetic_dir, "val", 2, 8, grayscale_channel=1), 1)[
        0
    ]
    np.testing.assert_array_equal(gray["image"][..., 0], batches[0]["image"][..., 1])


def test_pipeline_errors(tmp_path, synthetic_dir):
    with pytest.raises(ValueError, match="holds no shards"):
        pipeline.make_training_dataset(str(tmp_path))
    with pytest.raises(ValueError, match="No shards for split 'test'"):
        pipeline.make_eval_dataset(synthetic_dir, "test")
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.make_training_dataset(synthetic_dir, batch_size=0)
