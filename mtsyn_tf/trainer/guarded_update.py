"""One stage's optimizer update, rolled back when its loss or gradients are non-finite.

``nonfinite_policy="stop"`` applies every update and leaves stopping the run to
``callbacks.NonFiniteLossGuard`` (the first non-finite loss ends it). ``"skip"`` saves
everything the stage may change before its forward pass (weights, BatchNorm statistics,
optimizer slots and step, D's pool), applies the update with non-finite gradients
replaced by zeros, and restores the saved values unless the loss, the logged values and
the gradients were finite on every replica (all replicas take the same branch). Such a
stage leaves its values out of the loss trackers and counts once in ``skipped_steps``.
A stage may also ``require`` an earlier stage's verdict: the trainer's stage 2 is undone
with its batch's stage 1, so a poisoned batch is skipped whole (its features come from
the same forward pass, even where they happen to be finite).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from mtsyn_tf.trainer import micro_batches
from mtsyn_tf.trainer.config import NONFINITE_POLICIES


class GuardedUpdate:
    """A stage's update under the policy: ``step`` runs it whole (``save`` what the stage may
    change, accumulate its gradients over the micro-batches, ``apply`` them)."""

    def __init__(self, policy: str, trackers: dict):
        """``trackers``: the per-example logs' metrics by name (the trainer's); under "skip"
        it gets ``skipped_steps``, the stages rolled back since its last reset (an epoch)."""
        if policy not in NONFINITE_POLICIES:
            raise ValueError(
                f"nonfinite_policy must be one of {NONFINITE_POLICIES}. "
                f"Received: nonfinite_policy={policy!r}"
            )
        self.policy, self.trackers = policy, trackers
        self.last_kept = None  # the verdict of the latest ``step`` (a bool tensor under "skip")
        if policy == "skip":
            trackers["skipped_steps"] = keras.metrics.Sum(name="skipped_steps")

    def step(self, optimizer, network, state, gradients_of, pieces, require=None):
        """One step of ``optimizer`` on ``network``'s trainable variables with
        ``gradients_of(i, *piece)`` summed over the micro-batches ``pieces``
        (``micro_batches.accumulate``); ``state`` (what the stage may change besides the
        optimizer) is saved before the forward passes, where BatchNorm statistics move;
        ``require`` (a bool tensor, e.g. an earlier stage's ``last_kept``) must also hold for
        the update to be kept. Returns the micro-batches' features, concatenated."""
        saved = self.save(state + optimizer_state(optimizer))
        loss, grads, logs, features = micro_batches.accumulate(gradients_of, pieces)
        variables = network.trainable_variables
        self.last_kept = self.apply(optimizer, grads, variables, saved, loss, logs, require)
        return features

    def save(self, variables):
        """Values to roll back to (None under "stop"). Call it before the stage's forward
        pass: BatchNorm's moving statistics change there."""
        if self.policy != "skip":
            return None
        return [(v, tf.identity(v.value)) for v in variables]

    def apply(self, optimizer, grads, variables, saved, loss, logs, require=None):
        """Applies ``grads`` to ``variables`` and adds the per-example ``logs`` to their
        trackers; with ``saved``, undoes the whole stage if anything was non-finite.

        Returns whether the update was kept (a bool tensor; None under "stop").
        """
        if saved is None:
            optimizer.apply(grads, variables)
            for name, values in logs.items():
                self.trackers[name].update_state(values)
            return None
        finite = all_replicas_finite([loss, *logs.values(), *_checked_gradients(optimizer, grads)])
        if require is not None:
            finite = tf.logical_and(finite, require)
        safe = [None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        optimizer.apply(safe, variables)
        for variable, value in saved:
            variable.assign(tf.where(finite, variable.value, value))
        kept = tf.cast(finite, tf.float32)
        for name, values in logs.items():
            self.trackers[name].update_state(
                tf.where(finite, values, tf.zeros_like(values)),
                sample_weight=kept * tf.ones_like(values),
            )
        self.trackers["skipped_steps"].update_state(1.0 - kept)
        return finite


def optimizer_state(optimizer):
    """An optimizer's slots and step; for a LossScaleOptimizer its inner optimizer's only:
    the dynamic loss scale keeps its own reaction to overflow (halving)."""
    if optimizer is None:
        return []
    return list(getattr(optimizer, "inner_optimizer", optimizer).variables)


def _checked_gradients(optimizer, grads):
    """A LossScaleOptimizer already skips steps whose scaled gradients overflow (and lowers
    its scale): those are not non-finite steps, so only its loss is checked."""
    if hasattr(optimizer, "inner_optimizer"):
        return []
    return [g for g in grads if g is not None]


def all_replicas_finite(tensors):
    """True iff every tensor is finite on every replica."""
    bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(t), tf.float32)) for t in tensors])
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and tf.distribute.get_strategy().num_replicas_in_sync > 1:
        bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, bad)
    return tf.equal(bad, 0.0)
