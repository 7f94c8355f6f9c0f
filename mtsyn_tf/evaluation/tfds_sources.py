"""Prepared tfds datasets, opened without network access, with actionable errors.

Evaluation never downloads: a dataset must already be built under ``data_dir``. When it
is not, the error names the exact ``tfds build`` command (and, for ImageNet, the manual
archives tfds expects), instead of tfds' download attempt or a deep stack trace.
"""

from __future__ import annotations

import tensorflow as tf

from mtsyn_tf.models.preprocessor import as_input_contract

# Manual downloads tfds cannot fetch itself: what must sit in --manual_dir.
MANUAL_DIR_LAYOUT = {
    "imagenet2012": (
        "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (from image-net.org) directly "
        "in <manual_dir>"
    ),
}


def build_command(name: str, data_dir: str | None) -> str:
    """The shell command that prepares ``name`` offline-readably under ``data_dir``."""
    base = name.split("/")[0].split(":")[0]
    command = f"tfds build {name}" + (f" --data_dir={data_dir}" if data_dir else "")
    if base in MANUAL_DIR_LAYOUT:
        command += f" --manual_dir=<manual_dir>   (needs {MANUAL_DIR_LAYOUT[base]})"
    return command


def load_split(name: str, split: str, data_dir: str | None, builder=None) -> tf.data.Dataset:
    """``builder.as_dataset(split)`` of a prepared dataset, or a ValueError saying how to prepare it.

    Args:
        name: tfds name with optional config, e.g. ``"voc/2007"`` or ``"imagenet2012"``.
        split: a split of that dataset (``"train"``, ``"test"``, ``"validation"``...).
        data_dir: where ``tfds build`` wrote it (tfds' default when None).
        builder: an already constructed builder (tests pass custom ones); default
            ``tfds.builder(name, data_dir=data_dir)``.
    """
    import tensorflow_datasets as tfds

    if builder is None:
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError as err:
            raise ValueError(
                f"Unknown tfds dataset name. Received: name={name!r} ({str(err)[:200]})"
            ) from err
    available = builder.info.splits
    if not tf.io.gfile.exists(builder.data_dir) or not available:
        raise ValueError(
            f"tfds dataset {name!r} is not prepared under data_dir={data_dir!r} (looked in "
            f"{builder.data_dir}). Prepare it once with: {build_command(name, data_dir)}"
        )
    unknown = [p for p in split.split("+") if p.split("[")[0].strip() not in available]
    if unknown:
        raise ValueError(
            f"tfds dataset {name!r} has no split {split!r}. Expected one of "
            f"{sorted(available)}. Received: split={split!r}"
        )
    try:
        return builder.as_dataset(split=split, shuffle_files=False)
    except (AssertionError, tf.errors.NotFoundError, FileNotFoundError) as err:
        raise ValueError(
            f"tfds dataset {name!r} is incomplete under {builder.data_dir} ({str(err)[:200]}). "
            f"Rebuild it with: {build_command(name, data_dir)}"
        ) from err


def decode_square(image, size: int, grayscale) -> tf.Tensor:
    """uint8 [H, W, 3] → float32 [size, size, 3] in [0, 1]: centre square crop, bilinear resize.

    ``grayscale``: the run's ``InputContract`` or grayscale flag, applied last.
    """
    image = tf.image.convert_image_dtype(image[..., :3], tf.float32)
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(
        image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side
    )
    image = tf.image.resize(image, (size, size), antialias=True)
    image = tf.clip_by_value(image, 0.0, 1.0)
    return as_input_contract(grayscale)(image)


def random_crop_flip(image, size: int, seed, grayscale) -> tf.Tensor:
    """Training view: random square crop (≥ 60 % of the short side), flip, resize to size."""
    image = tf.image.convert_image_dtype(image[..., :3], tf.float32)
    shape = tf.shape(image)
    short = tf.minimum(shape[0], shape[1])
    seeds = tf.random.split(seed, 4)
    frac = tf.random.stateless_uniform([], seeds[0], 0.6, 1.0)
    side = tf.maximum(tf.cast(tf.cast(short, tf.float32) * frac, tf.int32), 1)
    y0 = tf.random.stateless_uniform([], seeds[1], 0, shape[0] - side + 1, dtype=tf.int32)
    x0 = tf.random.stateless_uniform([], seeds[2], 0, shape[1] - side + 1, dtype=tf.int32)
    image = tf.image.crop_to_bounding_box(image, y0, x0, side, side)
    image = tf.image.stateless_random_flip_left_right(image, seeds[3])
    image = tf.clip_by_value(tf.image.resize(image, (size, size), antialias=True), 0.0, 1.0)
    return as_input_contract(grayscale)(image)
