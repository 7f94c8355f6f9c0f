"""Scale-invariant log-depth loss (Eigen et al., NIPS 2014), with valid masks."""

from __future__ import annotations

import tensorflow as tf


def depth_loss_per_example(pred_log_depth, target_depth, valid):
    """``mean(d²) − 0.5·mean(d)²`` over each image's valid pixels, d = pred − log(gt): [B].

    The network predicts log-depth directly. Invalid pixels (no geometry) are excluded;
    an image with no valid pixel gets loss 0, not NaN.
    """
    pred = tf.cast(pred_log_depth, tf.float32)
    target = tf.cast(target_depth, tf.float32)
    mask = tf.cast(valid, tf.float32) * tf.cast(target > 0, tf.float32)
    safe_target = tf.where(mask > 0, target, tf.ones_like(target))
    d = (pred - tf.math.log(safe_target)) * mask
    axes = tf.range(1, tf.rank(d))
    n = tf.reduce_sum(mask, axis=axes)
    safe_n = tf.maximum(n, 1.0)
    mean_d2 = tf.reduce_sum(d * d, axis=axes) / safe_n
    mean_d = tf.reduce_sum(d, axis=axes) / safe_n
    return tf.where(n > 0, mean_d2 - 0.5 * mean_d * mean_d, 0.0)
