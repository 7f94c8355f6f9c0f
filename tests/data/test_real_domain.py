import os

import cv2
import numpy as np
import pytest

from mtsyn_tf.data import real_domain, shards


def _write_photos(folder):
    os.makedirs(os.path.join(folder, "sub", "deeper"))
    rng = np.random.default_rng(0)
    for i, rel in enumerate(["a.png", "sub/b.JPG", "sub/deeper/c.jpeg"]):
        image = rng.integers(0, 256, (20 + 4 * i, 30, 3), dtype=np.uint8)
        assert cv2.imwrite(os.path.join(folder, rel), image)
    open(os.path.join(folder, "notes.txt"), "w").write("ignored")


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
    images = _take(real_domain.make_real_dataset(folder, image_size=8, seed=1), 4)
    assert all(i.shape == (8, 8, 3) for i in images)
    out = str(tmp_path / "shards")
    written = real_domain.write_real_shards(folder, out, "train", 2, image_format="jpeg")
    assert len(written["shards"]) == 2 and shards.verify_shards(out, "train") == 3
    assert os.path.isfile(written["sample_grid"])
    assert shards.read_manifest(out)["source"] == "real_folder"
    images = _take(real_domain.make_real_dataset(out, image_size=8, seed=1, jitter=False), 4)
    assert all(i.shape == (8, 8, 3) for i in images)


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
