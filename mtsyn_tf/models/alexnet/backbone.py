"""AlexNet-BN base network B and dilated bottleneck (SPEC §2)."""

from __future__ import annotations

import keras
from keras import layers

from mtsyn_tf.models.alexnet.config import ALEXNET_TAPS
from mtsyn_tf.models.layers import ConvBNAct

# The max-pool that precedes a layer (SPEC §2 table).
_POOL_BEFORE = {"conv2": "pool1", "conv3": "pool2", "fc6": "pool5"}


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class AlexNetBackbone(keras.Model):
    """conv1…conv5 (the base B) followed by the conv "fc6"/"fc7" bottleneck.

    ``call(images, up_to=tap)`` returns a dict of every tap up to and including ``tap``
    and stops there, so real images fed only to the discriminator never pay for fc6
    (≈ 13 of the ≈ 25 GFLOP of a forward pass at paper width).

    Images are float32 in [0, 1]; they are centred (x − 0.5) before conv1.
    """

    def __init__(self, widths: dict, sync_batchnorm: bool = False, **kwargs):
        super().__init__(**kwargs)
        missing = [t for t in ALEXNET_TAPS if t not in widths]
        if missing:
            raise ValueError(
                f"widths must give every tap {ALEXNET_TAPS}. Missing: {missing}. Received: {widths}"
            )
        self.widths = dict(widths)
        self.sync_batchnorm = sync_batchnorm
        w, sb = self.widths, sync_batchnorm

        # === Layers (SPEC §2 table) ===
        self.conv1 = ConvBNAct(
            w["conv1"], 11, strides=4, padding=0, sync_batchnorm=sb, name="conv1"
        )
        self.pool1 = layers.MaxPooling2D(3, strides=2, name="pool1")
        self.conv2 = ConvBNAct(w["conv2"], 5, padding=2, sync_batchnorm=sb, name="conv2")
        self.pool2 = layers.MaxPooling2D(3, strides=2, name="pool2")
        self.conv3 = ConvBNAct(w["conv3"], 3, padding=1, sync_batchnorm=sb, name="conv3")
        self.conv4 = ConvBNAct(w["conv4"], 3, padding=1, sync_batchnorm=sb, name="conv4")
        self.conv5 = ConvBNAct(w["conv5"], 3, padding=1, sync_batchnorm=sb, name="conv5")
        # Stride 1, not AlexNet's 2: keeps 13×13 for the dilated fc6.
        self.pool5 = layers.MaxPooling2D(3, strides=1, padding="same", name="pool5")
        self.fc6 = ConvBNAct(w["fc6"], 6, padding=5, dilation_rate=2, sync_batchnorm=sb, name="fc6")
        self.fc7 = ConvBNAct(w["fc7"], 1, sync_batchnorm=sb, name="fc7")

    def call(self, images, training=None, up_to: str = "fc7", return_pre_activation=False):
        """Taps ``{name: post-ReLU output}`` up to ``up_to``.

        With ``return_pre_activation`` also the BN outputs before each tap's ReLU (what
        the reference's D reads): ``(taps, pre_activation_taps)``. The forward itself
        always continues from the post-ReLU tensors.
        """
        if up_to not in ALEXNET_TAPS:
            raise ValueError(f"up_to must be one of {ALEXNET_TAPS}. Received: up_to={up_to!r}")
        taps, pre = {}, {}
        x = images - 0.5
        for name in ALEXNET_TAPS:
            if name in _POOL_BEFORE:
                x = getattr(self, _POOL_BEFORE[name])(x)
            x, pre[name] = getattr(self, name)(x, training=training, return_pre_activation=True)
            taps[name] = x
            if name == up_to:
                break
        return (taps, pre) if return_pre_activation else taps

    def get_config(self):
        return {
            "widths": dict(self.widths),
            "sync_batchnorm": self.sync_batchnorm,
            "name": self.name,
        }
