"""Class-balanced sigmoid cross-entropy for instance contours (HED, Xie & Tu 2015)."""

from __future__ import annotations

import tensorflow as tf


def contour_loss_per_example(logits, targets, min_edge_pixels: int = 0):
    """Per-image HED loss, averaged over pixels: [B].

    ``β = |E−| / |E|`` is the fraction of non-edge pixels of that image's ground truth;
    edge pixels are weighted β and background pixels 1 − β, so the rare edges are not
    drowned out. We average over pixels (the paper writes a sum) so the loss weight
    λe = 1 of the reference settings is comparable to the depth/normal means.

    Images with fewer than ``min_edge_pixels`` edge pixels get loss 0 (the reference
    code skips such nearly empty contour maps); an edge-free image never yields NaN.
    """
    logits = tf.cast(logits, tf.float32)
    targets = tf.cast(targets, tf.float32)
    axes = tf.range(1, tf.rank(targets))
    n_pixels = tf.cast(tf.reduce_prod(tf.shape(targets)[1:]), tf.float32)
    n_edges = tf.reduce_sum(targets, axis=axes)
    beta = 1.0 - n_edges / n_pixels  # fraction of non-edge pixels, per image
    beta = tf.reshape(beta, [-1] + [1] * (len(targets.shape) - 1))
    weights = targets * beta + (1.0 - targets) * (1.0 - beta)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    loss = tf.reduce_sum(weights * bce, axis=axes) / n_pixels
    keep = tf.cast(n_edges >= float(min_edge_pixels), tf.float32)
    return loss * keep
