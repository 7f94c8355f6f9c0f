"""Builds the trainer of a run: model, D and both optimizers in the strategy's scope."""

from __future__ import annotations

import keras

from mtsyn_tf import losses
from mtsyn_tf.models import build_discriminator, build_multitask_model
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer.config import RunConfig
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer
from mtsyn_tf.trainer.schedule import lr_schedule, make_adam, make_disc_sgd


def build_trainer(
    cfg: RunConfig, preset: dict, strategy, total_steps: int
) -> MultiTaskAdversarialTrainer:
    """Model, D, both optimizers and their slots, all created in the strategy's scope; the
    losses and their weights λ from ``cfg.trainer``, passed to ``compile``.

    Uses the global Keras dtype policy of the caller (``train`` sets it from
    ``cfg.precision``); under ``mixed_float16`` both optimizers get loss scaling.
    """
    sync_bn = strategy.num_replicas_in_sync > 1
    policy = keras.mixed_precision.dtype_policy().name
    if cfg.jit_compile and strategy.num_replicas_in_sync > 1:
        raise ValueError(
            "jit_compile (XLA) does not work with a distribution strategy in TF 2.21. "
            f"Received: jit_compile=True with {strategy.num_replicas_in_sync} replicas"
        )
    with strategy.scope():
        model = build_multitask_model(preset, sync_batchnorm=sync_bn)
        disc = build_discriminator(preset, sync_batchnorm=sync_bn)
        trainer = MultiTaskAdversarialTrainer(
            model,
            disc,
            cfg.trainer,
            grad_accum_steps=cfg.grad_accum_steps,
            nonfinite_policy=cfg.nonfinite_policy,
        )
        trainer.compile(
            task_optimizer=mp.wrap_optimizer(_make_optimizer(cfg, total_steps), policy),
            disc_optimizer=mp.wrap_optimizer(_make_disc_optimizer(cfg, total_steps), policy),
            task_losses=losses.task_losses(cfg.trainer.tasks, cfg.trainer.contour_normalization),
            loss_weights=cfg.trainer.loss_weights,
            adversarial_loss=losses.PatchBCE(),
            jit_compile=cfg.jit_compile,
        )
        trainer.build_all()
        trainer.build_optimizers()
    return trainer


def _schedule(cfg: RunConfig) -> dict:
    return {"kind": cfg.lr_schedule, "warmup_fraction": cfg.warmup_fraction}


def _make_optimizer(cfg: RunConfig, total_steps: int):
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr_schedule(
                cfg.learning_rate, total_steps, drops=cfg.lr_drops, **_schedule(cfg)
            )
        )
    return make_adam(cfg.learning_rate, total_steps, cfg.beta_1, cfg.lr_drops, **_schedule(cfg))


def _make_disc_optimizer(cfg: RunConfig, total_steps: int):
    if cfg.disc_optimizer == "adam":
        return make_adam(cfg.learning_rate, total_steps, cfg.beta_1, cfg.lr_drops, **_schedule(cfg))
    return make_disc_sgd(
        cfg.learning_rate,
        total_steps,
        cfg.disc_momentum,
        cfg.disc_weight_decay,
        cfg.lr_drops,
        **_schedule(cfg),
    )
