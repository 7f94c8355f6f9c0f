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


def test_eval_dataset_length_is_known_so_keras_expects_it(synthetic_dir):
    # Without a known length Keras' evaluate reads until the data ends and then warns
    # "Your input ran out of data" (it did after every demo run's held-out evaluation).
    import warnings

    import keras

    ds = pipeline.make_eval_dataset(synthetic_dir, "val", batch_size=2, image_size=8)
    assert int(ds.cardinality()) == 2  # 3 records in batches of 2
    assert ds.options().autotune.enabled is False  # its thread can stall a closing pass
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    model.compile(loss="mse")
    pairs = ds.map(lambda b: (b["image"], b["depth"][:, 0, 0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.evaluate(pairs, verbose=0)


def test_pipeline_errors(tmp_path, synthetic_dir):
    with pytest.raises(ValueError, match="holds no shards"):
        pipeline.make_training_dataset(str(tmp_path))
    with pytest.raises(ValueError, match="No shards for split 'test'"):
        pipeline.make_eval_dataset(synthetic_dir, "test")
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.make_training_dataset(synthetic_dir, batch_size=0)


# ------------------------------------------------------------------ edge-poor resampling
@pytest.fixture
def mixed_edge_dir(tmp_path, make_sample):
    """8 samples; the odd ones have an empty contour map (one instance, no boundary)."""
    out = str(tmp_path / "mixed")
    records = []
    for i in range(8):
        sample = make_sample(16, 16, seed=i, image_id=f"m{i}")
        if i % 2:
            sample["contour"] = np.zeros_like(sample["contour"])
        records.append(schema.encode_synthetic(sample))
    shards.write_shards(records, out, "train", 2, "synthetic", "fixture")
    return out


def _synthetic_stream(directory, n, **kwargs):
    ds = pipeline.make_synthetic_training_dataset(
        directory, image_size=16, seed=3, deterministic=True, min_scale=1.0, **kwargs
    )
    return [tf.nest.map_structure(lambda t: t.numpy(), e) for e in ds.take(n)]


def test_edge_poor_images_are_replaced_not_kept(mixed_edge_dir):
    kept_all = _synthetic_stream(mixed_edge_dir, 16)
    counts = [e["contour"].sum() for e in kept_all]
    assert min(counts) == 0 and max(counts) > 0  # the stream does hold edge-free images
    resampled = _synthetic_stream(mixed_edge_dir, 16, min_edge_pixels=1)
    assert min(e["contour"].sum() for e in resampled) >= 1
    # Exactly the edge-rich examples of the same stream, in the same order: each edge-poor
    # image is replaced by the next random one (the stream is unbounded, batches stay full).
    rich = [e for e in _synthetic_stream(mixed_edge_dir, 40) if e["contour"].sum() >= 1][:16]
    for a, b in zip(resampled, rich):
        np.testing.assert_array_equal(a["image"], b["image"])
    batches = pipeline.make_training_dataset(
        mixed_edge_dir, batch_size=4, image_size=16, seed=3, deterministic=True, min_edge_pixels=1
    )
    first = _batches(batches, 3)
    assert all(b["synthetic"]["contour"].reshape(4, -1).sum(axis=1).min() >= 1 for b in first)
    # Exact resume: skipping consumed batches replays the same stream.
    resumed = _batches(
        pipeline.make_training_dataset(
            mixed_edge_dir,
            batch_size=4,
            image_size=16,
            seed=3,
            deterministic=True,
            min_edge_pixels=1,
        ).skip(2),
        1,
    )
    tf.nest.map_structure(np.testing.assert_array_equal, resumed[0], first[2])


def test_edge_poor_stream_that_never_passes_fails_clearly(mixed_edge_dir):
    ds = pipeline.make_synthetic_training_dataset(
        mixed_edge_dir, image_size=16, seed=0, deterministic=True
    )
    ds = pipeline.resample_edge_poor(ds, min_edge_pixels=10_000, max_consecutive=20)
    with pytest.raises(tf.errors.InvalidArgumentError, match="min_edge_pixels=10000"):
        next(iter(ds))
    with pytest.raises(ValueError, match="min_edge_pixels=-1"):
        pipeline.resample_edge_poor(ds, min_edge_pixels=-1)


# ------------------------------------------------------------------ symmetric augmentation
def test_both_domains_get_the_same_crop_policy_and_no_jitter_by_default(synthetic_dir, monkeypatch):
    calls = []
    original = pipeline.real_domain.make_real_dataset

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline.real_domain, "make_real_dataset", recording)
    pipeline.make_training_dataset(synthetic_dir, batch_size=2, image_size=8, seed=0)
    assert calls[-1]["min_scale"] == 0.5 and calls[-1]["jitter"] is False
    pipeline.make_training_dataset(
        synthetic_dir, batch_size=2, image_size=8, seed=0, min_scale=0.8, real_jitter=True
    )
    assert calls[-1]["min_scale"] == 0.8 and calls[-1]["jitter"] is True
    pipeline.make_training_dataset(
        synthetic_dir, batch_size=2, image_size=8, seed=0, real_min_scale=0.3
    )
    assert calls[-1]["min_scale"] == 0.3


def test_synthetic_jitter_is_opt_in_and_touches_only_the_image(synthetic_dir):
    plain = _synthetic_stream(synthetic_dir, 4, grayscale=False)
    jittered = _synthetic_stream(synthetic_dir, 4, grayscale=False, jitter=True)
    for a, b in zip(plain, jittered):
        for key in ("depth", "normals", "contour", "valid"):  # same crops and flips
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert any(not np.allclose(a["image"], b["image"]) for a, b in zip(plain, jittered))


# ------------------------------------------------------------------ the documented transform
def _documented_transform(record, seed, size, min_scale):
    """The augmentation key by key on the decoded maps (before labels were fused)."""
    decoded = schema.decode_synthetic(record)
    example = {k: decoded[k] for k in ("image", "depth", "normals", "contour", "valid")}
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    example = augment.random_resized_crop(example, size, seeds[0], min_scale=min_scale)
    example = augment.random_flip_left_right(example, seeds[1])
    return {
        "image": example["image"],
        "depth": example["depth"][..., None],
        "normals": example["normals"],
        "contour": tf.cast(example["contour"], tf.float32)[..., None],
        "valid": tf.cast(example["valid"], tf.float32)[..., None],
    }, example


@pytest.mark.parametrize("cache_mb", [0, 64])
def test_training_examples_are_the_documented_transform(synthetic_dir, cache_mb):
    """Fused labels, row views of the cache and the flip: the per-key transform, exactly.

    Labels bit for bit; the photo too on downscales, and on upscales within the
    rounding of ResizeBilinear's sample positions (the same bilinear weights: see
    ``augment._resize_photo``; test_augment derives the bound).
    """
    source = pipeline.synthetic_source(synthetic_dir, "train", False, cache_mb)
    assert source.cached == (cache_mb > 0)
    records = [r for f in source.files for r in tf.data.TFRecordDataset(f)]
    flips = set()
    for trial in range(24):
        item = trial % len(records)
        seed = tf.constant([trial, 7], tf.int64)
        for size, min_scale in ((12, 0.5), (21, 0.9)):  # down- and upscales of 16x24 records
            handle = tf.constant(item, tf.int64) if source.cached else records[item]
            got = pipeline.augment_synthetic(
                source.view(handle), seed, size, min_scale, False, False
            )
            want, _ = _documented_transform(records[item], seed, size, min_scale)
            for key in ("depth", "normals", "contour", "valid"):
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"{trial}/{key}")
            # 2 axes x (6·side + 3 roundings of positions ≤ side ≤ 16) x 2**-24: see
            # test_augment._upscale_rounding.
            atol = 2 * (6 * 16 + 3) * 2.0**-24
            np.testing.assert_allclose(got["image"], want["image"], rtol=0, atol=atol)
            flips.add(bool(np.any(got["normals"][..., 0] > 0)))
    assert flips == {True, False}  # both flip branches ran (normals' x sign changes)
