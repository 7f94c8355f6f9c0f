"""Mixed precision: policy choice, loss-scaling plumbing, and mixed runs tracking float32.

Tolerance of the tracking test. Under ``mixed_bfloat16`` (what ``--precision=mixed``
uses on CPU) convolutions run with an 8-bit mantissa (relative rounding 2^-9 ≈ 2e-3
per value) while variables, BatchNorm statistics and losses stay float32. Over three
SGD steps of the `small` preset on noise, the per-step losses of the mixed run were
measured within 0.22 % of the float32 run's, except loss_normals: on random targets it
is a mean cosine term near zero (6e-4 .. -7e-5), where the absolute gap was <= 7.5e-5.
We allow 1 % relative plus 5e-4 absolute (0.025 % of the cosine's [-1, 1] range).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_two_stage import make_batch  # noqa: E402 - sibling test module (rootdir imports)

from mtsyn_tf.models import build_discriminator, build_multitask_model
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer

LOSS_KEYS = ("loss_bh", "loss_d", "loss_adv", "loss_contour", "loss_depth", "loss_normals")


def test_policy_by_device():
    assert mp.resolve_policy("float32") == "float32"
    assert mp.resolve_policy("mixed", "gpu") == "mixed_float16"
    assert mp.resolve_policy("mixed", "cpu") == "mixed_bfloat16"
    assert mp.needs_loss_scaling("mixed_float16") and not mp.needs_loss_scaling("mixed_bfloat16")
    with pytest.raises(ValueError, match="precision must be one of"):
        mp.resolve_policy("fp8")
    sgd = keras.optimizers.SGD()
    assert isinstance(mp.wrap_optimizer(sgd, "mixed_float16"), keras.optimizers.LossScaleOptimizer)
    assert mp.wrap_optimizer(sgd, "mixed_bfloat16") is sgd


def test_use_policy_restores_the_previous_policy():
    before = keras.mixed_precision.dtype_policy().name
    with mp.use_policy("mixed_bfloat16"):
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.dtype_policy().name == before


def _trainer(policy, optimizer, initial=None, config=None):
    with mp.use_policy(policy):
        keras.utils.set_random_seed(0)
        config = config or TrainerConfig(pool_size=8, grayscale=False)
        model = build_multitask_model("small")
        disc = build_discriminator("small")
        trainer = MultiTaskAdversarialTrainer(model, disc, config).build_all()
        trainer.compile(optimizer(), optimizer())
        trainer.build_optimizers()
    if initial is not None:
        for v, value in zip(_weights(trainer), initial):
            v.assign(value)
    return trainer


def _weights(trainer):
    return trainer.model.weights + trainer.discriminator.weights


def _run(trainer, policy, steps=3):
    with mp.use_policy(policy):
        step = tf.function(trainer.train_step)
        history = []
        for i in range(steps):
            for t in trainer.trackers.values():
                t.reset_state()
            logs = step(make_batch(seed=i))
            history.append({k: float(logs[k]) for k in LOSS_KEYS})
    return history


def test_loss_scaled_optimizers_give_the_unscaled_update():
    """LossScaleOptimizer around both optimizers, in float32: ×2^15 then ÷2^15 is exact,
    so the step equals the plain-SGD step (checks scale_loss + unscaling in both stages)."""
    plain = _trainer("float32", lambda: keras.optimizers.SGD(0.01))
    initial = [v.numpy() for v in _weights(plain)]
    scaled = _trainer(
        "float32",
        lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01)),
        initial,
    )
    plain_logs, scaled_logs = _run(plain, "float32", 1), _run(scaled, "float32", 1)
    for key in LOSS_KEYS:
        np.testing.assert_allclose(scaled_logs[0][key], plain_logs[0][key], rtol=1e-6)
    for a, b, w0 in zip(_weights(plain), _weights(scaled), initial):
        update = np.abs(a.numpy() - w0).max()
        np.testing.assert_allclose(
            b.numpy(), a.numpy(), rtol=0, atol=1e-4 * update + 1e-7, err_msg=a.path
        )
    for opt in (scaled.task_optimizer, scaled.disc_optimizer):
        assert float(opt.dynamic_scale.numpy()) == 2.0**15  # no overflow, no skipped step
        assert int(opt.iterations.numpy()) == 1


def test_mixed_bfloat16_tracks_float32():
    reference = _trainer("float32", lambda: keras.optimizers.SGD(0.01))
    initial = [v.numpy() for v in _weights(reference)]
    mixed = _trainer("mixed_bfloat16", lambda: keras.optimizers.SGD(0.01), initial)
    # Compute in bfloat16, variables and outputs the trainer uses in float32.
    assert mixed.model.backbone.dtype_policy.compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in _weights(mixed))
    raw = mixed.model(make_batch()["synthetic"]["image"], training=False)
    assert raw["depth"].dtype == tf.bfloat16  # hence the trainer's casts
    ref_history, mixed_history = _run(reference, "float32"), _run(mixed, "mixed_bfloat16")
    for step, (ref, mix) in enumerate(zip(ref_history, mixed_history)):
        for key in LOSS_KEYS:
            assert np.isfinite(mix[key]), (step, key)
            np.testing.assert_allclose(
                mix[key], ref[key], rtol=0.01, atol=5e-4, err_msg=f"step {step} {key}"
            )
