"""Adversarial BCE on the discriminator's patch logits (labels: synthetic = 1, real = 0)."""

from __future__ import annotations

import tensorflow as tf

SYNTHETIC = 1.0
REAL = 0.0


def patch_bce_per_example(logits, label: float):
    """Mean over patches of ``−log σ(l)`` (label 1) or ``−log(1 − σ(l))`` (label 0): [B].

    Computed from logits with the stable sigmoid cross-entropy, never via sigmoid+log.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.fill(tf.shape(logits), tf.cast(label, tf.float32))
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(tf.reshape(bce, [tf.shape(bce)[0], -1]), axis=1)


def patch_accuracy_per_example(logits, label: float):
    """Fraction of an image's patches D classifies correctly: [B]."""
    logits = tf.cast(logits, tf.float32)
    predicted_synthetic = tf.cast(logits > 0, tf.float32)
    correct = predicted_synthetic if label == SYNTHETIC else 1.0 - predicted_synthetic
    return tf.reduce_mean(tf.reshape(correct, [tf.shape(correct)[0], -1]), axis=1)
