"""The two-stage adversarial multi-task trainer: paper Algorithm 1 (SPEC §3), written once."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from mtsyn_tf import losses
from mtsyn_tf.data import augment
from mtsyn_tf.models.multitask import MultiTaskNet
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.trainer import micro_batches, task_metrics
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.guarded_update import NONFINITE_POLICIES, GuardedUpdate, optimizer_state
from mtsyn_tf.trainer.history_pool import FeatureHistoryPool
from mtsyn_tf.trainer.step_randomness import step_seed

__all__ = ["NONFINITE_POLICIES", "MultiTaskAdversarialTrainer"]


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class MultiTaskAdversarialTrainer(keras.Model):
    """Trains base B + heads H on synthetic images while D aligns B's features with real photos.

    ``train_step`` over k = ``grad_accum_steps`` micro-batches (gradients summed, applied once):
      1. D frozen: update B, H with ``L_BH = Σ_t λ_t·L_t + λ_adv·adv(D(z_x) → real)``
         (+ ``λ_adv·adv(D(z_y) → synthetic)`` with bi-fool).
      2. B frozen: update D with ``L_D = ½·[adv(D(pool(z_x)) → synthetic) + adv(D(z_y) → real)]``
         (the reference code's ½), z_x and z_y both from B before stage 1's update.
    Losses and λ arrive through ``compile``. D reads the tap's BatchNorm output before its
    ReLU by default (``disc_features``). Losses are per-example sums divided by the global
    batch (k · micro-batch · replicas): the update is the whole batch's under
    ``MirroredStrategy`` and accumulation, except for BatchNorm's per-micro-batch statistics.

    BatchNorm (tests/trainer/test_two_stage.py): every pass runs in training mode, as in the
    reference. B's moving statistics take the synthetic batch, then the real one (z_y), both
    before stage 1's update, so they describe both domains; H's the synthetic batch only;
    D's stage 1's pass over z_x (D frozen) and stage 2's passes. Stage 1 changes no weight
    of D, stage 2 none of B or H. ``nonfinite_policy``: see ``guarded_update.py``.

    Data: ``{"synthetic": {image, depth, normals, contour, valid}, "real": {image}}``
    (docs/CONTRACTS.md); ``test_step`` takes the synthetic part (or the whole structure).
    """

    def __init__(
        self, model: MultiTaskNet, discriminator, config: TrainerConfig | None = None,
        grad_accum_steps: int = 1, nonfinite_policy: str = "stop", **kwargs
    ):  # fmt: skip
        super().__init__(**kwargs)
        if not isinstance(grad_accum_steps, int) or grad_accum_steps < 1:
            raise ValueError(
                "grad_accum_steps must be an integer >= 1. "
                f"Received: grad_accum_steps={grad_accum_steps!r}"
            )
        self.grad_accum_steps, self.nonfinite_policy = grad_accum_steps, nonfinite_policy
        self.guard = GuardedUpdate(nonfinite_policy)
        self.config = cfg = (config or TrainerConfig()).validate(model.preset["arch"], model.tasks)
        self.model, self.discriminator = model, discriminator
        self.tap = cfg.da_tap or model.preset["da_tap"]
        # float32 whatever the global policy: the stored features are not recomputed.
        self.pool = FeatureHistoryPool(
            cfg.pool_size, cfg.pool_swap_prob, dtype="float32", name="history_pool"
        )
        # === Metric trackers ===
        names = ["loss_bh", "loss_d", "loss_adv"] + [f"loss_{t}" for t in cfg.tasks]
        names += ["d_acc_synthetic", "d_acc_real"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        if self.guard.skipped_steps is not None:
            self.trackers["skipped_steps"] = self.guard.skipped_steps
        self.eval_metrics = task_metrics.task_metrics(model.tasks)

    def compile(
        self, task_optimizer, disc_optimizer=None, task_losses=None, loss_weights=None,
        adversarial_loss=None, **kwargs
    ):  # fmt: skip
        """keras-io GAN style: B+H's and D's optimizers, the per-example losses, their λ.

        Defaults come from the config: ``task_losses`` ``{task: Loss(synthetic batch, head
        output)}`` for each trained task (``losses.task_losses``); ``loss_weights`` (λ per
        task and "adversarial"; given, they replace the config's, so ``get_config()`` tells
        what was trained); ``adversarial_loss(label, D's logits)``, used by both stages.
        """
        if self.config.adapt and disc_optimizer is None:
            raise ValueError("adapt=True needs a disc_optimizer. Received: disc_optimizer=None")
        if loss_weights is not None:
            self.config = dataclasses.replace(self.config, loss_weights=dict(loss_weights))
            self.config.validate(self.model.preset["arch"], self.model.tasks)
        cfg = self.config
        if task_losses is None:
            task_losses = losses.task_losses(cfg.tasks, cfg.contour_normalization)
        if set(task_losses) != set(cfg.tasks):
            raise ValueError(
                f"task_losses needs one loss per trained task {tuple(cfg.tasks)}. "
                f"Received: task_losses keys={sorted(task_losses)}"
            )
        super().compile(optimizer=task_optimizer, **kwargs)
        self.task_optimizer, self.disc_optimizer = task_optimizer, disc_optimizer
        self.task_losses = dict(task_losses)
        self.loss_weights = {k: float(v) for k, v in cfg.loss_weights.items()}
        self.adversarial_loss = adversarial_loss or losses.PatchBCE()

    def build_optimizers(self):
        """Creates optimizer slots up front (needed under MirroredStrategy before ``fit``)."""
        self.task_optimizer.build(self.model.trainable_variables)
        if self.config.adapt:
            self.disc_optimizer.build(self.discriminator.trainable_variables)

    def build_all(self, batch_size: int = 1):
        """Creates every weight with a zero batch, without training; D and the pool even
        without adaptation (Keras builds every sub-layer; one checkpoint layout)."""
        zeros = tf.zeros((batch_size, self.model.image_size, self.model.image_size, 3))
        features = self._real_features(zeros, training=False)
        self.discriminator(features, training=False)
        self.pool.build(features.shape)
        self.model(zeros, training=False)
        self.built = True
        return self

    @property
    def metrics(self):
        return list(self.trackers.values()) + list(self.eval_metrics.values())

    # === Algorithm 1 ===
    def train_step(self, data):
        # The paper's grey input, drawn per (step, replica): resumed runs replay it.
        synthetic = dict(data["synthetic"], image=self._grey(data["synthetic"]["image"], 1))
        real = self._grey(data["real"]["image"], 2) if self.config.adapt else None
        # Stage 1 — D frozen: B and H learn the tasks and to fool D.
        z_x, z_y = self.stage_bh(synthetic, real)
        # Stage 2 — B frozen: D learns to tell (pooled) synthetic from real features.
        if self.config.adapt:
            self.stage_d(z_x, z_y)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def stage_bh(self, synthetic, real_images):
        """Updates B, H with L_BH; returns z_x, z_y from B before it (None without adaptation)."""
        # Everything stage 1 may change, D's BN statistics included (D runs in training mode).
        saved = self.guard.save(
            self.model.variables
            + self.discriminator.non_trainable_variables
            + optimizer_state(self.task_optimizer)
        )
        n = self._global_batch(synthetic["image"])
        pieces = micro_batches.split((synthetic, real_images), self.grad_accum_steps)
        loss, grads, logs, (z_x, z_y) = micro_batches.accumulate(
            lambda i, syn, real: self._bh_gradients(syn, real, n), pieces
        )
        variables = self.model.trainable_variables
        self.guard.apply(self.task_optimizer, grads, variables, saved, loss, logs, self.trackers)
        return z_x, z_y

    def _bh_gradients(self, synthetic, real_images, global_batch):
        """L_BH of one micro-batch / ``global_batch``: (loss, B+H gradients, logs, z_x, z_y)."""
        w, logs, z_y = self.loss_weights, {}, None
        with tf.GradientTape() as tape:
            taps, predictions = self.model.forward(
                synthetic["image"], training=True, pre_activation=self._pre_activation
            )
            # Losses in float32 whatever the compute dtype (mixed precision).
            predictions = {k: tf.cast(v, tf.float32) for k, v in predictions.items()}
            total = tf.zeros([tf.shape(synthetic["image"])[0]])
            for task in self.config.tasks:
                logs[f"loss_{task}"] = self.task_losses[task](synthetic, predictions[task])
                total += w.get(task, 0.0) * logs[f"loss_{task}"]
            if self.config.adapt:
                # −log D(z_x → real): synthetic features should look real.
                adv = self.adversarial_loss(losses.REAL, self._discriminate(taps[self.tap]))
                if self.config.real_images_update_base:
                    # Bi-fool: real features should also look synthetic (B learns from y).
                    z_y = self._real_features(real_images, training=True)
                    adv += self.adversarial_loss(losses.SYNTHETIC, self._discriminate(z_y))
                logs["loss_adv"] = adv
                total += w.get("adversarial", 0.0) * adv
            logs["loss_bh"] = total
            loss = tf.reduce_sum(total) / global_batch
            # × the dynamic loss scale of a LossScaleOptimizer (its apply() divides it out).
            scaled_loss = self.task_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled_loss, self.model.trainable_variables)
        if not self.config.adapt:
            return loss, grads, logs, None, None
        if z_y is None:  # from the same B as z_x, before the update
            z_y = self._real_features(real_images, training=True)
        return loss, grads, logs, tf.stop_gradient(taps[self.tap]), tf.stop_gradient(z_y)

    def stage_d(self, z_x, z_y):
        """Updates D with L_D on (pooled) synthetic vs real features of the pre-update B."""
        # Everything stage 2 may change (z_y was computed in stage 1).
        d_optimizer = optimizer_state(self.disc_optimizer)
        saved = self.guard.save(self.discriminator.variables + d_optimizer + self.pool.variables)
        n = self._global_batch(z_x)
        pieces = micro_batches.split((z_x, z_y), self.grad_accum_steps)
        # Salt 0 for the first micro-batch: k = 1 and k > 1 draw the same first pool swaps.
        loss, grads, logs, _ = micro_batches.accumulate(
            lambda i, x, y: self._d_gradients(x, y, n, salt=100 * i), pieces
        )
        variables = self.discriminator.trainable_variables
        self.guard.apply(self.disc_optimizer, grads, variables, saved, loss, logs, self.trackers)

    def _d_gradients(self, z_x, z_y, global_batch, salt: int = 0):
        """L_D of one micro-batch / ``global_batch``: (loss, D's gradients, logs)."""
        z_hist = self.pool(z_x, seed=self._seed(3 + salt))
        with tf.GradientTape() as tape:
            logits_syn, logits_real = self._discriminate(z_hist), self._discriminate(z_y)
            per_syn = self.adversarial_loss(losses.SYNTHETIC, logits_syn)
            per_example = 0.5 * (per_syn + self.adversarial_loss(losses.REAL, logits_real))
            loss = tf.reduce_sum(per_example) / global_batch
            scaled_loss = self.disc_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled_loss, self.discriminator.trainable_variables)
        accuracy = losses.patch_accuracy_per_example
        return (
            loss,
            grads,
            {
                "loss_d": per_example,
                "d_acc_synthetic": accuracy(logits_syn, losses.SYNTHETIC),
                "d_acc_real": accuracy(logits_real, losses.REAL),
            },
        )

    # === Helpers ===
    def _seed(self, salt: int):
        return step_seed(self.config.seed, self.task_optimizer.iterations, salt)

    def _grey(self, images, salt: int):
        if not self.config.grayscale:
            return images
        return augment.random_grayscale_channel(images, self._seed(salt))

    def _global_batch(self, images):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.cast(tf.shape(images)[0] * replicas, tf.float32)

    @property
    def _pre_activation(self) -> bool:
        return self.config.disc_features == "pre_activation"

    def _real_features(self, real_images, training):
        """B's features of real images up to D's tap, as D reads them."""
        taps, pre = self.model.backbone(
            real_images, training=training, up_to=self.tap, return_pre_activation=True
        )
        return (pre if self._pre_activation else taps)[self.tap]

    def _discriminate(self, features):
        # Logits in float32 whatever the compute dtype (mixed precision).
        return tf.cast(self.discriminator(features, training=True), tf.float32)

    # === Evaluation ===
    def test_step(self, data):
        synthetic = data["synthetic"] if "synthetic" in data else data
        # The run's test-time input contract (channel mean for a grey-trained run).
        images = InputContract.for_grayscale(self.config.grayscale)(synthetic["image"])
        predictions = self.model(images, training=False)
        predictions = {k: tf.cast(v, tf.float32) for k, v in predictions.items()}
        for task in self.config.tasks:
            loss = self.task_losses[task](synthetic, predictions[task])
            self.trackers[f"loss_{task}"].update_state(loss)
        task_metrics.update_task_metrics(self.eval_metrics, synthetic, predictions)
        results = {f"loss_{t}": self.trackers[f"loss_{t}"].result() for t in self.config.tasks}
        return {**results, **task_metrics.task_metric_results(self.eval_metrics)}

    def call(self, images, training=None):
        return self.model(images, training=training)

    def get_config(self):
        return {
            "config": self.config.to_dict(),
            "grad_accum_steps": self.grad_accum_steps,
            "nonfinite_policy": self.nonfinite_policy,
            "name": self.name,
        }
