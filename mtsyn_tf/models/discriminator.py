"""Patch discriminator D: one synthetic-vs-real logit per feature patch (SPEC §2)."""

from __future__ import annotations

import keras
from keras import layers

from mtsyn_tf.models.layers import ConvBNAct


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class PatchDiscriminator(keras.Model):
    """D1 (k×k, stride 2) → D2 (1×1) → D3 (1×1, one logit), BN + LeakyReLU(0.2) between.

    On AlexNet's conv5 (13×13) with k = 3 this gives the paper's 6×6 patch logits; on
    VGG16's conv5_3 (14×14) with k = 4, also 6×6. Logits, never probabilities: the
    adversarial losses use a numerically stable sigmoid cross-entropy.
    """

    def __init__(
        self, widths=(256, 512), kernel_size: int = 3, sync_batchnorm: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        if len(widths) != 2:
            raise ValueError(f"widths must give (D1, D2) channels. Received: widths={widths}")
        self.widths = tuple(widths)
        self.kernel_size = kernel_size
        self.sync_batchnorm = sync_batchnorm

        # === Layers ===
        self.d1 = ConvBNAct(
            widths[0],
            kernel_size,
            strides=2,
            activation="leaky_relu",
            sync_batchnorm=sync_batchnorm,
            name="d1",
        )
        self.d2 = ConvBNAct(
            widths[1], 1, activation="leaky_relu", sync_batchnorm=sync_batchnorm, name="d2"
        )
        self.d3 = layers.Conv2D(1, 1, name="d3")

    def call(self, features, training=None):
        x = self.d1(features, training=training)
        x = self.d2(x, training=training)
        return self.d3(x)

    def get_config(self):
        return {
            "widths": self.widths,
            "kernel_size": self.kernel_size,
            "sync_batchnorm": self.sync_batchnorm,
            "name": self.name,
        }
