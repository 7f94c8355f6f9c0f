"""Keras callbacks of a training run: checkpoints, non-finite guard, image summaries."""

from __future__ import annotations

import csv
import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from mtsyn_tf.io_utils import atomic_file
from mtsyn_tf.models.multitask import to_physical
from mtsyn_tf.visualize import colorize_depth, colorize_normals


class NonFiniteLossError(RuntimeError):
    """Raised when a loss becomes NaN/Inf; the last checkpoint is left untouched."""


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch (our resume granularity)."""

    def __init__(self, checkpointer):
        super().__init__()
        self.checkpointer = checkpointer

    def on_epoch_end(self, epoch, logs=None):
        self.checkpointer.save(epoch + 1)


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, naming the step and the loss.

    Checks run after each batch, before the epoch-end checkpoint, so a poisoned model is
    never saved: the newest checkpoint on disk is the last good one.
    """

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if name.startswith("loss") and not math.isfinite(float(value)):
                step = self.epoch * self.steps_per_epoch + batch + 1
                raise NonFiniteLossError(
                    f"Non-finite {name}={float(value)} at step {step} (epoch {self.epoch + 1}). "
                    "Training stopped; the last checkpoint on disk is from before this epoch and "
                    "is intact. Lower the learning rate or check the data."
                )


class SkippedStepsReport(keras.callbacks.Callback):
    """Logs a warning at each epoch end with stages rolled back by ``nonfinite_policy="skip"``.

    The count is also in the epoch's logs (``skipped_steps`` in history.csv).
    """

    def on_epoch_end(self, epoch, logs=None):
        skipped = (logs or {}).get("skipped_steps")
        if skipped:
            logging.warning(
                "Epoch %d: %d non-finite stage updates were skipped (weights and optimizer "
                "state rolled back). Many skips mean the run is diverging: lower the "
                "learning rate or check the data.",
                epoch + 1,
                int(round(float(skipped))),
            )


def truncate_history(path: str, num_epochs: int) -> None:
    """Keeps only the rows of epochs ``< num_epochs`` in a CSVLogger file (atomically).

    Called on resume: rows of later epochs were written by a run that died before it
    checkpointed them, and the resumed run writes them again.
    """
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    if "epoch" not in header:
        raise ValueError(f"{path} is not a training history (no 'epoch' column).")
    col = header.index("epoch")
    kept = [r for r in body if r and int(r[col]) < num_epochs]
    if len(kept) == len(body):
        return
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(kept)
    logging.info("%s: dropped %d rows of epochs not checkpointed.", path, len(body) - len(kept))


class ImageSummaries(keras.callbacks.Callback):
    """Writes inputs, predictions and targets of a fixed batch to TensorBoard each epoch."""

    def __init__(self, log_dir: str, batch: dict, max_images: int = 4):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.batch = {k: v[:max_images] for k, v in batch.items()}

    def on_epoch_end(self, epoch, logs=None):
        trainer = self.model
        physical = to_physical(trainer.model(self.batch["image"], training=False))
        with self.writer.as_default(step=epoch + 1):
            tf.summary.image("input", self.batch["image"], max_outputs=4)
            if "depth" in physical:
                tf.summary.image("depth/target", _depth_images(self.batch["depth"]), max_outputs=4)
                tf.summary.image(
                    "depth/prediction", _depth_images(physical["depth"]), max_outputs=4
                )
            if "normals" in physical:
                tf.summary.image(
                    "normals/target",
                    colorize_normals(np.asarray(self.batch["normals"])),
                    max_outputs=4,
                )
                tf.summary.image(
                    "normals/prediction",
                    colorize_normals(np.asarray(physical["normals"])),
                    max_outputs=4,
                )
            if "contour" in physical:
                tf.summary.image("contour/target", self.batch["contour"], max_outputs=4)
                tf.summary.image("contour/prediction", physical["contour"], max_outputs=4)
        self.writer.flush()


def _depth_images(depth):
    return np.stack([colorize_depth(np.asarray(d)[..., 0]) for d in depth])
