"""VGG16-BN base network (SPEC §2 VGG16 variant, used for NYUD normals)."""

from __future__ import annotations

import keras
from keras import layers

from mtsyn_tf.models.layers import ConvBNAct
from mtsyn_tf.models.vgg16.config import VGG16_TAPS

# (block, number of 3×3 convs); a 2×2 max-pool follows blocks 1–4, none after block 5.
_BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class VGG16Backbone(keras.Model):
    """conv1_1 … conv5_3 with BatchNorm; returns the taps used as skips and for D."""

    def __init__(self, widths: dict, sync_batchnorm: bool = False, **kwargs):
        super().__init__(**kwargs)
        missing = [f"block{b}" for b, _ in _BLOCKS if f"block{b}" not in widths]
        if missing:
            raise ValueError(
                f"widths must give block1..block5. Missing: {missing}. Received: {widths}"
            )
        self.widths = dict(widths)
        self.sync_batchnorm = sync_batchnorm

        # === Layers ===
        self.convs = {}
        for block, count in _BLOCKS:
            for i in range(1, count + 1):
                name = f"conv{block}_{i}"
                layer = ConvBNAct(
                    self.widths[f"block{block}"],
                    3,
                    padding="same",
                    sync_batchnorm=sync_batchnorm,
                    name=name,
                )
                setattr(self, name, layer)
                self.convs[name] = layer
        self.pools = [layers.MaxPooling2D(2, strides=2, name=f"pool{b}") for b in range(1, 5)]

    def call(self, images, training=None, up_to: str = "conv5_3", return_pre_activation=False):
        """Taps ``{name: post-ReLU output}``; with ``return_pre_activation`` also the BN
        outputs before each tap's ReLU: ``(taps, pre_activation_taps)``."""
        if up_to not in VGG16_TAPS:
            raise ValueError(f"up_to must be one of {VGG16_TAPS}. Received: up_to={up_to!r}")
        taps, pre = {}, {}
        x = images - 0.5
        for block, count in _BLOCKS:
            if block > 1:
                x = self.pools[block - 2](x)
            for i in range(1, count + 1):
                x, x_pre = self.convs[f"conv{block}_{i}"](
                    x, training=training, return_pre_activation=True
                )
            tap = f"conv{block}_{count}"
            taps[tap], pre[tap] = x, x_pre
            if tap == up_to:
                break
        return (taps, pre) if return_pre_activation else taps

    def get_config(self):
        return {
            "widths": dict(self.widths),
            "sync_batchnorm": self.sync_batchnorm,
            "name": self.name,
        }
