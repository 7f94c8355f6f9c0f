"""Suite-wide fixtures: a tiny synthetic dataset on disk in the project's shard format.

Also keeps the whole suite off the network: tfds' cloud bucket (``gs://tfds-data``) is
switched off before any test runs (see ``_no_tfds_bucket``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtsyn_tf import geometry  # noqa: E402


class NetworkAccessInTests(AssertionError):
    """A test tried to reach tfds' cloud bucket; tests must run offline."""


def _no_tfds_bucket() -> None:
    """Switches off every tfds lookup of ``gs://tfds-data`` for the whole suite.

    tfds looks there for pre-computed ``dataset_info`` (``DatasetInfo.initialize_from_bucket``,
    on every builder construction without a prepared copy) and for prepared datasets
    (``DownloadConfig.try_download_gcs``, default True). Without network either is a stall
    until a timeout, not a test. ``gcs_utils._is_gcs_disabled`` gates both (its default
    differs between tfds releases, so it is set here), ``initialize_from_bucket`` becomes a
    no-op, and the one primitive that touches the bucket (``gcs_utils.exists``) raises, so
    a future tfds path that bypasses the flag fails loudly instead of waiting.
    ``tests/test_no_network.py`` checks that a builder never reaches any of them.
    """
    from tensorflow_datasets.core import dataset_info
    from tensorflow_datasets.core.utils import gcs_utils

    def refuse(path, *args, **kwargs):
        raise NetworkAccessInTests(f"A test tried to reach tfds' bucket: {path}")

    gcs_utils._is_gcs_disabled = True
    gcs_utils.exists = refuse
    gcs_utils.download_gcs_folder = refuse
    dataset_info.DatasetInfo.initialize_from_bucket = lambda self: None


_no_tfds_bucket()


def make_room_sample(index: int, size: int = 48) -> dict:
    """A box room seen from inside, with one block in front of the back wall.

    Image brightness follows the surface orientation and distance, so the three tasks
    are learnable from the image (a trained model must beat an untrained one).
    """
    rng = np.random.default_rng(index)
    k = geometry.intrinsics_from_fov(size, size, 60.0)
    rays = geometry.pixel_rays(size, size, k)
    back = rng.uniform(3.0, 6.0)
    planes = [  # (normal n, offset c) for the plane n·X = c, normals toward the camera
        (np.array([0.0, 0.0, -1.0]), -back, 1),
        (np.array([1.0, 0.0, 0.0]), -rng.uniform(1.5, 2.5), 2),
        (np.array([-1.0, 0.0, 0.0]), -rng.uniform(1.5, 2.5), 3),
        (np.array([0.0, -1.0, 0.0]), -rng.uniform(1.0, 1.6), 4),
    ]
    depth = np.full((size, size), np.inf)
    normals = np.zeros((size, size, 3))
    instance = np.zeros((size, size), np.int32)
    for n, c, ident in planes:
        denom = rays @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            z = c / denom
        hit = (z > 0) & (z < depth)
        depth[hit], normals[hit], instance[hit] = z[hit], n, ident
    # A block: a fronto-parallel square at a random depth.
    z0 = rng.uniform(1.5, back - 0.5)
    y0, x0 = rng.integers(size // 4, size // 2, 2)
    s = size // 4
    block = np.zeros_like(instance, bool)
    block[y0 : y0 + s, x0 : x0 + s] = True
    depth[block], normals[block], instance[block] = z0, (0.0, 0.0, -1.0), 5
    depth[~np.isfinite(depth)] = 0.0
    shade = 0.3 + 0.5 * np.abs(normals @ np.array([0.3, -0.8, -0.5])) + 0.2 / np.maximum(depth, 1.0)
    image = np.clip(shade[..., None] * rng.uniform(0.6, 1.0, 3) * 255, 0, 255).astype(np.uint8)
    return {
        "image": image,
        "depth": depth.astype(np.float32),
        "normals": normals.astype(np.float32),
        "instance": instance,
        "contour": geometry.contours_from_instances(instance),
        "valid": depth > 0,
        "intrinsics": k.astype(np.float32),
        "scene_id": f"room{index}",
        "image_id": f"room{index}_0",
        "source": "test_fixture",
    }


def write_tiny_synthetic_dataset(
    directory: str, num_train: int = 8, num_test: int = 4, size: int = 48
) -> str:
    from mtsyn_tf.data import schema, shards

    for split, ids in (("train", range(num_train)), ("test", range(1000, 1000 + num_test))):
        records = (schema.encode_synthetic(make_room_sample(i, size)) for i in ids)
        shards.write_shards(
            records, directory, split, num_shards=2, kind="synthetic", source="test_fixture"
        )
    return directory


@pytest.fixture(scope="session")
def tiny_synthetic_dir(tmp_path_factory):
    """8 train + 4 test room images (48×48) as shards with a manifest."""
    return write_tiny_synthetic_dataset(str(tmp_path_factory.mktemp("tiny_synthetic")))
