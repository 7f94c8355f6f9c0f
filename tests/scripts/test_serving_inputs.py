"""predict_bytes (the TF Serving signature taking encoded files) refuses a wrong rank clearly.

A loaded signature does not enforce its declared rank; before the in-graph check a scalar
string reached ``tf.map_fn`` and failed with a slicing error that named no input.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.export.serving import export_for_serving
from mtsyn_tf.models import build_multitask_model


@pytest.fixture(scope="module")
def predict_bytes(tmp_path_factory):
    model = build_multitask_model("small")
    path = export_for_serving(model, str(tmp_path_factory.mktemp("serving")), warmup=False)
    return tf.saved_model.load(path).signatures["predict_bytes"]


def _png() -> bytes:
    image = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.mark.parametrize("shape", ["scalar", "matrix"])
def test_wrong_rank_fails_with_a_message(predict_bytes, shape):
    blobs = tf.constant(_png()) if shape == "scalar" else tf.constant([[_png()]])
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        predict_bytes(image_bytes=blobs)
    assert "image_bytes must be a 1-D batch" in str(info.value)


def test_a_batch_of_one_works(predict_bytes):
    outputs = predict_bytes(image_bytes=tf.constant([_png()]))
    assert outputs["depth"].shape == (1, 227, 227, 1)
    assert bool(tf.reduce_all(tf.math.is_finite(outputs["depth"])))
