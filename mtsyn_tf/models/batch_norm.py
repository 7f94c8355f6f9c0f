"""Keras BatchNormalization whose training pass runs TensorFlow's fused kernel.

Keras 3 normalises a training batch with separate ops (moments, then the affine
normalisation) and differentiates each; on CPU that is ~8 passes over the activations
forward and backward. ``FusedBatchNormV3`` (oneDNN or Eigen) does the same arithmetic in
one forward and one backward kernel: 2–5× faster per layer (README "Performance"), ~18 %
of the ``small`` train step before. The layer is ``keras.layers.BatchNormalization`` in
every other respect — the same variables, inference path, moving-average rule and
saved configs — so checkpoints and exports are unchanged.

The fused path is taken for 4-D channels-last training batches of an unmasked,
unsynchronised, non-renorm layer; anything else goes through Keras' own ``call``.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops


@tf.custom_gradient
def _unfused(y):
    """``y`` itself, as an op grappler neither prunes nor fuses (gradient: identity).

    On oneDNN builds grappler fuses FusedBatchNormV3 + Relu into one kernel whose ReLU
    maps NaN to 0: a NaN weight or input would then give finite features and losses,
    and the non-finite guards would never see it. Keras' separate ops propagate NaN;
    so does the fused BN with its ReLU kept apart (tests/models/test_batch_norm.py).
    """
    return tf.raw_ops.Snapshot(input=y), lambda upstream: upstream


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class BatchNorm(layers.BatchNormalization):
    """``layers.BatchNormalization`` with the fused kernel for training batches."""

    def _fusable(self, inputs, mask) -> bool:
        axis = self.axis[0] if isinstance(self.axis, (list, tuple)) else self.axis
        return (
            mask is None
            and not self.synchronized
            and not self.renorm
            and len(inputs.shape) == 4
            and axis in (-1, 3)
        )

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        # float32 statistics whatever the compute dtype, as Keras' own call does.
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = ops.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        beta = ops.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        y, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=gamma,
            offset=beta,
            mean=tf.zeros([0]),
            variance=tf.zeros([0]),
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel reports the batch variance with Bessel's correction; Keras' moving
        # variance averages the biased one (the one the batch was normalised with).
        n = tf.cast(tf.size(x) // channels, "float32")
        variance = unbiased_variance * ((n - 1.0) / tf.maximum(n, 1.0))
        self.moving_mean.assign(
            ops.cast(self.moving_mean, "float32") * self.momentum + mean * (1.0 - self.momentum)
        )
        self.moving_variance.assign(
            ops.cast(self.moving_variance, "float32") * self.momentum
            + variance * (1.0 - self.momentum)
        )
        y = _unfused(y)
        return ops.cast(y, self.compute_dtype)
