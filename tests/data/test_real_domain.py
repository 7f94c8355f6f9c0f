import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.data import real_domain, schema, shards

# One flat RGB colour per photo: any crop, resize or flip of photo i is exactly colour i,
# so the stream's images identify their source photo and channel order. Values chosen
# to survive JPEG's chroma subsampling of a flat image to within 2 levels.
PHOTO_COLOURS = {
    "a.png": (200, 40, 10),
    "sub/b.JPG": (20, 180, 60),
    "sub/deeper/c.jpeg": (30, 70, 220),
}


def _write_photos(folder):
    os.makedirs(os.path.join(folder, "sub", "deeper"))
    for i, (rel, rgb) in enumerate(PHOTO_COLOURS.items()):
        image = np.empty((20 + 4 * i, 30, 3), np.uint8)
        image[:] = rgb[::-1]  # cv2 writes BGR
        assert cv2.imwrite(os.path.join(folder, rel), image)
    open(os.path.join(folder, "notes.txt"), "w").write("ignored")


def _assert_flat_photo_colours(images):
    """Every image is one photo's flat colour (RGB order, scaled to [0, 1]) and every
    photo appears. JPEG decoders differ by a level or two on flat colour: atol 3/255."""
    colours = np.array(list(PHOTO_COLOURS.values())) / 255.0
    seen = set()
    for image in images:
        assert image.shape == (8, 8, 3) and image.dtype == np.float32
        mean = image.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(image, np.broadcast_to(mean, image.shape), atol=1e-6)
        distance = np.abs(colours - mean).max(axis=1)
        assert distance.min() <= 3 / 255, (mean * 255, colours * 255)
        seen.add(int(distance.argmin()))
    assert seen == {0, 1, 2}


def _take(ds, n):
    return [e["image"].numpy() for e in ds.take(n)]


def test_embedded_photos():
    photos = real_domain.embedded_photos()
    ids = [p["image_id"] for p in photos]
    assert (
        len(photos) == 8 and "sklearn/china.jpg" in ids and "skimage/stereo_motorcycle_left" in ids
    )
    for p in photos:
        assert p["image"].dtype == np.uint8 and p["image"].ndim == 3 and p["image"].shape[2] == 3


def test_limit_short_side_downscales_to_places365_scale_only():
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (427, 640, 3), dtype=np.uint8)
    small = real_domain.limit_short_side(wide, 256)
    assert small.shape == (256, 384, 3) and small.dtype == np.uint8  # aspect kept
    # Area averaging: each output pixel is a mean of its footprint, so the image mean stays.
    np.testing.assert_allclose(small.mean(axis=(0, 1)), wide.mean(axis=(0, 1)), atol=1.0)
    tall = rng.integers(0, 256, (741, 500, 3), dtype=np.uint8)
    assert real_domain.limit_short_side(tall, 256).shape == (379, 256, 3)
    tiny = wide[:200, :300]
    assert real_domain.limit_short_side(tiny, 256) is tiny  # never upscaled
    assert real_domain.limit_short_side(wide, None) is wide
    for bad in (8, 256.0, True):
        with pytest.raises(ValueError, match="short_side must be None"):
            real_domain.limit_short_side(wide, bad)


def test_real_shards_store_photos_at_places365_scale(tmp_path):
    def stored_shapes(out, **kwargs):
        real_domain.write_real_shards("embedded", out, **kwargs)
        return [
            schema.decode_real(r)["image"].shape
            for r in tf.data.TFRecordDataset(shards.list_shards(out, "train"))
        ]

    default = stored_shapes(str(tmp_path / "default"))
    full = stored_shapes(str(tmp_path / "full"), short_side=None)
    originals = [p["image"].shape for p in real_domain.embedded_photos()]
    assert full == originals
    assert [min(s[:2]) for s in default] == [min(256, min(s[:2])) for s in originals]
    assert min(min(s[:2]) for s in originals) > 256  # so every embedded photo was reduced
    with pytest.raises(ValueError, match="short_side must be None"):
        real_domain.write_real_shards("embedded", str(tmp_path / "bad"), short_side=4)


def test_embedded_stream_shapes_and_determinism():
    a = _take(real_domain.make_real_dataset("embedded", image_size=16, seed=3), 3)
    b = _take(real_domain.make_real_dataset("embedded", image_size=16, seed=3), 3)
    for x, y in zip(a, b):
        assert x.shape == (16, 16, 3) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], a[1])


def test_folder_source_and_shards(tmp_path):
    folder = str(tmp_path / "photos")
    _write_photos(folder)
    paths = real_domain.folder_photo_paths(folder)
    assert [os.path.relpath(p, folder) for p in paths] == [
        "a.png",
        "sub/b.JPG",
        "sub/deeper/c.jpeg",
    ]
    _assert_flat_photo_colours(
        _take(real_domain.make_real_dataset(folder, image_size=8, seed=1, jitter=False), 12)
    )
    out = str(tmp_path / "shards")
    written = real_domain.write_real_shards(folder, out, "train", 2, image_format="jpeg")
    assert len(written["shards"]) == 2 and shards.verify_shards(out, "train") == 3
    assert os.path.isfile(written["sample_grid"])
    assert shards.read_manifest(out)["source"] == "real_folder"
    _assert_flat_photo_colours(
        _take(real_domain.make_real_dataset(out, image_size=8, seed=1, jitter=False), 12)
    )


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        real_domain.folder_photo_paths(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=f"No photos .* under '{tmp_path}'"):
        real_domain.folder_photo_paths(str(tmp_path))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        real_domain.make_real_dataset(str(tmp_path))
    truncated = tmp_path / "t.png"
    truncated.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="t.png"):
        real_domain.read_photo(str(truncated))


def test_places365_missing_names_tfds_command(tmp_path):
    with pytest.raises(ValueError, match="tfds build places365_small --data_dir="):
        real_domain.make_real_dataset("places365", places365_data_dir=str(tmp_path))
