"""The real-photo domain: where the discriminator's "real" images come from.

Every source gives the same output: an unbounded ``tf.data.Dataset`` of
``{"image": float32 [S, S, 3] in [0, 1]}``, each a random multi-scale square crop of a
photo, randomly flipped and colour-jittered. Sources (``source`` argument):

* ``"embedded"`` (default): the photos that ship inside scikit-image (astronaut,
  chelsea, coffee, rocket, stereo_motorcycle left/right) and scikit-learn (china.jpg,
  flower.jpg), at Places365's 256 px short side. Eight photos are far too few for real
  training but need no download, so smoke tests and the laptop demo always have a real
  domain.
* a directory with a ``manifest.json`` of kind "real": TFRecord shards written by
  ``write_real_shards`` / ``scripts/make_tfrecords.py``.
* any other directory: a folder of JPEG/PNG photos, searched recursively, read at their
  own size every step (``write_real_shards`` stores them at Places365's scale instead,
  decoded once when they fit the cache).
* ``"places365"``: tfds ``places365_small`` (the paper's real domain), once prepared
  under ``places365_data_dir``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import cv2
import numpy as np
import tensorflow as tf

from mtsyn_tf.data import augment, record_cache, schema, shards, writer

EMBEDDED = "embedded"
PLACES365 = "places365"
PLACES365_TFDS_NAME = "places365_small"
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")
_SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
# Magic numbers of the formats we accept, checked up front so a stray non-image file is
# reported by name instead of failing later inside a tf.data graph.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# Smallest photo side accepted: a real crop covers >= min_scale (0.3) of the shorter side,
# so below 16 px a "photo" is a handful of pixels blown up to 227 (an icon, not a scene).
MIN_PHOTO_SIDE = 16
# Places365-Standard's photos (the paper's real domain; tfds ``places365_small``) are
# 256 px on a side. Real shards store larger photos downscaled to that short side, so the
# crops D sees show scenes at the scale the paper's D saw, and a training crop of a 256 px
# photo is mostly an upscale (``ResizeBilinear``, ~1/6 of the CPU of an antialiased
# downscale of a full-size photo, which ran on the step's cores: issue 13).
PLACES365_SIDE = 256


# ------------------------------------------------------------------ numpy-side sources
def embedded_photos() -> list[dict]:
    """The photos shipped inside scikit-image and scikit-learn, as real samples."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    samples = []
    for name in _SKIMAGE_PHOTOS:
        samples.append({"image": getattr(skdata, name)(), "image_id": f"skimage/{name}"})
    left, right, _ = skdata.stereo_motorcycle()
    samples.append({"image": left, "image_id": "skimage/stereo_motorcycle_left"})
    samples.append({"image": right, "image_id": "skimage/stereo_motorcycle_right"})
    bunch = load_sample_images()
    for path, image in zip(bunch.filenames, bunch.images):
        samples.append({"image": image, "image_id": f"sklearn/{os.path.basename(path)}"})
    for sample in samples:
        sample["image"] = np.ascontiguousarray(sample["image"][..., :3], dtype=np.uint8)
        sample["source"] = EMBEDDED
    return samples


def _check_short_side(short_side) -> None:
    valid = isinstance(short_side, int) and not isinstance(short_side, bool)
    if short_side is not None and not (valid and short_side >= MIN_PHOTO_SIDE):
        raise ValueError(
            f"short_side must be None (keep full size) or an integer >= {MIN_PHOTO_SIDE}. "
            f"Received: short_side={short_side!r}"
        )


def limit_short_side(image: np.ndarray, short_side: int | None) -> np.ndarray:
    """``image`` area-downscaled (aspect kept) so its shorter side is ``short_side``.

    A photo whose shorter side is already at most ``short_side``, or ``short_side=None``,
    is returned unchanged (never upscaled).
    """
    _check_short_side(short_side)
    if short_side is None:
        return image
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    if scale >= 1:
        return image
    size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def folder_photo_paths(folder: str) -> list[str]:
    """Sorted paths of every .jpg/.jpeg/.png under ``folder`` (recursive).

    Raises:
        ValueError: if the folder is missing, holds no photos, or a photo file does not
            start like a JPEG/PNG (the path is named).
    """
    if not os.path.isdir(folder):
        what = "is not a directory" if os.path.exists(folder) else "does not exist"
        raise ValueError(f"Photo folder {what}. Received: folder={folder!r}")
    paths = []
    for root, _, files in os.walk(folder):
        paths += [os.path.join(root, f) for f in files if f.lower().endswith(PHOTO_EXTENSIONS)]
    if not paths:
        raise ValueError(
            f"No photos (*{', *'.join(PHOTO_EXTENSIONS)}) found under {folder!r} (searched "
            "recursively)."
        )
    for path in paths:
        check_photo_header(path)
    return sorted(paths)


def check_photo_header(path: str) -> None:
    """Reads only the header: a JPEG/PNG of at least MIN_PHOTO_SIDE pixels, or ValueError.

    Grayscale, 16-bit, palette, alpha and CMYK files pass: both decoders used here
    (OpenCV's ``IMREAD_COLOR`` and ``tf.io.decode_image(channels=3)``) convert them to
    8-bit RGB.
    """
    from PIL import Image, UnidentifiedImageError

    with open(path, "rb") as f:
        head = f.read(8)
    if not any(head.startswith(m) for m in _MAGIC):
        raise ValueError(f"Not a readable JPEG/PNG file: {path}")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise ValueError(f"Not a readable JPEG/PNG file ({err}): {path}") from None
    if min(width, height) < MIN_PHOTO_SIDE:
        raise ValueError(
            f"Photo is {width}x{height} pixels; expected at least {MIN_PHOTO_SIDE} on each "
            f"side. Received: {path}"
        )


def read_photo(path: str) -> np.ndarray:
    """Decodes one photo to uint8 RGB [H, W, 3]; ValueError naming the path if unreadable.

    16-bit, grayscale, palette, alpha and CMYK files are converted (``IMREAD_COLOR``).
    """
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ValueError(f"Could not decode photo (truncated or corrupt?): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _places365_builder(data_dir: str | None):
    import tensorflow_datasets as tfds

    builder = tfds.builder(PLACES365_TFDS_NAME, data_dir=data_dir)
    if not builder.is_prepared():
        where = data_dir or "~/tensorflow_datasets"
        raise ValueError(
            f"tfds dataset {PLACES365_TFDS_NAME!r} is not prepared under {where!r}. Prepare it "
            f"with: tfds build {PLACES365_TFDS_NAME} --data_dir={where}"
        )
    return builder


def iter_real_samples(
    source: str,
    split: str = "train",
    places365_data_dir: str | None = None,
    short_side: int | None = PLACES365_SIDE,
) -> Iterator[dict]:
    """Real samples ``{"image", "image_id", "source"}`` from any source.

    Photos whose shorter side exceeds ``short_side`` are area-downscaled to it
    (``limit_short_side``; Places365's 256 px by default, ``None`` keeps full size).
    """
    _check_short_side(short_side)  # now, not when the first photo is drawn
    return (
        {**sample, "image": limit_short_side(sample["image"], short_side)}
        for sample in _iter_full_size(source, split, places365_data_dir)
    )


def _iter_full_size(source: str, split: str, places365_data_dir: str | None) -> Iterator[dict]:
    if source == EMBEDDED:
        yield from embedded_photos()
    elif source == PLACES365:
        builder = _places365_builder(places365_data_dir)
        for i, example in enumerate(builder.as_dataset(split=split).as_numpy_iterator()):
            yield {"image": example["image"], "image_id": f"{split}/{i}", "source": PLACES365}
    else:
        for path in folder_photo_paths(source):
            rel = os.path.relpath(path, source)
            yield {"image": read_photo(path), "image_id": rel, "source": "real_folder"}


def write_real_shards(
    source: str,
    output_dir: str,
    split: str = "train",
    num_shards: int = 1,
    image_format: str = "png",
    overwrite: bool = False,
    max_examples: int | None = None,
    places365_data_dir: str | None = None,
    short_side: int | None = PLACES365_SIDE,
) -> dict:
    """Writes a real domain's photos as real shards + manifest + sample grid.

    ``source`` is "embedded", "places365" or a photo folder; the shard directory can
    then be used as ``source`` of ``make_real_dataset``. Photos larger than
    ``short_side`` (Places365's 256 px) are stored downscaled to it; ``None`` stores
    them at full size.
    """
    samples = iter_real_samples(source, split, places365_data_dir, short_side)
    if max_examples is not None:
        samples = itertools.islice(samples, max_examples)
    name = source if source in (EMBEDDED, PLACES365) else "real_folder"
    return writer.write_dataset(
        samples,
        output_dir,
        split,
        num_shards,
        schema.KIND_REAL,
        name,
        overwrite,
        image_format=image_format,
    )


# ------------------------------------------------------------------- tf.data streams
def _is_shard_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, shards.MANIFEST_NAME))


def _decode_real_image(record) -> dict:
    return {"image": schema.decode_real(record)["image"]}


def _whole_photo(image) -> record_cache.RecordView:
    return record_cache.RecordView.whole({"image": image}, "image")


def photo_stream(source, split, places365_data_dir, seed, cache_mb):
    """``(items, view)``: an unbounded, shuffled stream and ``item -> RecordView`` of its photo.

    The view holds the decoded uint8 [H, W, 3] photo as ``fields["image"]``; for real
    shards held in memory it names the photo's rows in the cache, so a crop copies only
    its window (``record_cache``).
    """
    if _is_shard_dir(source):
        manifest = shards.read_manifest(source)
        if manifest["kind"] != schema.KIND_REAL:
            raise ValueError(
                f"{source!r} holds {manifest['kind']!r} shards; a real domain needs kind 'real'."
            )
        files = shards.list_shards(source, split)
        # Decoded once and held in memory when they fit cache_mb (the same stream).
        records = record_cache.RecordSource(
            files, _decode_real_image, ("image",), cache_mb, f"real {split!r}"
        )
        ds = records.handles().repeat().shuffle(len(files), seed=seed)
        ds = ds.interleave(records.records, cycle_length=min(4, len(files)))
        return ds.shuffle(256, seed=seed), records.view
    return _decoded_images(source, split, places365_data_dir, seed), _whole_photo


def _decoded_images(source, split, places365_data_dir, seed) -> tf.data.Dataset:
    """Unbounded, shuffled stream of decoded uint8 [H, W, 3] photos (not real shards)."""
    if source == EMBEDDED:
        # At Places365's scale, as ``write_real_shards`` stores them: the same real domain
        # read directly or from the demo's shards.
        encoded = [
            cv2.imencode(".png", cv2.cvtColor(s["image"], cv2.COLOR_RGB2BGR))[1].tobytes()
            for s in iter_real_samples(EMBEDDED)
        ]
        ds = tf.data.Dataset.from_tensor_slices(encoded)
        ds = ds.map(lambda png: tf.io.decode_png(png, channels=3)).cache()
        return ds.repeat().shuffle(len(encoded), seed=seed)
    if source == PLACES365:
        builder = _places365_builder(places365_data_dir)
        ds = builder.as_dataset(split=split, shuffle_files=seed is None)
        return ds.repeat().shuffle(1024, seed=seed).map(lambda e: e["image"])
    paths = folder_photo_paths(source)
    ds = tf.data.Dataset.from_tensor_slices(paths).repeat().shuffle(len(paths), seed=seed)

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.ensure_shape(image, [None, None, 3])

    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_real_dataset(
    source: str = EMBEDDED,
    image_size: int = 227,
    seed: int | None = None,
    min_scale: float = 0.3,
    jitter: bool = True,
    split: str = "train",
    places365_data_dir: str | None = None,
    cache_mb: float = record_cache.DEFAULT_CACHE_MB,
) -> tf.data.Dataset:
    """Unbounded ``{"image": float32 [S, S, 3]}`` stream of augmented real crops.

    Args:
        source: ``"embedded"``, ``"places365"``, a real-shard directory, or a photo folder.
        image_size: output side S.
        seed: integer for a reproducible stream (tests), ``None`` for fresh randomness.
        min_scale: smallest crop side as a fraction of the photo's shorter side.
        jitter: apply photometric jitter (brightness/contrast/saturation/hue).
        cache_mb: real shards whose decoded photos fit this budget (MB) are decoded once
            and held in memory; 0 decodes every time. The stream is the same either way.
            (The embedded photos are always held decoded; folders and Places365 never.)
    """
    items, view = photo_stream(source, split, places365_data_dir, seed, cache_mb)

    def augment_one(item, element_seed):
        seeds = tf.random.experimental.stateless_split(element_seed, num=3)
        # uint8 where it lies: the crop copies its window and converts only that to float.
        fields, first_row, height, width = view(item)
        window = augment.random_crop_window(height, width, seeds[0], min_scale=min_scale)
        example = augment.crop_and_resize(fields, *window, image_size, first_row=first_row)
        example = augment.random_flip_left_right(example, seeds[1])
        if jitter:
            example["image"] = augment.photometric_jitter(example["image"], seeds[2])
        return {"image": example["image"]}

    return augment.zip_with_seeds(items, seed).map(
        augment_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None
    )
