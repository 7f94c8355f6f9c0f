"""TF Serving export: every signature against the Keras model, errors, layout, warmup."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from mtsyn_tf.export.preprocess import decode_batch
from mtsyn_tf.export.serving import export_for_serving, next_version
from mtsyn_tf.export.warmup import WARMUP_FILENAME, read_warmup_file
from tests.export.conftest import encode

CHANNELS = {"depth": 1, "normals": 3, "contour": 1}


@pytest.fixture(scope="module")
def export_dir(small_model, tmp_path_factory):
    return export_for_serving(small_model, str(tmp_path_factory.mktemp("serving") / "mtsyn"))


@pytest.fixture(scope="module")
def loaded(export_dir):
    return tf.saved_model.load(export_dir)


def test_layout_is_tf_serving_versioned(export_dir):
    base = os.path.dirname(export_dir)
    assert os.path.basename(export_dir) == "1"
    assert sorted(os.listdir(base)) == ["1"]  # no temporary directory left behind
    assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))
    assert next_version(base) == 2


def test_every_image_signature_matches_keras(small_model, loaded, images):
    expected = {k: v.numpy() for k, v in small_model.predict_physical(images).items()}
    names = [
        "serving_default",
        "predict_all",
        "predict_depth",
        "predict_normals",
        "predict_contour",
    ]
    for name in names:
        outputs = loaded.signatures[name](image=tf.constant(images))
        wanted = list(CHANNELS) if name in ("serving_default", "predict_all") else [name[8:]]
        assert sorted(outputs) == sorted(wanted), name
        for key, value in outputs.items():
            np.testing.assert_allclose(value.numpy(), expected[key], atol=1e-5, rtol=0)
    # Physical units: positive depth, unit normals, probabilities.
    assert expected["depth"].min() > 0
    np.testing.assert_allclose(np.linalg.norm(expected["normals"], axis=-1), 1.0, atol=1e-5)
    assert 0 <= expected["contour"].min() and expected["contour"].max() <= 1


def test_predict_bytes_decodes_any_size_gray_and_rgba(small_model, loaded):
    rng = np.random.default_rng(3)
    blobs = [
        encode(rng.random((64, 48, 3)), "PNG"),
        encode(rng.random((30, 30, 3)), "JPEG"),
        encode(rng.random((50, 40, 3)), "PNG", mode="L"),
        encode(rng.random((20, 35, 3)), "PNG", mode="RGBA"),
    ]
    outputs = loaded.signatures["predict_bytes"](image_bytes=tf.constant(blobs))
    decoded = decode_batch(tf.constant(blobs), 227).numpy()
    expected = small_model.predict_physical(decoded)
    for key in CHANNELS:
        assert outputs[key].shape == (4, 227, 227, CHANNELS[key])
        np.testing.assert_allclose(outputs[key].numpy(), expected[key].numpy(), atol=1e-5, rtol=0)
    # Grayscale → three equal channels.
    np.testing.assert_array_equal(decoded[2, ..., 0], decoded[2, ..., 1])


def test_signatures_as_saved_model_cli_shows_them(export_dir, loaded):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    defs = proto.meta_graphs[0].signature_def
    assert set(defs) >= {"serving_default", "predict_all", "predict_bytes"} | {
        f"predict_{t}" for t in CHANNELS
    }
    assert list(defs["serving_default"].inputs) == ["image"]
    assert defs["serving_default"].inputs["image"].dtype == tf.float32.as_datatype_enum
    assert defs["predict_bytes"].inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    for key, channels in CHANNELS.items():
        dims = [d.size for d in defs["predict_all"].outputs[key].tensor_shape.dim]
        assert dims == [-1, 227, 227, channels]
    outputs = loaded.signatures["predict_depth"].structured_outputs
    assert list(outputs) == ["depth"] and outputs["depth"].shape.as_list() == [None, 227, 227, 1]


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((1, 64, 64, 3), np.float32), "must have shape [batch, 227, 227, 3]"),
        (np.zeros((1, 227, 227, 1), np.float32), "must have shape [batch, 227, 227, 3]"),
        (np.zeros((227, 227, 3), np.float32), "rank-4 batch"),
        (np.full((1, 227, 227, 3), 200.0, np.float32), "divide 0-255 images by 255"),
        (np.full((1, 227, 227, 3), np.nan, np.float32), "NaN or Inf"),
    ],
)
def test_bad_images_fail_with_a_message(loaded, bad, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=None) as info:
        loaded.signatures["predict_all"](image=tf.constant(bad))
    assert message in str(info.value)


def test_wrong_dtype_and_non_image_bytes_fail(loaded):
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)) as info:
        loaded.signatures["predict_all"](image=tf.zeros((1, 227, 227, 3), tf.float64))
    assert "float" in str(info.value)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        loaded.signatures["predict_bytes"](image_bytes=tf.constant([b"definitely not a png"]))
    assert "not a JPEG, PNG, GIF or BMP file" in str(info.value)


def test_warmup_file_parses_and_replays(export_dir, loaded):
    logs = read_warmup_file(os.path.join(export_dir, "assets.extra", WARMUP_FILENAME))
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "serving_default",
        "predict_bytes",
    ]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "mtsyn"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert outputs["depth"].shape == (1, 227, 227, 1)


def test_refuses_existing_version_and_fixed_batch(small_model, tmp_path):
    base = str(tmp_path / "m")
    path = export_for_serving(small_model, base, version=3, batch_size=2, warmup=False)
    with pytest.raises(ValueError, match="already exists"):
        export_for_serving(small_model, base, version=3)
    loaded = tf.saved_model.load(path)
    x = np.random.default_rng(0).random((2, 227, 227, 3), dtype=np.float32)
    assert loaded.signatures["predict_all"](image=tf.constant(x))["depth"].shape == (2, 227, 227, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exactly 2"):
        loaded.signatures["predict_all"](image=tf.constant(x[:1]))
    export_for_serving(small_model, base, version=3, overwrite=True, warmup=False)
    assert sorted(os.listdir(base)) == ["3"]
