"""The epoch loop of every run: ``strategy.run(train_step)`` in a ``tf.function``, one callback list.

One device, mirrored replicas on one host and ``MultiWorkerMirroredStrategy`` over
several hosts all train through this loop; history, TensorBoard, checkpoints, the
non-finite guard and the step counter are Keras callbacks driven by one
``keras.callbacks.CallbackList`` with the hooks ``fit`` calls, in ``fit``'s order. It is
not ``fit`` because Keras 3's ``fit`` does not work under ``MultiWorkerMirroredStrategy``
(TF 2.21); a custom loop calling ``strategy.run`` inside a ``tf.function`` does, and
serves the other strategies unchanged.

Data: ``distribute_global_batches`` gives replica r rows [r·b, (r+1)·b) of each global
batch of a deterministic stream, so N replicas (on any number of workers) see exactly
the batches of one device with the same global batch, and resume is exact. Every input
pipeline (one per worker) decodes the global batch; the pipeline must therefore outpace
training by more than N× (``benchmarks/train_step.py`` reports the ratio).
"""

from __future__ import annotations

import hashlib
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging


def distribute_global_batches(strategy, make_dataset, per_replica_batch: int):
    """Per-replica batches whose union over replicas is the global batch.

    ``make_dataset()`` returns the stream of global batches (``per_replica_batch`` ×
    replicas rows); each input pipeline keeps the rows of its own replicas, in order.
    """
    replicas = strategy.num_replicas_in_sync

    def dataset_fn(context: tf.distribute.InputContext):
        ds = make_dataset()
        if replicas == 1:
            return ds
        local = replicas // context.num_input_pipelines
        start = context.input_pipeline_id * local * per_replica_batch
        rows = slice(start, start + local * per_replica_batch)
        ds = ds.map(lambda b: tf.nest.map_structure(lambda t: t[rows], b))
        if local > 1:  # one element per local replica, in replica order
            ds = ds.unbatch().batch(per_replica_batch, drop_remainder=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


def make_distributed_step(strategy, trainer, jit_compile: bool = False):
    """``tf.function`` running one ``train_step`` on every replica; returns global means.

    ``jit_compile`` compiles the per-replica step with XLA, as ``fit`` does (one replica
    only: XLA with a distribution strategy fails in TF 2.21, ``build_trainer`` refuses it).
    """
    train_step = tf.function(trainer.train_step, jit_compile=True) if jit_compile else None
    train_step = train_step or trainer.train_step

    @tf.function
    def step(iterator):
        per_replica = strategy.run(train_step, args=(next(iterator),))
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()
        }

    return step


def run_epochs(
    trainer,
    strategy,
    dataset,
    callbacks,
    *,
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    jit_compile: bool = False,
    verbose: int = 0,
) -> dict:
    """Trains epochs ``[initial_epoch, epochs)``; returns the last step's logs.

    The callbacks see ``fit``'s hooks in ``fit``'s order, with ``self.model`` the trainer;
    one that sets ``trainer.stop_training`` ends training after the current step (its
    epoch still ends: its row and checkpoint are written). Logs are Python floats, the
    metrics' running means over the epoch, reduced over replicas.
    """
    step_fn = make_distributed_step(strategy, trainer, jit_compile)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=False,
        add_progbar=verbose != 0,
        model=trainer,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
    )
    trainer.stop_training = False
    iterator = iter(dataset)
    logs = {}
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        trainer.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            callback_list.on_train_batch_begin(batch)
            logs = {k: float(v) for k, v in step_fn(iterator).items()}
            callback_list.on_train_batch_end(batch, logs)
            if trainer.stop_training:
                break
        callback_list.on_epoch_end(epoch, dict(logs))
        if trainer.stop_training:
            break
    callback_list.on_train_end(dict(logs))
    # Closing the input pipeline (tf.data cancels and joins its threads) took up to a
    # minute while tf.data autotuning was on (runtime.dataset_options says why; issue 13).
    # Still timed, so a slow close shows in the log whatever pipeline the caller passes.
    closing = time.perf_counter()
    del iterator
    seconds = time.perf_counter() - closing
    if seconds > 1.0:
        logging.warning("Closing the training input pipeline took %.1f s.", seconds)
    return logs


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """``keras.callbacks.TensorBoard`` without its per-step no-op when writing per epoch.

    With ``update_freq="epoch"`` Keras 3 still calls ``summary.scalar`` for every log
    after every step; no writer is the default then, so nothing is written, but the
    calls cost ~0.1 ms each on the host between two steps (~1 ms a step for the run's
    logs; issue 13). This skips them; epoch summaries, batch-frequency writing and
    profiling are ``TensorBoard``'s own.
    """

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" and not self.write_steps_per_second:
            logs = None  # the batch scalars would go to no writer
        super().on_train_batch_end(batch, logs)


class StepCounter(keras.callbacks.Callback):
    """Counts the training steps this process ran (``results["steps_run"]``)."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


def weights_digest(variables) -> str:
    """sha256 of the variables' bytes, in order (workers must agree bit for bit)."""
    digest = hashlib.sha256()
    for v in variables:
        digest.update(np.ascontiguousarray(v.numpy()).tobytes())
    return digest.hexdigest()
