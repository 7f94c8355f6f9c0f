"""The two-stage adversarial multi-task trainer: paper Algorithm 1 (SPEC §3), written once."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from mtsyn_tf import losses
from mtsyn_tf.data import augment
from mtsyn_tf.trainer import evaluation, micro_batches
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.guarded_update import NONFINITE_POLICIES, GuardedUpdate  # noqa: F401
from mtsyn_tf.trainer.history_pool import FeatureHistoryPool
from mtsyn_tf.trainer.step_randomness import step_seed


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class MultiTaskAdversarialTrainer(keras.Model):
    """Trains base B + heads H on synthetic images while D aligns B's features with real photos.

    ``train_step`` over k = ``grad_accum_steps`` micro-batches (gradients summed, applied once):
      1. D frozen: update B, H with ``L_BH = Σ_t λ_t·L_t + λ_adv·adv(D(z_x) → real)``
         (+ ``λ_adv·adv(D(z_y) → synthetic)`` with bi-fool);
      2. B frozen: update D with ``L_D = ½·[adv(D(pool(z_x)) → synthetic) + adv(D(z_y) → real)]``
         (the reference's ½), z_x and z_y both from B before stage 1's update.
    Losses and λ come through ``compile``, summed per example and divided by the global batch
    (k · micro-batch · replicas): the whole batch's update, but for BatchNorm, which runs in
    training mode in every pass (statistics per micro-batch; B's see both domains, as in the
    reference). D reads the tap's BN output before its ReLU by default (``disc_features``).
    Data: ``{"synthetic": {image, depth, normals, contour, valid}, "real": {image}}``
    (docs/CONTRACTS.md). ``nonfinite_policy``: see ``guarded_update.py``.
    """

    def __init__(
        self, model, discriminator, config: TrainerConfig | None = None, grad_accum_steps=1,
        nonfinite_policy="stop", **kwargs
    ):  # fmt: skip
        super().__init__(**kwargs)
        micro_batches.check_steps(grad_accum_steps)
        self.grad_accum_steps, self.nonfinite_policy = grad_accum_steps, nonfinite_policy
        self.config = cfg = (config or TrainerConfig()).validate(model.preset["arch"], model.tasks)
        self.model, self.discriminator = model, discriminator
        self.tap = cfg.da_tap or model.preset["da_tap"]
        self.pre_activation = cfg.disc_features == "pre_activation"
        # float32 whatever the global policy: the stored features are not recomputed.
        self.pool = FeatureHistoryPool(
            cfg.pool_size, cfg.pool_swap_prob, dtype="float32", name="history_pool"
        )
        # Metric trackers: the epoch means of the per-example logs.
        names = ["loss_bh", "loss_d", "loss_adv", *[f"loss_{t}" for t in cfg.tasks]]
        names += ["d_acc_synthetic", "d_acc_real"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.guard = GuardedUpdate(nonfinite_policy, self.trackers)  # + skipped_steps if "skip"
        self.eval_metrics = evaluation.task_metrics(model.tasks)

    def compile(
        self, task_optimizer, disc_optimizer=None, task_losses=None, loss_weights=None,
        adversarial_loss=None, **kwargs
    ):  # fmt: skip
        """keras-io GAN style: B+H's and D's optimizers, ``task_losses`` ``{task: Loss(synthetic,
        output)}``, ``loss_weights`` (λ), ``adversarial_loss(label, logits)``; default: config's."""
        if self.config.adapt and disc_optimizer is None:
            raise ValueError("adapt=True needs a disc_optimizer. Received: disc_optimizer=None")
        if loss_weights is not None:
            self.config = dataclasses.replace(self.config, loss_weights=dict(loss_weights))
            self.config.validate(self.model.preset["arch"], self.model.tasks)
        cfg = self.config
        if task_losses is None:
            task_losses = losses.task_losses(cfg.tasks, cfg.contour_normalization)
        losses.check_task_losses(task_losses, cfg.tasks)
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
        """Creates every weight (D and pool even without adaptation: one checkpoint layout)."""
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
        # Stage 2 — B frozen: D learns to tell (pooled) synthetic from real features
        # (under nonfinite_policy="skip", undone with a rolled-back stage 1: one batch).
        if self.config.adapt:
            self.stage_d(z_x, z_y, require=self.guard.last_kept)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def stage_bh(self, synthetic, real_images):
        """Updates B, H with L_BH; returns z_x, z_y from B before it (None without adaptation)."""
        n = micro_batches.global_batch(synthetic["image"])
        # B, H and D's BN statistics (D runs in training mode) change in stage 1.
        state = self.model.variables + self.discriminator.non_trainable_variables
        gradients = lambda i, syn, real: self._bh_gradients(syn, real, n)  # noqa: E731
        pieces = micro_batches.split((synthetic, real_images), self.grad_accum_steps)
        return self.guard.step(self.task_optimizer, self.model, state, gradients, pieces)

    def _bh_gradients(self, synthetic, real_images, global_batch):
        """L_BH of one micro-batch / ``global_batch``: (loss, B+H gradients, logs, z_x, z_y)."""
        x, w, logs, z_y = synthetic["image"], self.loss_weights, {}, None
        with tf.GradientTape() as tape:
            taps, outputs = self.model.forward(x, training=True, pre_activation=self.pre_activation)
            # Losses in float32 whatever the compute dtype (mixed precision).
            predictions = {k: tf.cast(v, tf.float32) for k, v in outputs.items()}
            total = tf.zeros([tf.shape(x)[0]])
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

    def stage_d(self, z_x, z_y, require=None):
        """Updates D with L_D on (pooled) synthetic vs real features of the pre-update B;
        undone (under nonfinite_policy="skip") unless ``require`` holds."""
        n = micro_batches.global_batch(z_x)
        # Salt 0 for the first micro-batch: k = 1 and k > 1 draw the same first pool swaps.
        gradients = lambda i, x, y: self._d_gradients(x, y, n, salt=100 * i)  # noqa: E731
        state = self.discriminator.variables + self.pool.variables
        pieces = micro_batches.split((z_x, z_y), self.grad_accum_steps)
        self.guard.step(self.disc_optimizer, self.discriminator, state, gradients, pieces, require)

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
        logs = {"loss_d": per_example, "d_acc_synthetic": accuracy(logits_syn, losses.SYNTHETIC)}
        logs["d_acc_real"] = accuracy(logits_real, losses.REAL)
        return loss, grads, logs

    def _seed(self, salt: int):
        return step_seed(self.config.seed, self.task_optimizer.iterations, salt)

    def _grey(self, images, salt: int):
        grey = self.config.grayscale
        return augment.random_grayscale_channel(images, self._seed(salt)) if grey else images

    def _real_features(self, real_images, training):
        """B's features of real images up to D's tap, as D reads them."""
        taps, pre = self.model.backbone(
            real_images, training=training, up_to=self.tap, return_pre_activation=True
        )
        return (pre if self.pre_activation else taps)[self.tap]

    def _discriminate(self, features):  # logits in float32 whatever the compute dtype
        return tf.cast(self.discriminator(features, training=True), tf.float32)

    def test_step(self, data):  # held-out task losses and head metrics
        return evaluation.evaluate_batch(self, data)

    def call(self, images, training=None):
        return self.model(images, training=training)

    def get_config(self):
        config = {"config": self.config.to_dict(), "grad_accum_steps": self.grad_accum_steps}
        return {**config, "nonfinite_policy": self.nonfinite_policy, "name": self.name}
