"""get_config / from_config and .keras round trips give the same outputs for the same weights.

Every weight (BN moving statistics included) is first set to random values, so a weight
that is dropped or mis-assigned on reload changes the outputs.
"""

import keras
import numpy as np
import pytest

from mtsyn_tf.models import (
    MultiTaskNet,
    PatchDiscriminator,
    build_discriminator,
    build_multitask_model,
)
from mtsyn_tf.models.layers import ConvBNAct


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) * 0.1 for w in model.get_weights()]
    )


def images(size, seed=0):
    return np.random.default_rng(seed).random((2, size, size, 3), dtype=np.float32)


def assert_same_outputs(a, b):
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


@pytest.fixture(scope="module", params=["small", "small_vgg16"])
def model(request):
    net = build_multitask_model(request.param)
    randomize(net)
    return net


def test_get_config_is_plain_python(model):
    # Keras tracks dicts set on a model (TrackedDict); a config must not carry them, or
    # copying the config copies the whole model.
    config = model.get_config()
    assert type(config["preset"]) is dict
    assert all(type(v) in (dict, list, tuple, str, int, float) for v in config["preset"].values())
    assert type(model.backbone.get_config()["widths"]) is dict


def test_from_config_round_trip(model):
    clone = MultiTaskNet.from_config(model.get_config()).build_for_size()
    clone.set_weights(model.get_weights())
    x = images(model.image_size)
    assert_same_outputs(model(x, training=False), clone(x, training=False))
    assert clone.get_config() == model.get_config()


def test_keras_file_round_trip(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, MultiTaskNet)
    x = images(model.image_size, seed=1)
    assert_same_outputs(model(x, training=False), loaded(x, training=False))
    assert_same_outputs(model.predict_physical(x), loaded.predict_physical(x))


@pytest.mark.parametrize("preset, tap_shape", [("small", (13, 64)), ("small_vgg16", (14, 32))])
def test_discriminator_round_trip(preset, tap_shape):
    disc = build_discriminator(preset)
    size, channels = tap_shape
    features = np.random.default_rng(2).normal(size=(2, size, size, channels)).astype("float32")
    disc(features)
    randomize(disc)
    clone = PatchDiscriminator.from_config(disc.get_config())
    clone(features)
    clone.set_weights(disc.get_weights())
    np.testing.assert_array_equal(disc(features), clone(features))
    assert clone.kernel_size == disc.kernel_size == (3 if preset == "small" else 4)


def test_conv_bn_act_config_round_trip():
    layer = ConvBNAct(4, 3, strides=2, padding=1, activation="leaky_relu", name="c")
    x = np.random.default_rng(3).normal(size=(1, 9, 9, 2)).astype("float32")
    layer(x)
    randomize(layer)
    clone = ConvBNAct.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x), clone(x))
    assert tuple(clone(x).shape) == (1, 5, 5, 4)  # (9 + 2 − 3) / 2 + 1
