"""Surface-normal loss: negative mean cosine (Eigen & Fergus, ICCV 2015), with valid masks."""

from __future__ import annotations

import tensorflow as tf


def normals_loss_per_example(pred_normals, target_normals, valid):
    """``−mean_i(S_i · S'_i)`` over each image's valid pixels, S L2-normalised: [B].

    Both maps are normalised (the target should already be unit length; normalising it
    too makes the loss a pure cosine). An image with no valid pixel gets loss 0.
    """
    pred = tf.math.l2_normalize(tf.cast(pred_normals, tf.float32), axis=-1, epsilon=1e-12)
    target = tf.math.l2_normalize(tf.cast(target_normals, tf.float32), axis=-1, epsilon=1e-12)
    mask = tf.cast(valid, tf.float32)[..., 0]
    cos = tf.reduce_sum(pred * target, axis=-1) * mask
    axes = tf.range(1, tf.rank(cos))
    n = tf.reduce_sum(mask, axis=axes)
    return tf.where(n > 0, -tf.reduce_sum(cos, axis=axes) / tf.maximum(n, 1.0), 0.0)
