"""Decoded records held in memory: the same batches as decoding from disk, within a budget."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.data import augment, pipeline, real_domain, record_cache, schema, shards


@pytest.fixture
def mixed_size_dirs(tmp_path, make_sample):
    """Synthetic records of three sizes over 3 shards, and real photos of three sizes."""
    syn = str(tmp_path / "syn")
    sizes = [(16, 24), (20, 18), (12, 30)]
    records = [
        schema.encode_synthetic(make_sample(*sizes[i % 3], seed=i, image_id=f"t{i}"))
        for i in range(7)
    ]
    shards.write_shards(records, syn, "train", 3, "synthetic", "fixture")
    real = str(tmp_path / "real")
    rng = np.random.default_rng(0)
    photos = [
        schema.encode_real(
            {
                "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                "image_id": f"p{i}",
                "source": "fixture",
            }
        )
        for i, (h, w) in enumerate([(20, 32), (40, 24), (25, 25), (30, 50)])
    ]
    shards.write_shards(photos, real, "train", 2, "real", "fixture")
    return syn, real


def _batches(cache_mb, syn, real, n=6, **kwargs):
    ds = pipeline.make_training_dataset(
        syn,
        real,
        batch_size=3,
        image_size=10,
        seed=5,
        deterministic=True,
        cache_mb=cache_mb,
        **kwargs,
    )
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(n)]


def test_cached_stream_is_the_disk_stream_bit_for_bit(mixed_size_dirs):
    """Records of different sizes (padded in the cache), several shards, both domains."""
    syn, real = mixed_size_dirs
    from_disk = _batches(0, syn, real, min_edge_pixels=1, real_min_scale=0.3)
    cached = _batches(64, syn, real, min_edge_pixels=1, real_min_scale=0.3)
    tf.nest.map_structure(np.testing.assert_array_equal, from_disk, cached)
    # Not vacuous: 6 batches of 3 go around the 7 records' epoch twice, crops differ.
    images = np.concatenate([b["synthetic"]["image"] for b in cached])
    assert len({x.tobytes() for x in images}) == len(images)


def test_source_caches_within_budget_and_reads_padded_records_back(mixed_size_dirs, caplog):
    syn, real = mixed_size_dirs
    files = shards.list_shards(syn, "train")
    caplog.set_level(
        logging.INFO, logger="absl"
    )  # absl may be at WARNING after an earlier test's app.run
    source = pipeline.synthetic_source(syn, "train", verify=False, cache_mb=1)
    assert source.cached and "Holding 7 decoded synthetic 'train' records" in caplog.text
    # Padded to the largest height (20) and width (30): 7 records x 20 x 30 x 27 bytes
    # (uint8 image 3, float32 labels 6 x 4: depth, normals, contour, valid).
    assert source.nbytes == 7 * 20 * 30 * 27
    decoded = [
        pipeline.decode_training_record(r) for f in files for r in tf.data.TFRecordDataset(f)
    ]  # shard order, record order: the cache's item order
    for item, expected in enumerate(decoded):
        got = source.decode(tf.constant(item, tf.int64))
        assert set(got) == set(expected) == {"image", "labels"}
        for key in got:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{item}/{key}")
        # The view: the record's rows of the stacked arrays, nothing copied.
        fields, first_row, height, width = source.view(tf.constant(item, tf.int64))
        assert (int(height), int(width)) == expected["image"].shape[:2]
        assert int(first_row) == 20 * item
        for key in got:
            window = fields[key][int(first_row) : int(first_row) + int(height), : int(width)]
            np.testing.assert_array_equal(window, expected[key], err_msg=f"{item}/{key}")


def test_over_budget_falls_back_to_disk_with_one_log_line(mixed_size_dirs, caplog):
    syn, real = mixed_size_dirs
    caplog.set_level(
        logging.INFO, logger="absl"
    )  # absl may be at WARNING after an earlier test's app.run
    source = pipeline.synthetic_source(syn, "train", verify=False, cache_mb=0.005)
    assert not source.cached and source.nbytes == 0
    assert "Not caching the synthetic 'train' records" in caplog.text
    assert "its shards alone hold 0 MB, over 2x the 0 MB budget" in caplog.text
    # Shards small enough to try, decoded (padding included) one byte over the budget.
    need = pipeline.synthetic_source(syn, "train", False, cache_mb=1).nbytes
    caplog.clear()
    assert not pipeline.synthetic_source(syn, "train", False, (need - 1) / 2**20).cached
    assert "decoded it takes more than the 0 MB budget" in caplog.text
    assert pipeline.synthetic_source(syn, "train", False, need / 2**20).cached
    # 0 is the opt-out: no cache and no message.
    caplog.clear()
    assert not pipeline.synthetic_source(syn, "train", False, cache_mb=0).cached
    assert "caching" not in caplog.text.lower()
    with pytest.raises(ValueError, match="cache_mb must be >= 0"):
        pipeline.synthetic_source(syn, "train", False, cache_mb=-1)


def test_real_budget_is_what_the_synthetic_cache_leaves(mixed_size_dirs, caplog):
    syn, real = mixed_size_dirs
    caplog.set_level(
        logging.INFO, logger="absl"
    )  # absl may be at WARNING after an earlier test's app.run
    synthetic_mb = pipeline.synthetic_source(syn, "train", False, cache_mb=1).nbytes / 2**20
    caplog.clear()
    # Room for the synthetic records but not for the photos as well.
    pipeline.make_training_dataset(syn, real, 3, 10, seed=0, cache_mb=synthetic_mb + 0.001)
    assert "Holding 7 decoded synthetic" in caplog.text
    assert "Not caching the real 'train' records" in caplog.text


def test_records_whose_fixed_keys_change_shape_are_refused(tmp_path):
    path = str(tmp_path / "r.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for n in (4, 5):
            w.write(tf.io.serialize_tensor(tf.zeros([n])).numpy())

    def decode(record):
        return {"image": tf.zeros([2, 2, 3]), "vector": tf.io.parse_tensor(record, tf.float32)}

    with pytest.raises(ValueError, match="`vector` has shape"):
        record_cache.RecordSource([path], decode, ("image",), 1, "odd records")


def test_embedded_real_stream_unchanged_by_the_uint8_crop():
    """The embedded photos (uint8) cropped before float conversion: same crops as before."""
    ds = real_domain.make_real_dataset("embedded", image_size=16, seed=3, jitter=False)
    images = [e["image"].numpy() for e in ds.take(3)]
    photos, _ = real_domain.photo_stream("embedded", "train", None, 3, 0)
    seeds = augment.zip_with_seeds(photos, 3)
    for got, (photo, seed) in zip(images, seeds.take(3)):
        s = tf.random.experimental.stateless_split(seed, num=3)
        ref = augment.to_float_image({"image": photo})
        ref = augment.random_resized_crop(ref, 16, s[0], min_scale=0.3)  # the real default
        ref = augment.random_flip_left_right(ref, s[1])
        np.testing.assert_array_equal(got, ref["image"].numpy())
