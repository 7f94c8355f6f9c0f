"""Optimizers of the reference code: Adam for B and H, SGD with coupled weight decay for D."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.models import get_preset
from mtsyn_tf.trainer.build import build_trainer
from mtsyn_tf.trainer.config import RunConfig
from mtsyn_tf.trainer.schedule import (
    CoupledWeightDecaySGD,
    lr_schedule,
    make_disc_sgd,
    warmup_cosine_schedule,
)


def _steps(optimizer, gradient, steps):
    w = tf.Variable([1.0])
    optimizer.build([w])
    for _ in range(steps):
        optimizer.apply([tf.constant([gradient])], [w])
    return float(w.numpy()[0])


def test_coupled_weight_decay_is_torch_sgd():
    # torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.1), w = 1, g = 0.5, by hand:
    #   step 1: d = 0.5 + 0.1·1 = 0.6, buf = 0.6, w = 1 − 0.06 = 0.94
    #   step 2: d = 0.5 + 0.1·0.94 = 0.594, buf = 0.9·0.6 + 0.594 = 1.134, w = 0.8266
    sgd = CoupledWeightDecaySGD(l2=0.1, learning_rate=0.1, momentum=0.9)
    assert _steps(sgd, 0.5, 2) == pytest.approx(0.8266, abs=1e-6)
    # Keras' own (decoupled) weight_decay is a different optimizer.
    decoupled = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    assert _steps(decoupled, 0.5, 2) != pytest.approx(0.8266, abs=1e-3)
    config = CoupledWeightDecaySGD.from_config(sgd.get_config()).get_config()
    assert config["l2"] == 0.1 and config["momentum"] == 0.9
    with pytest.raises(ValueError, match="l2=-1"):
        CoupledWeightDecaySGD(l2=-1)


def test_disc_sgd_follows_the_reference_schedule():
    sgd = make_disc_sgd(1e-3, total_steps=100)
    schedule = sgd._learning_rate
    np.testing.assert_allclose(
        [float(schedule(s)) for s in (0, 59, 60, 89, 90, 99)],
        [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5],
        rtol=1e-6,
    )
    assert sgd.momentum == 0.9 and sgd.l2 == 5e-4


@pytest.mark.parametrize("disc_optimizer", ["sgd", "adam"])
def test_build_trainer_gives_d_the_reference_sgd_by_default(tmp_path, disc_optimizer):
    cfg = RunConfig(workdir=str(tmp_path), synthetic_dir=str(tmp_path), preset="small")
    if disc_optimizer == "adam":
        cfg.disc_optimizer = "adam"
    trainer = build_trainer(cfg, get_preset("small"), tf.distribute.get_strategy(), 10)
    assert isinstance(trainer.task_optimizer, keras.optimizers.Adam)
    assert trainer.task_optimizer.beta_1 == 0.5
    disc = trainer.disc_optimizer
    if disc_optimizer == "sgd":
        assert isinstance(disc, CoupledWeightDecaySGD)
        assert (disc.momentum, disc.l2) == (0.9, 5e-4)
    else:
        assert isinstance(disc, keras.optimizers.Adam) and disc.beta_1 == 0.5


def test_warmup_cosine_schedule_by_hand():
    # T = 100 updates, 10 % warmup: W = 10. Warmup from base/W to base (Keras' linear
    # warmup), then base·½(1 + cos(π·(k − W)/(T − W))).
    schedule = warmup_cosine_schedule(2e-3, total_steps=100, warmup_fraction=0.1)
    base, w = 2e-3, 10
    expected = {
        0: base / w,
        5: base / w + (base - base / w) * 5 / w,
        10: base,
        55: base * 0.5 * (1 + np.cos(np.pi * 45 / 90)),
        99: base * 0.5 * (1 + np.cos(np.pi * 89 / 90)),
    }
    got = {k: float(schedule(k)) for k in expected}
    # The schedule runs in float32: ½(1 + cos x) near x = π cancels, so its error is a few
    # float32 spacings of 1 (~1.2e-7) times base, not relative to the tiny result.
    np.testing.assert_allclose(
        list(got.values()), list(expected.values()), rtol=1e-6, atol=8 * 2**-23 * base
    )
    # Without warmup the first update reads the full rate and the rate decreases throughout.
    plain = [float(warmup_cosine_schedule(1e-3, 50)(k)) for k in range(50)]
    assert plain[0] == pytest.approx(1e-3) and all(a > b for a, b in zip(plain, plain[1:]))
    for bad, match in (
        ({"kind": "cosine", "warmup_fraction": 1.0}, "warmup_fraction=1.0"),
        ({"kind": "step", "warmup_fraction": 0.1}, "warmup_fraction=0.1"),  # would be ignored
        ({"kind": "x"}, "'x'"),
    ):
        with pytest.raises(ValueError, match=match):
            lr_schedule(1e-3, 100, **bad)


@pytest.mark.parametrize("disc_optimizer", ["sgd", "adam"])
def test_cosine_schedule_reaches_all_three_optimizers(tmp_path, disc_optimizer):
    cfg = RunConfig(
        workdir=str(tmp_path),
        synthetic_dir=str(tmp_path),
        preset="small",
        lr_schedule="cosine",
        warmup_fraction=0.1,
        learning_rate=3e-3,
        disc_optimizer=disc_optimizer,
    )
    trainer = build_trainer(cfg, get_preset("small"), tf.distribute.get_strategy(), 100)
    expected = [float(warmup_cosine_schedule(3e-3, 100, 0.1)(k)) for k in (0, 10, 60)]
    for optimizer in (trainer.task_optimizer, trainer.disc_optimizer):
        schedule = optimizer._learning_rate
        got = [float(schedule(k)) for k in (0, 10, 60)]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
