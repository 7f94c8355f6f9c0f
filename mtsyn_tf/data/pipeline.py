"""tf.data input pipelines: sharded synthetic records + a real-photo stream → batches.

Training batches follow docs/CONTRACTS.md::

    {"synthetic": {"image", "depth", "normals", "contour", "valid"},  # float32 [B,S,S,C]
     "real": {"image"}}                                                # float32 [B,S,S,3]

Reading is sharded and interleaved, decoding and augmentation run in parallel, and the
result is prefetched. With ``deterministic=True`` and an integer ``seed`` every shuffle,
interleave order and augmentation is fixed, so two runs yield identical batches (used
by tests and for reproducing a run); otherwise tf.data may reorder for throughput.
"""

from __future__ import annotations

import tensorflow as tf

from mtsyn_tf import runtime
from mtsyn_tf.data import augment, real_domain, record_cache, schema, shards

AUTOTUNE = tf.data.AUTOTUNE
# The keys the model reads; instance ids, intrinsics and provenance strings are dropped
# before augmenting so no time is spent resampling or updating what the step never sees.
_TRAINING_KEYS = ("image", "depth", "normals", "contour", "valid")
# What a decoded training record holds: the uint8 photo and the fused float32 labels
# (``augment.fuse_labels``: one gather per axis resamples all of them).
_SPATIAL_TRAINING_KEYS = ("image", "labels")
# Consecutive edge-poor examples after which the stream gives up with a clear error
# instead of searching forever (a data set where almost nothing passes the rule).
MAX_CONSECUTIVE_EDGE_POOR = 10_000


def _synthetic_files(synthetic_dir: str, split: str, verify: bool) -> list[str]:
    manifest = shards.read_manifest(synthetic_dir)
    if manifest["kind"] != schema.KIND_SYNTHETIC:
        raise ValueError(
            f"{synthetic_dir!r} holds {manifest['kind']!r} shards; expected 'synthetic'."
        )
    if verify:
        shards.verify_shards(synthetic_dir, split)
    return shards.list_shards(synthetic_dir, split)


def to_model_targets(example: dict) -> dict:
    """The image and the fused labels split into the float32 [S, S, C] training layout."""
    return {"image": example["image"], **augment.split_labels(example["labels"])}


def _check_sizes(batch_size: int, image_size: int) -> None:
    if batch_size < 1 or image_size < 1:
        raise ValueError(
            f"batch_size and image_size must be >= 1. Received: batch_size={batch_size}, "
            f"image_size={image_size}"
        )


def make_synthetic_training_dataset(
    synthetic_dir: str,
    image_size: int = 227,
    split: str = "train",
    seed: int | None = None,
    deterministic: bool = False,
    grayscale: bool = True,
    min_scale: float = 0.5,
    shuffle_buffer: int = 256,
    cycle_length: int = 4,
    verify: bool = False,
    min_edge_pixels: int = 0,
    jitter: bool = False,
    cache_mb: float = record_cache.DEFAULT_CACHE_MB,
) -> tf.data.Dataset:
    """Unbounded, unbatched stream of augmented synthetic examples (model-target layout).

    Examples whose (augmented, S×S) contour target has fewer than ``min_edge_pixels`` edge
    pixels are dropped from the stream, so each is replaced by the next random example
    (the reference code's rule; see ``resample_edge_poor``). ``jitter`` adds colour
    jitter (off in the paper's setting; opt-in, see README "Deviations"). A split whose
    decoded records fit ``cache_mb`` is decoded once and held in memory (0: never); the
    stream is the same either way (``record_cache``).
    """
    source = synthetic_source(synthetic_dir, split, verify, cache_mb)
    return augmented_synthetic_stream(
        source,
        image_size,
        seed=seed,
        deterministic=deterministic,
        grayscale=grayscale,
        min_scale=min_scale,
        shuffle_buffer=shuffle_buffer,
        cycle_length=cycle_length,
        min_edge_pixels=min_edge_pixels,
        jitter=jitter,
    )


def synthetic_source(
    synthetic_dir: str, split: str, verify: bool, cache_mb: float
) -> record_cache.RecordSource:
    """The training keys of a synthetic split's records: decoded in memory if they fit."""
    files = _synthetic_files(synthetic_dir, split, verify)
    return record_cache.RecordSource(
        files, decode_training_record, _SPATIAL_TRAINING_KEYS, cache_mb, f"synthetic {split!r}"
    )


def decode_training_record(record) -> dict:
    """A synthetic record's ``{"image": uint8 [H, W, 3], "labels": float32 [H, W, 6]}``."""
    decoded = schema.decode_synthetic(record)
    return augment.fuse_labels({k: decoded[k] for k in _TRAINING_KEYS})


def augmented_synthetic_stream(
    source: record_cache.RecordSource,
    image_size: int,
    *,
    seed: int | None,
    deterministic: bool,
    grayscale: bool,
    min_scale: float,
    shuffle_buffer: int,
    cycle_length: int,
    min_edge_pixels: int,
    jitter: bool,
) -> tf.data.Dataset:
    """``make_synthetic_training_dataset``'s stream over the records of ``source``."""
    files = source.files
    ds = source.handles().shuffle(len(files), seed=seed).repeat()
    ds = ds.interleave(
        source.records,
        cycle_length=min(cycle_length, len(files)),
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    ds = ds.shuffle(shuffle_buffer, seed=seed)

    def prepare(item, element_seed):
        view = source.view(item)
        return augment_synthetic(view, element_seed, image_size, min_scale, jitter, grayscale)

    ds = augment.zip_with_seeds(ds, seed).map(
        prepare, num_parallel_calls=AUTOTUNE, deterministic=deterministic
    )
    return resample_edge_poor(ds, min_edge_pixels)


def augment_synthetic(
    view: record_cache.RecordView,
    element_seed,
    image_size: int,
    min_scale: float,
    jitter: bool,
    grayscale: bool,
) -> dict:
    """One training example (model-target layout) from a decoded record and its seed.

    The record is read where it lies (held in memory: no copy); the crop copies only
    its window, and converts only the window's uint8 pixels to float.
    """
    seeds = tf.random.experimental.stateless_split(element_seed, num=3)
    fields, first_row, height, width = view
    window = augment.random_crop_window(height, width, seeds[0], min_scale=min_scale)
    # The flip happens inside the crop (mirrored gathers): the same result as
    # ``random_flip_left_right`` after it, for less work.
    mirror = augment.random_flip_decision(seeds[1])
    example = augment.crop_and_resize(
        fields, *window, image_size, first_row=first_row, mirror=mirror
    )
    if jitter:
        # Its own seed stream (not seeds[2]): turning jitter on leaves crops, flips
        # and grey channels of every example unchanged.
        jitter_seed = tf.random.experimental.stateless_fold_in(element_seed, 1)
        example["image"] = augment.photometric_jitter(example["image"], jitter_seed)
    if grayscale:
        example["image"] = augment.random_grayscale_channel(example["image"], seeds[2])
    return to_model_targets(example)


def resample_edge_poor(
    dataset: tf.data.Dataset,
    min_edge_pixels: int,
    max_consecutive: int = MAX_CONSECUTIVE_EDGE_POOR,
) -> tf.data.Dataset:
    """Drops examples with fewer than ``min_edge_pixels`` contour pixels from a stream.

    On the unbounded (repeated, shuffled) training stream this *replaces* each such image
    by the next random one, as the reference code does, and batches stay full. It is a
    pure function of the input order, so a seeded stream stays exactly reproducible and
    ``skip(n)`` still resumes it. After ``max_consecutive`` edge-poor examples in a row
    the stream stops with an error naming the setting (instead of spinning forever).
    """
    if min_edge_pixels < 0:
        raise ValueError(
            f"min_edge_pixels must be >= 0. Received: min_edge_pixels={min_edge_pixels}"
        )
    if min_edge_pixels == 0:
        return dataset
    threshold = float(min_edge_pixels)

    def count_rejections(rejected, example):
        keep = tf.reduce_sum(example["contour"]) >= threshold
        rejected = tf.where(keep, tf.constant(0, tf.int64), rejected + 1)
        check = tf.debugging.assert_less(
            rejected,
            tf.constant(max_consecutive, tf.int64),
            message=(
                f"{max_consecutive} training images in a row have fewer than "
                f"min_edge_pixels={min_edge_pixels} contour pixels; lower --min_edge_pixels "
                "(0 keeps every image) or check the contour maps of the synthetic data."
            ),
        )
        with tf.control_dependencies([check]):
            rejected = tf.identity(rejected)
        return rejected, (example, keep)

    def kept(example, keep):
        return keep

    def example_only(example, keep):
        return example

    dataset = dataset.scan(tf.constant(0, tf.int64), count_rejections)
    return dataset.filter(kept).map(example_only)


def make_training_dataset(
    synthetic_dir: str,
    real_source: str = real_domain.EMBEDDED,
    batch_size: int = 16,
    image_size: int = 227,
    *,
    split: str = "train",
    real_split: str = "train",
    grayscale: bool = True,
    min_scale: float = 0.5,
    real_min_scale: float | None = None,
    synthetic_jitter: bool = False,
    real_jitter: bool = False,
    min_edge_pixels: int = 0,
    seed: int | None = None,
    deterministic: bool = False,
    shuffle_buffer: int = 256,
    cycle_length: int = 4,
    places365_data_dir: str | None = None,
    verify: bool = False,
    cache_mb: float = record_cache.DEFAULT_CACHE_MB,
) -> tf.data.Dataset:
    """Unbounded stream of ``{"synthetic": {...}, "real": {"image"}}`` training batches.

    Args:
        synthetic_dir: directory of synthetic shards with a manifest.json.
        real_source: see ``real_domain.make_real_dataset`` ("embedded", "places365", a
            real-shard directory or a photo folder).
        batch_size: B, for both domains (remainders are dropped: static shapes).
        image_size: S (227 for AlexNet, 224 for VGG16).
        grayscale: feed one random RGB channel repeated 3x (the paper's input), to both
            domains so the discriminator cannot separate them by colour.
        min_scale / real_min_scale: smallest crop side, as a fraction of the short side.
            ``real_min_scale=None`` (default) uses ``min_scale``: both domains get the
            same crop/flip policy, so D cannot tell them apart by augmentation alone.
        synthetic_jitter / real_jitter: colour jitter per domain (default off for both,
            the paper's setting; opt-in).
        min_edge_pixels: synthetic images with fewer contour pixels are replaced by the
            next random image. 0 (the library default) keeps every image; training runs
            pass ``TrainerConfig.min_edge_pixels`` (350 by default, the reference code's).
        seed / deterministic: ``deterministic=True`` needs an integer seed and makes the
            stream exactly reproducible.
        verify: check shard checksums and record framing before training starts.
        cache_mb: memory budget (MB) for holding decoded records, synthetic first, the
            real shards with what is left; a domain that does not fit is decoded from
            disk every step (one log line says so). 0 turns caching off. The batches are
            the same either way (``record_cache``).
    """
    _check_sizes(batch_size, image_size)
    if deterministic and seed is None:
        raise ValueError("deterministic=True needs an integer seed. Received: seed=None")
    source = synthetic_source(synthetic_dir, split, verify, cache_mb)
    synthetic = augmented_synthetic_stream(
        source,
        image_size,
        seed=seed,
        deterministic=deterministic,
        grayscale=grayscale,
        min_scale=min_scale,
        shuffle_buffer=shuffle_buffer,
        cycle_length=cycle_length,
        min_edge_pixels=min_edge_pixels,
        jitter=synthetic_jitter,
    ).batch(batch_size, drop_remainder=True)
    real = real_domain.make_real_dataset(
        real_source,
        image_size,
        seed=None if seed is None else seed + 1,
        min_scale=min_scale if real_min_scale is None else real_min_scale,
        jitter=real_jitter,
        split=real_split,
        places365_data_dir=places365_data_dir,
        cache_mb=max(0.0, cache_mb - source.nbytes / 2**20),
    )
    if grayscale:
        real = augment.zip_with_seeds(real, None if seed is None else seed + 2).map(
            lambda e, s: {"image": augment.random_grayscale_channel(e["image"], s)},
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )
    real = real.batch(batch_size, drop_remainder=True)
    ds = tf.data.Dataset.zip({"synthetic": synthetic, "real": real})
    # A bounded share of the cores: the next batch is prepared while the step runs on the
    # same cores (mtsyn_tf.runtime.dataset_options says how much and why).
    options = runtime.dataset_options(deterministic)
    return ds.with_options(options).prefetch(AUTOTUNE)


def make_eval_dataset(
    synthetic_dir: str,
    split: str = "val",
    batch_size: int = 16,
    image_size: int = 227,
    grayscale_channel: int | None = None,
) -> tf.data.Dataset:
    """One deterministic pass over ``split``: centre square crop resized to S, no augmentation.

    Args:
        grayscale_channel: if set (0, 1 or 2), feed that RGB channel repeated 3x, matching
            a model trained with ``grayscale=True`` without randomness.
    """
    _check_sizes(batch_size, image_size)
    if grayscale_channel not in (None, 0, 1, 2):
        raise ValueError(
            f"grayscale_channel must be None, 0, 1 or 2. Received: grayscale_channel={grayscale_channel}"
        )
    files = _synthetic_files(synthetic_dir, split, verify=False)
    # The manifest's record count makes the pass's length known: Keras' evaluate and
    # progress bars then expect exactly that many batches instead of reading until the
    # data ends (which Keras reports as "Your input ran out of data"). The "size" check
    # reads no shard; a truncated one is named here instead of failing mid-pass.
    num_records = shards.verify_shards(synthetic_dir, split, level="size")

    def prepare(record):
        example = augment.center_crop_and_resize(decode_training_record(record), image_size)
        if grayscale_channel is not None:
            channel = example["image"][..., grayscale_channel : grayscale_channel + 1]
            example["image"] = tf.repeat(channel, 3, axis=-1)
        return to_model_targets(example)

    ds = tf.data.TFRecordDataset(files).apply(tf.data.experimental.assert_cardinality(num_records))
    ds = ds.map(prepare, num_parallel_calls=AUTOTUNE)
    # No autotuning thread: deleting an iterator can wait out its sleep (up to 60 s once
    # a pass has run for a minute or more; runtime.dataset_options). Without it every
    # AUTOTUNE parallelism takes tf.data's default (the cores available, at most 16).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.batch(batch_size).prefetch(AUTOTUNE).with_options(options)
