"""Pre-activation taps: the BN output the reference code's discriminator reads.

The backbone's public output (tap name → post-ReLU tensor, what the domain-gap
evaluation and the exports read) must not change; the pre-activation taps are extra, on
request, and the network's own forward still continues through the ReLU.
"""

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.models import build_multitask_model
from mtsyn_tf.models.presets import ALEXNET_TAPS, VGG16_TAPS


@pytest.mark.parametrize(
    "preset, size, taps", [("small", 227, ALEXNET_TAPS), ("small_vgg16", 224, VGG16_TAPS)]
)
def test_pre_activation_taps_are_the_bn_outputs_before_relu(preset, size, taps):
    model = build_multitask_model(preset)
    images = tf.random.stateless_uniform([2, size, size, 3], seed=[1, 2])
    plain = model.backbone(images, training=False)
    post, pre = model.backbone(images, training=False, return_pre_activation=True)
    assert tuple(plain) == tuple(post) == tuple(pre) == taps  # same keys, same order
    for name in taps:
        np.testing.assert_array_equal(plain[name].numpy(), post[name].numpy(), err_msg=name)
        # ReLU is exact: the post-ReLU tap is max(pre, 0) bit for bit.
        np.testing.assert_array_equal(
            post[name].numpy(), np.maximum(pre[name].numpy(), 0.0), err_msg=name
        )
        assert (pre[name].numpy() < 0).any(), name  # not rectified
    # up_to stops at the tap in both forms.
    post5, pre5 = model.backbone(images, up_to=taps[2], return_pre_activation=True)
    assert tuple(post5) == tuple(pre5) == taps[:3]


def test_forward_gives_pre_activation_taps_and_unchanged_predictions():
    model = build_multitask_model("small")
    images = tf.random.stateless_uniform([1, 227, 227, 3], seed=[3, 4])
    taps, predictions = model.forward(images, training=False)
    pre, predictions_pre = model.forward(images, training=False, pre_activation=True)
    for task in predictions:
        np.testing.assert_array_equal(predictions[task].numpy(), predictions_pre[task].numpy())
    np.testing.assert_array_equal(taps["conv5"].numpy(), np.maximum(pre["conv5"].numpy(), 0.0))
    assert pre["conv5"].numpy().min() < 0 <= taps["conv5"].numpy().min()
