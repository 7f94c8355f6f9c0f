"""History pool of past synthetic feature maps for the discriminator (CycleGAN's image pool).

The reference code feeds D from a pool of 128 past synthetic feature maps: while the pool
is filling, each query is stored and returned; once full, each query is, with
probability ``swap_prob``, exchanged for a random stored map (the stored one is returned
and the query takes its place), otherwise returned as is. This slows D's oscillation
against a moving B.

The batch is processed at once: the queries that fill the last free slots are stored
first (so a later query of the same batch may swap with them, never with an empty
slot); if two swapping queries pick the same slot, both get that slot's value from
before the swaps and one of them is stored (CycleGAN processes queries one by one; the
difference only matters for duplicate picks).
Randomness comes from a stateless seed (step, replica), so resuming a run replays it.
Storage is per replica (``ON_READ`` variables); checkpoints hold the first replica's.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class FeatureHistoryPool(keras.layers.Layer):
    def __init__(self, pool_size: int = 128, swap_prob: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if pool_size < 0:
            raise ValueError(
                f"pool_size must be >= 0 (0 disables the pool). Received: pool_size={pool_size}"
            )
        if not 0.0 <= swap_prob <= 1.0:
            raise ValueError(f"swap_prob must be in [0, 1]. Received: swap_prob={swap_prob}")
        self.pool_size = pool_size
        self.swap_prob = swap_prob

    def build(self, feature_shape):
        if self.pool_size == 0:
            self.built = True
            return
        shape = (self.pool_size, *feature_shape[1:])
        self.storage = keras.Variable(
            tf.zeros(shape, tf.float32),
            trainable=False,
            name="storage",
            synchronization="on_read",
            aggregation="only_first_replica",
        )
        self.count = keras.Variable(
            tf.zeros((), tf.int32),
            dtype="int32",
            trainable=False,
            name="count",
            synchronization="on_read",
            aggregation="only_first_replica",
        )
        self.built = True

    def call(self, features, seed):
        """Returns the maps D should see for this batch and updates the pool.

        ``seed`` is a stateless-RNG seed, int32/int64 [2].
        """
        features = tf.stop_gradient(tf.cast(features, tf.float32))
        if self.pool_size == 0:
            return features
        batch = tf.shape(features)[0]
        count = tf.convert_to_tensor(self.count.value)
        slots_free = self.pool_size - count
        position = tf.range(batch)
        filling = position < slots_free
        fill_slot = count + position

        u = tf.random.stateless_uniform([batch], seed=seed)
        pick = tf.random.stateless_uniform(
            [batch],
            seed=seed + tf.constant([0, 1], seed.dtype),
            maxval=self.pool_size,
            dtype=tf.int32,
        )
        swapping = tf.logical_and(tf.logical_not(filling), u < self.swap_prob)

        # Store the filling queries first: a later query of the same batch that swaps may
        # draw one of them (as in CycleGAN's one-by-one order), never a still-empty slot.
        filled = tf.tensor_scatter_nd_update(
            self.storage.value,
            tf.boolean_mask(fill_slot, filling)[:, None],
            tf.boolean_mask(features, filling),
        )
        old = tf.gather(filled, tf.where(swapping, pick, 0))
        out = tf.where(swapping[:, None, None, None], old, features)
        self.storage.assign(
            tf.tensor_scatter_nd_update(
                filled,
                tf.boolean_mask(pick, swapping)[:, None],
                tf.boolean_mask(features, swapping),
            )
        )
        self.count.assign(tf.minimum(count + batch, self.pool_size))
        return out

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, swap_prob=self.swap_prob)
        return config
