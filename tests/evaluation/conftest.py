"""Shared fixtures: a `small` model and training workdirs as scripts/train.py writes them."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.models import build_multitask_model, get_preset


def write_trainer_workdir(model, workdir, grayscale=False):
    """config.json with the trainer's keys ("preset" name + "resolved_preset") + a checkpoint."""
    os.makedirs(workdir, exist_ok=True)
    preset = get_preset(model.preset)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(
            {
                "preset": preset.get("name", "custom"),
                "resolved_preset": json.loads(json.dumps(preset)),
                "trainer": {"grayscale": grayscale},
            },
            f,
        )
    ckpt = tf.train.Checkpoint(model=model, epoch=tf.Variable(1, dtype=tf.int64))
    ckpt.save(os.path.join(workdir, "checkpoints", "ckpt"))
    return str(workdir)


@pytest.fixture(scope="session")
def small_model():
    return build_multitask_model("small")


@pytest.fixture(scope="session")
def tiny_images():
    rng = np.random.default_rng(0)
    return rng.random((4, 227, 227, 3), dtype=np.float32)
