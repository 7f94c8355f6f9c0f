"""BN folding, standard-AlexNet conversion, Krähenbühl rescaling, Caffe blobs, artifacts."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

from mtsyn_tf.export.alexnet_convert import (
    PARAM_LAYERS,
    convert_to_standard_alexnet,
    preactivation_model,
    save_standard_alexnet,
)
from mtsyn_tf.export.bn_folding import fold_batchnorm
from mtsyn_tf.export.caffe_layout import IMAGENET_MEAN_BGR, caffe_blobs
from mtsyn_tf.export.onnx_export import OnnxRunner
from mtsyn_tf.export.rescale import gradient_ratios, krahenbuhl_rescale


@pytest.fixture(scope="module")
def alexnet(small_model):
    return convert_to_standard_alexnet(small_model)


def test_fold_batchnorm_matches_keras_conv_then_bn():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 9, 4)).astype(np.float32)
    conv = keras.layers.Conv2D(5, 3, use_bias=True)
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    bn(conv(x))
    conv.set_weights([rng.standard_normal((3, 3, 4, 5)), rng.standard_normal(5)])
    stats = [
        rng.uniform(0.5, 1.5, 5),
        rng.normal(0, 1, 5),
        rng.normal(0, 1, 5),
        rng.uniform(0.1, 3, 5),
    ]
    bn.set_weights(stats)
    kernel, bias = fold_batchnorm(*conv.get_weights(), *stats, epsilon=1e-3)
    folded = tf.nn.conv2d(x, kernel, 1, "VALID") + bias
    np.testing.assert_allclose(folded, bn(conv(x), training=False), atol=1e-5)


def test_stride1_pool_at_odd_positions_is_stride2_pool():
    """The exact part of the fc6 mapping, isolated: pool5(s1, same)[2m+1] == pool5(s2)[m]."""
    x = np.random.default_rng(1).standard_normal((2, 13, 13, 4)).astype(np.float32)
    p1 = keras.layers.MaxPooling2D(3, strides=1, padding="same")(x).numpy()
    p2 = keras.layers.MaxPooling2D(3, strides=2)(x).numpy()
    np.testing.assert_array_equal(p1[:, 1::2, 1::2], p2)
    assert not np.array_equal(p1[:, 0:12:2, 0:12:2], p2)  # the even positions differ


def test_conversion_exact_for_convs_and_centre_fc(small_model, alexnet, images):
    expected = small_model.backbone(images, training=False)
    got = alexnet(images)
    for tap in PARAM_LAYERS[:5]:
        scale = float(np.abs(expected[tap]).max())
        np.testing.assert_allclose(got[tap], expected[tap], atol=1e-5 * scale, rtol=0)
    for tap in ("fc6", "fc7"):
        centre = expected[tap].numpy()[:, 6, 6]
        np.testing.assert_allclose(got[tap], centre, atol=1e-5 * np.abs(centre).max(), rtol=0)
    # Other positions of the 13×13 map are what the standard net does not compute.
    assert np.abs(got["fc6"] - expected["fc6"].numpy()[:, 5, 5]).max() > 1e-2


def test_krahenbuhl_rescaling(small_model, images):
    net = convert_to_standard_alexnet(small_model)
    before = {k: v.numpy() for k, v in net(images).items()}
    report = krahenbuhl_rescale(net, images, between_layer=False)
    pre = preactivation_model(net)(images)
    for name in PARAM_LAYERS:
        std = pre[name].numpy().reshape(-1, pre[name].shape[-1]).std(0)
        live = report["within_layer_sigmas"][name] != 1.0
        np.testing.assert_allclose(std[live], 1.0, rtol=1e-3)
    # Function preserved: every tap is the original one scaled per channel by 1/σ (the next
    # layer compensates), so only fc7's output scale changes for a downstream user.
    after = net(images)
    for name in PARAM_LAYERS:
        sigma = report["within_layer_sigmas"][name]
        np.testing.assert_allclose(
            after[name] * sigma, before[name], atol=1e-4 * before[name].max()
        )
    np.testing.assert_allclose(after["fc7"] * sigma, before["fc7"], atol=1e-4 * before["fc7"].max())

    history = krahenbuhl_rescale(net, images)["gradient_ratios"]
    top = np.random.default_rng(0).standard_normal((len(images), net.output["fc7"].shape[-1]))
    ratios = np.array(
        list(gradient_ratios(net, tf.constant(images), tf.constant(top, tf.float32)).values())
    )
    first = np.array(list(history[0].values()))
    assert first.max() / first.min() > 1.5  # something to equalise …
    assert ratios.max() / ratios.min() < 1.01  # … and equalised
    final = net(images)
    # float32 round-off compounds over seven rescaled layers and the gradient-ratio passes:
    # measured up to 5e-4 of the max (oneDNN, 2 threads), so 1e-3 here.
    np.testing.assert_allclose(final["fc7"] * sigma, before["fc7"], atol=1e-3 * before["fc7"].max())


def test_caffe_blobs_reproduce_conv1_and_fc6_on_bgr_0_255(alexnet, images):
    blobs = caffe_blobs(alexnet)
    rgb01 = images[:2]
    bgr = rgb01[..., ::-1] * 255.0 - np.asarray(IMAGENET_MEAN_BGR, np.float32)
    nchw = bgr.transpose(0, 3, 1, 2).astype(np.float64)
    w, b = blobs["conv1_w"].astype(np.float64), blobs["conv1_b"]
    patches = sliding_window_view(nchw, (11, 11), axis=(2, 3))[:, :, ::4, ::4]  # N,C,55,55,11,11
    conv1 = np.einsum("nchwij,ocij->nohw", patches, w) + b[None, :, None, None]
    expected = preactivation_model(alexnet)(rgb01)
    np.testing.assert_allclose(conv1.transpose(0, 2, 3, 1), expected["conv1"], atol=1e-4)
    assert blobs["fc6_w"].shape == (alexnet.get_layer("fc6").units, blobs["conv5_w"].shape[0] * 36)
    pool5 = alexnet.get_layer("pool5").output
    pool5_nhwc = keras.Model(alexnet.input, pool5)(rgb01).numpy()
    fc6 = pool5_nhwc.transpose(0, 3, 1, 2).reshape(2, -1) @ blobs["fc6_w"].T + blobs["fc6_b"]
    np.testing.assert_allclose(fc6, expected["fc6"], atol=1e-4 * np.abs(fc6).max())


def test_artifacts_round_trip(alexnet, images, tmp_path):
    paths = save_standard_alexnet(alexnet, str(tmp_path / "alexnet"), caffe=True)
    with pytest.raises(ValueError, match="already exists"):
        save_standard_alexnet(alexnet, str(tmp_path / "alexnet"))
    expected = {k: v.numpy() for k, v in alexnet(images).items()}
    reloaded = keras.saving.load_model(paths["keras"])(images)
    served = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"](
        image=tf.constant(images)
    )
    onnx_out = OnnxRunner(paths["onnx"])(images)
    for tap, value in expected.items():
        np.testing.assert_allclose(reloaded[tap], value, atol=1e-6)
        np.testing.assert_allclose(served[tap], value, atol=1e-5)
        np.testing.assert_allclose(onnx_out[tap], value, atol=1e-4)
    assert set(np.load(paths["caffe_npz"]).files) == {"mean_bgr"} | {
        f"{n}_{s}" for n in PARAM_LAYERS for s in "wb"
    }
