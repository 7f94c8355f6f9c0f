"""AlexNet task heads H: one transposed-conv stack per task, fc7 (13×13) → 227×227."""

from __future__ import annotations

import keras
from keras import layers

from mtsyn_tf.models.layers import ConvBNAct, conv_transpose_as_matmul, transpose_matmul_pays

TASK_CHANNELS = {"contour": 1, "depth": 1, "normals": 3}


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class AlexNetTaskHead(layers.Layer):
    """Deconv8 (3, s2) → 27, Deconv9 (3, s2) → 55, Deconv10 (5, s2) → 113, output (3, s2) → 227.

    The output is linear: log-depth, unnormalised normals, or contour logits.
    """

    def __init__(self, task: str, width: int, sync_batchnorm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if task not in TASK_CHANNELS:
            raise ValueError(
                f"task must be one of {sorted(TASK_CHANNELS)}. Received: task={task!r}"
            )
        self.task = task
        self.width = width
        self.sync_batchnorm = sync_batchnorm
        sb = sync_batchnorm

        # === Layers ===
        self.deconv8 = ConvBNAct(
            width, 3, strides=2, transpose=True, sync_batchnorm=sb, name="deconv8"
        )
        self.deconv9 = ConvBNAct(
            width, 3, strides=2, transpose=True, sync_batchnorm=sb, name="deconv9"
        )
        self.deconv10 = ConvBNAct(
            width, 5, strides=2, transpose=True, sync_batchnorm=sb, name="deconv10"
        )
        self.out = layers.Conv2DTranspose(TASK_CHANNELS[task], 3, strides=2, name="output")

    def build(self, input_shape):
        shape = input_shape
        for layer in (self.deconv8, self.deconv9, self.deconv10, self.out):
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, x, training=None):
        x = self.deconv8(x, training=training)
        x = self.deconv9(x, training=training)
        x = self.deconv10(x, training=training)
        static = x.shape[1] is not None and x.shape[2] is not None  # the matmul form's need
        if static and transpose_matmul_pays(self.out.kernel_size[0], self.out.filters, x.shape[-1]):
            # Many channels to few (the paper's 64 → 1…3): matmul + col2im is the faster.
            return conv_transpose_as_matmul(self.out, x)
        return self.out(x)

    def get_config(self):
        config = super().get_config()
        config.update(task=self.task, width=self.width, sync_batchnorm=self.sync_batchnorm)
        return config
