"""tfds feature spec shared by our synthetic-dataset builders (same keys as CONTRACTS.md)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

_ZLIB = tfds.features.Encoding.ZLIB


def synthetic_features() -> tfds.features.FeaturesDict:
    """Image as PNG; dense maps zlib-compressed (lossless, any size)."""
    tensor = tfds.features.Tensor
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
            "depth": tensor(shape=(None, None), dtype=np.float32, encoding=_ZLIB),
            "normals": tensor(shape=(None, None, 3), dtype=np.float32, encoding=_ZLIB),
            "instance": tensor(shape=(None, None), dtype=np.int32, encoding=_ZLIB),
            "contour": tensor(shape=(None, None), dtype=np.uint8, encoding=_ZLIB),
            "valid": tensor(shape=(None, None), dtype=np.bool_, encoding=_ZLIB),
            "intrinsics": tensor(shape=(4,), dtype=np.float32),
            "scene_id": tfds.features.Text(),
            "image_id": tfds.features.Text(),
            "source": tfds.features.Text(),
        }
    )
