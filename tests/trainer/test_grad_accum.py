"""Gradient accumulation: k micro-batches of b give the update of one batch of k·b.

BatchNorm is the caveat: in training mode it normalises each micro-batch with that
micro-batch's statistics, so k = 2 on [x; y] is *not* the step on [x, y] with BN. The
test therefore uses a batch made of one micro-batch repeated, [x; x]: its statistics
equal x's, so the two steps must agree up to float32 summation order, while everything
else accumulation does is still checked (loss normalisation by the global batch,
gradient sums of both stages, D's features from the pre-update B, pooling per
micro-batch). The moving BN statistics take k updates per step and are not compared.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_two_stage import make_batch  # noqa: E402 - sibling test module (rootdir imports)

from mtsyn_tf.models import build_discriminator, build_multitask_model
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer

LOSS_KEYS = ("loss_bh", "loss_d", "loss_adv", "loss_contour", "loss_depth", "loss_normals")


def _trainer(k, initial=None):
    keras.utils.set_random_seed(0)
    config = TrainerConfig(pool_size=8, grayscale=False)
    trainer = MultiTaskAdversarialTrainer(
        build_multitask_model("small"), build_discriminator("small"), config, grad_accum_steps=k
    ).build_all()
    trainer.compile(keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01))
    if initial is not None:
        for v, value in zip(trainer.trainable_variables, initial):
            v.assign(value)
    return trainer


def _doubled(batch):
    return tf.nest.map_structure(lambda t: np.concatenate([t, t]), batch)


def test_two_micro_batches_equal_one_batch_of_twice_the_size():
    batch = _doubled(make_batch(batch=1))
    whole = _trainer(1)
    initial = [v.numpy() for v in whole.trainable_variables]
    accumulated = _trainer(2, initial)
    logs_whole = tf.function(whole.train_step)(batch)
    logs_acc = tf.function(accumulated.train_step)(batch)
    for key in LOSS_KEYS:
        np.testing.assert_allclose(float(logs_acc[key]), float(logs_whole[key]), rtol=1e-5)
    assert int(accumulated.task_optimizer.iterations.numpy()) == 1  # one update, not two
    assert int(accumulated.disc_optimizer.iterations.numpy()) == 1
    assert int(accumulated.pool.count.numpy()) == 2  # both micro-batches were pooled
    ratios = {}
    for a, b, w0 in zip(whole.trainable_variables, accumulated.trainable_variables, initial):
        update = np.abs(a.numpy() - w0).max()
        assert update > 0, a.path
        ratios[a.path] = np.abs(b.numpy() - a.numpy()).max() / update
    # Float32 summation order (two half-batch sums, then their sum): measured <= 2.8 % of a
    # variable's largest update (conv1's kernel, whose gradient sums many nearly cancelling
    # terms on noise images), < 0.1 % for most. A wrong normalisation (dividing by the
    # micro-batch instead of the global batch) doubles every SGD update: 100 %.
    worst = max(ratios, key=ratios.get)
    assert ratios[worst] < 0.06, (worst, ratios[worst])


def test_batch_not_divisible_by_k_is_refused():
    trainer = _trainer(3)
    with pytest.raises(ValueError, match="divisible by grad_accum_steps"):
        trainer.train_step(make_batch(batch=2))


def test_bad_grad_accum_steps():
    with pytest.raises(ValueError, match="grad_accum_steps must be an integer >= 1"):
        _trainer(0)
