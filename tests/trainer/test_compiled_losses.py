"""The losses and their weights λ that reach the step are the ones given to ``compile``.

Scaling a loss weight by a power of two scales every gradient of that term by exactly that
power: each backward op is linear in its upstream gradient, and multiplying a float32 by 2
commutes with rounding (no overflow or underflow at these magnitudes). So the comparisons
below are exact, and any change in how the weight reaches the step shows.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_two_stage import RecordingSGD, make_batch  # noqa: E402 - sibling test module

from mtsyn_tf import losses
from mtsyn_tf.models import build_discriminator, build_multitask_model
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer


def _trainer(config, **compile_kwargs):
    keras.utils.set_random_seed(0)
    model = build_multitask_model("small")
    trainer = MultiTaskAdversarialTrainer(model, build_discriminator("small"), config).build_all()
    trainer.compile(
        RecordingSGD(1.0), RecordingSGD(1.0) if config.adapt else None, **compile_kwargs
    )
    return trainer


def _stage_one_gradients(trainer):
    data = make_batch()
    trainer.stage_bh(data["synthetic"], data["real"]["image"])
    return trainer.task_optimizer.recorded


@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_loss_weight_given_to_compile_scales_the_gradient():
    config = TrainerConfig(tasks=("depth",), adapt=False, grayscale=False)
    plain = _stage_one_gradients(_trainer(config, loss_weights={"depth": 1.0}))
    doubled = _stage_one_gradients(_trainer(config, loss_weights={"depth": 2.0}))
    reached = [p for p, g in plain.items() if g is not None]
    assert reached and all(np.any(plain[p] != 0) for p in reached)
    for path in reached:
        np.testing.assert_array_equal(doubled[path], 2.0 * plain[path], err_msg=path)


def test_compile_weights_replace_the_config_weights():
    config = TrainerConfig(grayscale=False, pool_size=4)
    trainer = _trainer(config, loss_weights={"contour": 1.0, "depth": 1.0, "normals": 0.0})
    assert trainer.loss_weights == {"contour": 1.0, "depth": 1.0, "normals": 0.0}
    assert trainer.get_config()["config"]["loss_weights"] == trainer.loss_weights
    assert config.loss_weights["normals"] == 10.0  # the caller's config is not mutated
    # λ_adv = 0 and λ_s = 0: only the contour and depth terms reach B and the heads.
    gradients = _stage_one_gradients(trainer)
    normals_head = {v.path for v in trainer.model.heads["normals"].trainable_variables}
    assert all(gradients[p] is None or not np.any(gradients[p]) for p in normals_head)


@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_task_and_adversarial_losses_given_to_compile_are_used():
    calls = []

    class Tripled(losses.DepthLoss):
        def call(self, y_true, y_pred):
            return 3.0 * super().call(y_true, y_pred)

    class CountingBCE(losses.PatchBCE):
        def call(self, y_true, y_pred):
            calls.append(float(y_true))
            return super().call(y_true, y_pred)

    config = TrainerConfig(tasks=("depth",), grayscale=False, pool_size=4)
    default = _trainer(config)
    custom = _trainer(config, task_losses={"depth": Tripled()}, adversarial_loss=CountingBCE())
    data = make_batch()
    logs_default = {k: float(v) for k, v in default.train_step(data).items()}
    logs_custom = {k: float(v) for k, v in custom.train_step(data).items()}
    # Same weights, same batch: the tripled loss is 3× the default one (float32 product).
    np.testing.assert_allclose(logs_custom["loss_depth"], 3 * logs_default["loss_depth"], rtol=1e-6)
    # Stage 1's fool term (label real) and stage 2's two terms (synthetic, then real).
    assert calls == [losses.REAL, losses.SYNTHETIC, losses.REAL]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task_losses": {"depth": losses.DepthLoss()}}, "one loss per trained task"),
        ({"loss_weights": {"depth": -1.0}}, "depth=-1.0"),
        ({"loss_weights": {"sky": 1.0}}, "sky"),
    ],
)
def test_bad_losses_in_compile_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _trainer(TrainerConfig(pool_size=4), **kwargs)


def test_keras_losses_serialize():
    loss = losses.ContourLoss("pixels")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(clone, losses.ContourLoss) and clone.normalization == "pixels"
    with pytest.raises(ValueError, match="normalization='edge'"):
        losses.ContourLoss("edge")
    with pytest.raises(ValueError, match="sample_weight"):
        ones = tf.ones([1, 2, 2, 1])
        losses.DepthLoss()({"depth": ones, "valid": ones}, ones, sample_weight=1.0)
