"""In-step randomness (grey channel, D's pool) as a stateless function of the run's step.

The seed is built from (run seed, optimizer step, replica, salt), so a resumed run, which
restores the optimizer step, replays the uninterrupted run's draws.
"""

from __future__ import annotations

import tensorflow as tf


def step_seed(run_seed: int, step, salt: int):
    """A stateless seed ``[2]`` (int64) for one draw of one replica at ``step``."""
    ctx = tf.distribute.get_replica_context()
    replica = ctx.replica_id_in_sync_group if ctx is not None else 0
    step = tf.cast(step, tf.int64)
    return tf.stack(
        [
            tf.constant(run_seed, tf.int64) * 1000003 + step,
            tf.cast(replica, tf.int64) * 7919 + salt,
        ]
    )
