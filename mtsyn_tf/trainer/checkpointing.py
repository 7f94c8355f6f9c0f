"""Checkpoints that resume a run exactly: weights, both optimizers, D's pool, the epoch.

All in-step randomness is a stateless function of (seed, optimizer step), and the data
pipeline is deterministic given its seed, so restoring these variables and skipping the
consumed batches replays the uninterrupted run.
"""

from __future__ import annotations

import glob
import os
import shutil

import tensorflow as tf
from absl import logging

from mtsyn_tf.cli import tf_error_reason


class CheckpointSaveError(RuntimeError):
    """Writing a checkpoint failed (disk full, permissions); the previous one is intact."""


class RunCheckpointer:
    """Wraps ``tf.train.CheckpointManager`` over everything a run's future depends on."""

    def __init__(self, trainer, directory: str, max_to_keep: int = 3):
        self.trainer = trainer
        self.directory = directory
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        objects = {
            "model": trainer.model,
            "discriminator": trainer.discriminator,
            "task_optimizer": trainer.task_optimizer,
            "epoch": self.epoch,
        }
        if trainer.config.adapt:
            objects["disc_optimizer"] = trainer.disc_optimizer
            if trainer.config.pool_size:
                objects["pool"] = trainer.pool
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep
        )

    def save(self, epoch: int) -> str:
        """Writes a checkpoint; TF writes the data files before the state file, so a crash
        mid-save leaves the previous checkpoint as the latest one.

        A failed write (disk full, read-only directory) raises ``CheckpointSaveError``
        naming the intact previous checkpoint; training stops rather than running on
        without checkpoints.
        """
        self.epoch.assign(epoch)
        try:
            path = self.manager.save(checkpoint_number=epoch)
        except (tf.errors.OpError, OSError) as err:
            self._remove_partial(epoch)
            previous = tf.train.latest_checkpoint(self.directory)
            raise CheckpointSaveError(
                f"Could not write the epoch-{epoch} checkpoint in {self.directory} "
                f"({type(err).__name__}: {tf_error_reason(err)}). "
                f"The previous checkpoint is intact: {previous}. Free disk space and re-run "
                "the same command to resume from it."
            ) from err
        logging.info("Saved checkpoint %s", path)
        return path

    def _remove_partial(self, epoch: int) -> None:
        """Deletes what a failed save of ``epoch`` wrote: TF's ``ckpt-N_temp*/`` staging
        directory and partial ``ckpt-N.index`` / ``ckpt-N.data-*`` files. Checkpoints the
        manager lists, and anything that is not a file of ours, are never touched."""
        prefix = os.path.join(self.directory, f"ckpt-{epoch}")
        if prefix in self.manager.checkpoints:
            return
        for path in glob.glob(glob.escape(prefix) + "_temp*"):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
        for path in glob.glob(glob.escape(prefix) + ".*"):
            if os.path.isfile(path) and not os.path.islink(path):
                os.remove(path)

    def restore_latest(self) -> int:
        """Restores the newest readable checkpoint; returns its epoch (0 if none).

        A corrupt newest checkpoint is reported and the previous one is tried.
        """
        candidates = list(reversed(self.manager.checkpoints))
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as err:  # noqa: BLE001 - any unreadable checkpoint: report, try older
                logging.warning(
                    "Checkpoint %s is unreadable (%s); trying the previous one.", path, err
                )
                continue
            epoch = int(self.epoch.numpy())
            logging.info("Resumed from %s (epoch %d).", path, epoch)
            return epoch
        if candidates:
            raise ValueError(
                f"No readable checkpoint in {self.directory}: tried {candidates}. Delete the run "
                "directory or point --workdir elsewhere to start afresh."
            )
        return 0

    @staticmethod
    def has_checkpoint(directory: str) -> bool:
        return os.path.isdir(directory) and tf.train.latest_checkpoint(directory) is not None
