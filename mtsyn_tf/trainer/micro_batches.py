"""Gradient accumulation: a batch as k micro-batches, each stage's gradients summed over them.

With losses divided by the global batch (k · micro-batch · replicas), the summed gradient
is the whole batch's, except for BatchNorm (batch statistics are per micro-batch). k = 1
is the plain step: one micro-batch, the same ops.
"""

from __future__ import annotations

import tensorflow as tf


def check_steps(k) -> None:
    if not isinstance(k, int) or k < 1:
        raise ValueError(
            f"grad_accum_steps must be an integer >= 1. Received: grad_accum_steps={k!r}"
        )


def global_batch(tensor):
    """The batch over all replicas (float32), by which per-example loss sums are divided."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return tf.cast(tf.shape(tensor)[0] * replicas, tf.float32)


def split(structure, k: int):
    """k micro-batches of a batch (a nest of tensors; None leaves stay None) along axis 0."""
    leaves = tf.nest.flatten(structure)
    batch = next(leaf.shape[0] for leaf in leaves if leaf is not None)
    if batch is not None and batch % k:
        raise ValueError(
            f"The per-replica batch ({batch}) must be divisible by grad_accum_steps ({k})."
        )
    parts = [[None] * k if leaf is None else tf.split(leaf, k, axis=0) for leaf in leaves]
    return [tf.nest.pack_sequence_as(structure, [p[i] for p in parts]) for i in range(k)]


def accumulate(gradients_of, micro_batches):
    """Sums ``gradients_of(i, *micro_batch) -> (loss, grads, logs, *features)`` over them.

    Micro-batch i+1 starts after micro-batch i's gradients exist (a control dependency on
    its first input), so one micro-batch's activations are alive at a time. Returns the
    summed loss and gradients, and the per-example logs and features concatenated.
    """
    loss, grads, logs, features = None, None, [], []
    for i, (first, *rest) in enumerate(micro_batches):
        with tf.control_dependencies([g for g in grads or [] if g is not None]):
            first = tf.nest.map_structure(tf.identity, first)
        loss_i, grads_i, logs_i, *features_i = gradients_of(i, first, *rest)
        loss = loss_i if loss is None else loss + loss_i
        grads = grads_i if grads is None else [_add(a, b) for a, b in zip(grads, grads_i)]
        logs.append(logs_i)
        features.append(features_i)
    logs = {name: tf.concat([entry[name] for entry in logs], axis=0) for name in logs[0]}
    return loss, grads, logs, [_concat(parts) for parts in zip(*features)]


def _add(a, b):
    if a is None or b is None:
        return a if b is None else b
    return a + b


def _concat(parts):
    return None if parts[0] is None else tf.concat(parts, axis=0)
