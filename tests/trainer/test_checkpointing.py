"""Checkpoints hold every variable a run's future depends on."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.models import get_preset
from mtsyn_tf.trainer.build import build_trainer
from mtsyn_tf.trainer.checkpointing import RunCheckpointer
from mtsyn_tf.trainer.config import RunConfig, TrainerConfig


@pytest.mark.parametrize("preset", ["small", "small_vgg16"])
def test_every_variable_is_checkpointed_and_restored(preset, tmp_path):
    cfg = RunConfig(
        workdir=str(tmp_path),
        synthetic_dir="unused",
        preset=preset,
        trainer=TrainerConfig(pool_size=2),
    )
    trainer = build_trainer(cfg, get_preset(preset), tf.distribute.get_strategy(), total_steps=10)
    ckpt = RunCheckpointer(trainer, str(tmp_path / "ckpt"))
    ckpt.save(3)
    # Perturb every variable (BN statistics, the pool and optimizer slots included),
    # restore, and compare: anything not in the checkpoint would keep its perturbation.
    variables = (
        trainer.model.variables
        + trainer.discriminator.variables
        + trainer.pool.variables
        + trainer.task_optimizer.variables
        + trainer.disc_optimizer.variables
    )
    assert any("moving_mean" in v.path and "_head" in v.path for v in variables)
    originals = [v.numpy().copy() for v in variables]
    for v in variables:
        v.assign(v + tf.ones_like(v))
    ckpt.epoch.assign(0)
    assert ckpt.restore_latest() == 3
    for before, v in zip(originals, variables):
        np.testing.assert_array_equal(v.numpy(), before, err_msg=v.path)


def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path):
    cfg = RunConfig(
        workdir=str(tmp_path),
        synthetic_dir="unused",
        preset="small",
        trainer=TrainerConfig(adapt=False),
    )
    trainer = build_trainer(cfg, get_preset("small"), tf.distribute.get_strategy(), total_steps=10)
    ckpt = RunCheckpointer(trainer, str(tmp_path / "ckpt"))
    ckpt.save(1)
    latest = ckpt.save(2)
    for data_file in tf.io.gfile.glob(latest + ".data-*"):
        with open(data_file, "wb") as f:
            f.write(b"garbage")
    fresh = RunCheckpointer(trainer, str(tmp_path / "ckpt"))
    assert fresh.restore_latest() == 1
