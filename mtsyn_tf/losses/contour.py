"""Class-balanced sigmoid cross-entropy for instance contours (HED, Xie & Tu 2015).

Scale (README "Loss scales"): the paper writes a *sum* over pixels and chooses the λ so
the three tasks' gradients "have similar magnitude". Averaged over pixels, the HED loss is
≈ 2p(1−p)·BCE (p = edge share, ~3 %), ~1/250 of the depth/normal gradients on B at
initialisation. Divided by the number of *edge* pixels instead it is
``(1−p)·(mean BCE over edges + mean BCE over background)``: still class-balanced, an O(1)
number that no longer shrinks with the edge share, and its gradients on B are of the same
order as depth's and normals' (measured by ``scripts/diagnose.py --what=gradient_balance``).
"""

from __future__ import annotations

import tensorflow as tf

# "edges": HED-balanced sum / #edge pixels (default). "pixels": HED-balanced sum / #pixels
# (the old mtsyn_tf normalisation). "reference": the reference code's loss, every pixel
# weighted #non-edge / #edge and averaged (not class-balanced: ≈ (1−p)/p · BCE).
NORMALIZATIONS = ("edges", "pixels", "reference")


def contour_loss_per_example(logits, targets, normalization: str = "edges"):
    """Per-image contour loss: [B].

    ``β = |E−| / |E|`` is the fraction of non-edge pixels of that image's ground truth;
    edge pixels are weighted β and background pixels 1 − β (paper eq. for L_e). The
    weighted sum is divided per ``normalization`` (see ``NORMALIZATIONS``). An image
    without any edge pixel gives 0 and finite gradients, never NaN (edge-poor images are
    resampled by the input pipeline; see ``data.pipeline``).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {NORMALIZATIONS}. Received: normalization={normalization!r}"
        )
    logits = tf.cast(logits, tf.float32)
    targets = tf.cast(targets, tf.float32)
    axes = tf.range(1, tf.rank(targets))
    n_pixels = tf.cast(tf.reduce_prod(tf.shape(targets)[1:]), tf.float32)
    n_edges = tf.reduce_sum(targets, axis=axes)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    if normalization == "reference":
        # (#non-edge / #edge) · mean BCE; 0 for an edge-free image (the reference resamples).
        ratio = tf.math.divide_no_nan(n_pixels - n_edges, n_edges)
        return ratio * tf.reduce_mean(bce, axis=axes)
    beta = 1.0 - n_edges / n_pixels  # fraction of non-edge pixels, per image
    beta = tf.reshape(beta, [-1] + [1] * (len(targets.shape) - 1))
    weights = targets * beta + (1.0 - targets) * (1.0 - beta)
    weighted_sum = tf.reduce_sum(weights * bce, axis=axes)
    if normalization == "pixels":
        return weighted_sum / n_pixels
    # Edge-free image: β = 1, every weight is 0, so the sum is 0; max(·, 1) keeps it finite.
    return weighted_sum / tf.maximum(n_edges, 1.0)
