"""The standard AlexNet that transfer protocols fine-tune: no BN, no LRN, no groups.

Input float32 [B, 227, 227, 3] RGB in [0, 1]: conv1 (11, s4) → pool1 → conv2 (5, pad 2) →
pool2 → conv3, conv4, conv5 (3, pad 1) → pool5 (3, s2) → 6×6×C → flatten → fc6 → fc7,
each conv/fc with bias and a separate ReLU. ``alexnet_convert`` fills it from a trained
base, ``caffe_layout`` writes its weights in Caffe's layout, ``rescale`` rescales it.
"""

from __future__ import annotations

import keras
from keras import layers

PARAM_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
_CONVS = {"conv1": (11, 4, "valid"), "conv2": (5, 1, "same"), "conv3": (3, 1, "same"),
          "conv4": (3, 1, "same"), "conv5": (3, 1, "same")}  # fmt: skip


def build_standard_alexnet(widths: dict, image_size: int = 227) -> keras.Model:
    """A standard AlexNet returning every post-ReLU tap conv1 … fc7 as a dict.

    Each parameter layer is linear and followed by a separate ReLU layer, so the
    pre-activations (``<layer>`` outputs) stay reachable for data-dependent rescaling.
    """
    images = keras.Input((image_size, image_size, 3), name="image")
    taps, x = {}, images
    for name in PARAM_LAYERS[:5]:
        kernel, stride, padding = _CONVS[name]
        if name in ("conv2", "conv3"):
            x = layers.MaxPooling2D(3, strides=2, name=f"pool{int(name[-1]) - 1}")(x)
        x = layers.Conv2D(widths[name], kernel, strides=stride, padding=padding, name=name)(x)
        taps[name] = x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = layers.Dense(widths[name], name=name)(x)
        taps[name] = x = layers.ReLU(name=f"{name}_relu")(x)
    return keras.Model(images, taps, name="alexnet")


def preactivation_model(alexnet: keras.Model) -> keras.Model:
    """Same weights; outputs each parameter layer's pre-ReLU output, by layer name."""
    return keras.Model(
        alexnet.input, {name: alexnet.get_layer(name).output for name in PARAM_LAYERS}
    )
