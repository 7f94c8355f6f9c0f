"""The demo trains with the recipe DemoConfig states: steps, rate and schedule reach the run."""

import dataclasses

import numpy as np
import tensorflow as tf

from mtsyn_tf.demo.run import DemoConfig, _run_config
from mtsyn_tf.models import get_preset
from mtsyn_tf.trainer.build import build_trainer
from mtsyn_tf.trainer.schedule import lr_schedule


def test_demo_schedule_reaches_every_optimizer(tmp_path):
    demo = DemoConfig(workspace=str(tmp_path))
    cfg = _run_config(demo)
    total = demo.epochs * demo.steps_per_epoch
    assert (cfg.epochs * cfg.steps_per_epoch, cfg.batch_size) == (total, demo.batch_size)
    assert (cfg.learning_rate, cfg.lr_schedule, cfg.warmup_fraction) == (
        demo.learning_rate,
        demo.lr_schedule,
        demo.warmup_fraction,
    )
    trainer = build_trainer(cfg, get_preset(demo.preset), tf.distribute.get_strategy(), total)
    expected = lr_schedule(
        demo.learning_rate, total, demo.lr_schedule, warmup_fraction=demo.warmup_fraction
    )
    steps = (0, total // 10, total // 2, total - 1)
    for optimizer in (trainer.task_optimizer, trainer.disc_optimizer):
        got = [float(optimizer._learning_rate(k)) for k in steps]
        np.testing.assert_allclose(got, [float(expected(k)) for k in steps], rtol=1e-6)


def test_demo_step_schedule_is_still_available(tmp_path):
    demo = dataclasses.replace(
        DemoConfig(workspace=str(tmp_path)), lr_schedule="step", warmup_fraction=0.0
    )
    cfg = _run_config(demo)
    total = demo.epochs * demo.steps_per_epoch
    trainer = build_trainer(cfg, get_preset(demo.preset), tf.distribute.get_strategy(), total)
    schedule = trainer.task_optimizer._learning_rate
    drop = int(round(0.6 * total))  # MultiStepLR's first dropped update
    lr = demo.learning_rate
    np.testing.assert_allclose(
        [float(schedule(drop - 1)), float(schedule(drop))], [lr, 0.1 * lr], rtol=1e-6
    )
