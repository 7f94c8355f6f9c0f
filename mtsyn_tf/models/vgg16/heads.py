"""VGG16 task heads with skips (SPEC §2).

Interpretation we implement (the paper's table is only consistent this way): the size
column gives each deconv's *input* size. Deconv1 takes conv5_3 (14) → 28; Deconv2 takes
[Deconv1, conv4_3] (28) → 56; Deconv3 takes [Deconv2, conv3_3] (56) → 112; Deconv4 takes
[Deconv3, conv2_2] (112) → 224; then a 3×3 output conv at 224. Each deconv is a 4×4,
stride-2 transposed conv with padding 1 ("same"), which doubles the size exactly.
"""

from __future__ import annotations

import keras
from keras import layers

from mtsyn_tf.models.alexnet.heads import TASK_CHANNELS
from mtsyn_tf.models.layers import ConvBNAct

_SKIPS = ("conv4_3", "conv3_3", "conv2_2")


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class VGG16TaskHead(layers.Layer):
    def __init__(
        self, task: str, widths=(512, 256, 128, 64), sync_batchnorm: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        if task not in TASK_CHANNELS:
            raise ValueError(
                f"task must be one of {sorted(TASK_CHANNELS)}. Received: task={task!r}"
            )
        if len(widths) != 4:
            raise ValueError(
                f"widths must give Deconv1..Deconv4 channels. Received: widths={widths}"
            )
        self.task = task
        self.widths = tuple(widths)
        self.sync_batchnorm = sync_batchnorm

        # === Layers ===
        self.deconvs = [
            ConvBNAct(
                w,
                4,
                strides=2,
                padding="same",
                transpose=True,
                sync_batchnorm=sync_batchnorm,
                name=f"deconv{i + 1}",
            )
            for i, w in enumerate(self.widths)
        ]
        for i, deconv in enumerate(self.deconvs):  # attributes, so checkpoints track them
            setattr(self, f"deconv{i + 1}", deconv)
        self.concats = [layers.Concatenate(name=f"skip_{s}") for s in _SKIPS]
        self.out = layers.Conv2D(TASK_CHANNELS[task], 3, padding="same", name="output")

    def call(self, taps, training=None):
        x = self.deconvs[0](taps["conv5_3"], training=training)
        for deconv, concat, skip in zip(self.deconvs[1:], self.concats, _SKIPS):
            x = deconv(concat([x, taps[skip]]), training=training)
        return self.out(x)

    def get_config(self):
        config = super().get_config()
        config.update(task=self.task, widths=self.widths, sync_batchnorm=self.sync_batchnorm)
        return config
