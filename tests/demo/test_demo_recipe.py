"""The demo trains with the recipe DemoConfig states: steps, rate and schedule reach the run."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.demo.run import DemoConfig, _run_config
from mtsyn_tf.models import get_preset
from mtsyn_tf.trainer.build import build_trainer
from mtsyn_tf.trainer.schedule import lr_schedule

# The demo's default and a variant that differs from RunConfig's defaults in every
# schedule setting, so a setting _run_config forgets to pass on cannot go unnoticed.
VARIANTS = {
    "default": {},
    "cosine": dict(
        lr_schedule="cosine", warmup_fraction=0.1, learning_rate=3e-3, epochs=2, steps_per_epoch=50
    ),
    "step": dict(lr_schedule="step", warmup_fraction=0.0, learning_rate=2e-3, epochs=3),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_demo_schedule_reaches_every_optimizer(tmp_path, variant):
    demo = dataclasses.replace(DemoConfig(workspace=str(tmp_path)), **VARIANTS[variant])
    cfg = _run_config(demo)
    total = demo.epochs * demo.steps_per_epoch
    assert (cfg.epochs * cfg.steps_per_epoch, cfg.batch_size) == (total, demo.batch_size)
    trainer = build_trainer(cfg, get_preset(demo.preset), tf.distribute.get_strategy(), total)
    expected = lr_schedule(
        demo.learning_rate, total, demo.lr_schedule, warmup_fraction=demo.warmup_fraction
    )
    steps = (0, total // 10, int(round(0.6 * total)), total - 1)
    for optimizer in (trainer.task_optimizer, trainer.disc_optimizer):
        got = [float(optimizer._learning_rate(k)) for k in steps]
        np.testing.assert_allclose(got, [float(expected(k)) for k in steps], rtol=1e-6)
    if demo.lr_schedule == "step":  # the reference drop lands on update round(0.6·T)
        drop = int(round(0.6 * total))
        rates = [float(trainer.task_optimizer._learning_rate(k)) for k in (drop - 1, drop)]
        np.testing.assert_allclose(rates, [demo.learning_rate, 0.1 * demo.learning_rate], rtol=1e-6)
