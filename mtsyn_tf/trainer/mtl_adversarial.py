"""The two-stage adversarial multi-task trainer (paper Algorithm 1)."""

from __future__ import annotations

import keras
import tensorflow as tf

from mtsyn_tf import losses
from mtsyn_tf.metrics.keras_metrics import ContourMetrics, DepthMetrics, NormalAngleMetrics
from mtsyn_tf.models.multitask import MultiTaskNet, to_physical
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.history_pool import FeatureHistoryPool

_TASK_LOSSES = {
    "contour": lambda pred, syn, cfg: losses.contour_loss_per_example(
        pred, syn["contour"], min_edge_pixels=cfg.min_edge_pixels
    ),
    "depth": lambda pred, syn, cfg: losses.depth_loss_per_example(pred, syn["depth"], syn["valid"]),
    "normals": lambda pred, syn, cfg: losses.normals_loss_per_example(
        pred, syn["normals"], syn["valid"]
    ),
}


def grayscale_by_channel(images, channels):
    """The paper's grayscale input: channel ``channels[b]`` of image b, repeated 3 times."""
    picked = tf.gather(images, channels, axis=-1, batch_dims=1)
    return tf.repeat(picked[..., None], 3, axis=-1)


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class MultiTaskAdversarialTrainer(keras.Model):
    """Trains base B + heads H on synthetic images while D aligns B's features with real photos.

    Each ``train_step`` (Algorithm 1):
      1. D frozen: update B, H with ``L_BH = λa·adv(D(z_x) → real) + λe·Le + λd·Ld + λs·Ls``
         (+ ``λa·adv(D(z_y) → synthetic)`` with bi-fool).
      2. B frozen: update D with ``L_D = BCE(D(pool(z_x)) → synthetic) + BCE(D(z_y) → real)``.
    Features z_x come from the stage-1 forward pass and z_y from one pass of the real batch
    up to the tap (Algorithm 1 extracts them once per iteration). Losses are per-example
    sums divided by the global batch, so gradients are right under ``MirroredStrategy``.

    Data: ``{"synthetic": {image, depth, normals, contour, valid}, "real": {image}}``, see
    docs/CONTRACTS.md. ``test_step`` takes the synthetic part (or the full structure).
    """

    def __init__(
        self,
        model: MultiTaskNet,
        discriminator: keras.Model,
        config: TrainerConfig | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        config = config or TrainerConfig()
        self.config = config.validate(model.preset["arch"], model.tasks)
        self.model = model
        self.discriminator = discriminator
        self.tap = config.da_tap or model.preset["da_tap"]
        self.pool = FeatureHistoryPool(config.pool_size, config.pool_swap_prob, name="history_pool")
        self.weights_ = {k: float(v) for k, v in config.loss_weights.items()}

        # === Metric trackers ===
        names = ["loss_bh", "loss_d", "loss_adv"] + [f"loss_{t}" for t in config.tasks]
        names += ["d_acc_synthetic", "d_acc_real"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.eval_metrics = {}
        if "depth" in model.tasks:
            self.eval_metrics["depth"] = DepthMetrics(name="depth")
        if "normals" in model.tasks:
            self.eval_metrics["normals"] = NormalAngleMetrics(name="normals")
        if "contour" in model.tasks:
            self.eval_metrics["contour"] = ContourMetrics(name="contour")

    # ------------------------------------------------------------------ compile
    def compile(self, task_optimizer, disc_optimizer=None, **kwargs):
        """``task_optimizer`` updates B and H; ``disc_optimizer`` updates D (needed if adapting)."""
        if self.config.adapt and disc_optimizer is None:
            raise ValueError("adapt=True needs a disc_optimizer. Received: disc_optimizer=None")
        super().compile(optimizer=task_optimizer, **kwargs)
        self.task_optimizer = task_optimizer
        self.disc_optimizer = disc_optimizer

    def build_optimizers(self):
        """Creates optimizer slots up front (needed under MirroredStrategy before ``fit``)."""
        self.task_optimizer.build(self.model.trainable_variables)
        if self.config.adapt:
            self.disc_optimizer.build(self.discriminator.trainable_variables)

    def build_all(self, batch_size: int = 1):
        """Creates every weight (model, D, pool) with a zero batch, without training."""
        size = self.model.image_size
        zeros = tf.zeros((batch_size, size, size, 3))
        taps = self.model.backbone(zeros, training=False, up_to=self.tap)
        # D and the pool are built even without adaptation: Keras requires every
        # sub-layer to be built, and checkpoints keep one layout across ablations.
        self.discriminator(taps[self.tap], training=False)
        self.pool.build(taps[self.tap].shape)
        self.model(zeros, training=False)
        self.built = True
        return self

    @property
    def metrics(self):
        return list(self.trackers.values()) + list(self.eval_metrics.values())

    # ------------------------------------------------------------------ helpers
    def _step_seed(self, salt: int):
        """Stateless seed from (run seed, step, replica, salt): resumed runs replay it."""
        ctx = tf.distribute.get_replica_context()
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        step = tf.cast(self.task_optimizer.iterations, tf.int64)
        return tf.stack(
            [
                tf.constant(self.config.seed, tf.int64) * 1000003 + step,
                tf.cast(replica, tf.int64) * 7919 + salt,
            ]
        )

    def _maybe_grayscale(self, images, salt: int):
        if not self.config.grayscale:
            return images
        channels = tf.random.stateless_uniform(
            [tf.shape(images)[0]], seed=self._step_seed(salt), maxval=3, dtype=tf.int32
        )
        return grayscale_by_channel(images, channels)

    def _global_batch(self, images):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.cast(tf.shape(images)[0] * replicas, tf.float32)

    def _real_features(self, real_images, training):
        return self.model.backbone(real_images, training=training, up_to=self.tap)[self.tap]

    # ------------------------------------------------------------------ the algorithm
    def stage_bh(self, synthetic, real_images):
        """Stage 1 — D frozen: update B and H on synthetic images with L_BH.

        Returns (synthetic features z_x, real features z_y or None), both without gradient.
        """
        cfg, w = self.config, self.weights_
        x = synthetic["image"]
        global_batch = self._global_batch(x)
        z_y = None
        with tf.GradientTape() as tape:
            taps, predictions = self.model.forward(x, training=True)
            total = tf.zeros([tf.shape(x)[0]])
            for task in cfg.tasks:
                per_example = _TASK_LOSSES[task](predictions[task], synthetic, cfg)
                self.trackers[f"loss_{task}"].update_state(per_example)
                total += w.get(task, 0.0) * per_example
            if cfg.adapt:
                z_x = taps[self.tap]
                # Fool D: synthetic features should look real.
                adversarial = losses.patch_bce_per_example(
                    self.discriminator(z_x, training=True), losses.REAL
                )
                if cfg.real_images_update_base:
                    # Bi-fool: real features should also look synthetic (B learns from y).
                    z_y = self._real_features(real_images, training=True)
                    adversarial += losses.patch_bce_per_example(
                        self.discriminator(z_y, training=True), losses.SYNTHETIC
                    )
                self.trackers["loss_adv"].update_state(adversarial)
                total += w.get("adversarial", 0.0) * adversarial
            self.trackers["loss_bh"].update_state(total)
            loss = tf.reduce_sum(total) / global_batch
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.task_optimizer.apply(grads, variables)
        if not cfg.adapt:
            return None, None
        z_x = tf.stop_gradient(taps[self.tap])
        z_y = None if z_y is None else tf.stop_gradient(z_y)
        return z_x, z_y

    def stage_d(self, z_x, z_y, real_images):
        """Stage 2 — B frozen: update D on (pooled) synthetic vs real features with L_D."""
        if z_y is None:
            z_y = tf.stop_gradient(self._real_features(real_images, training=True))
        z_hist = self.pool(z_x, seed=self._step_seed(3))
        global_batch = self._global_batch(z_x)
        with tf.GradientTape() as tape:
            logits_syn = self.discriminator(z_hist, training=True)
            logits_real = self.discriminator(z_y, training=True)
            per_syn = losses.patch_bce_per_example(logits_syn, losses.SYNTHETIC)
            per_real = losses.patch_bce_per_example(logits_real, losses.REAL)
            loss = (tf.reduce_sum(per_syn) + tf.reduce_sum(per_real)) / global_batch
        variables = self.discriminator.trainable_variables
        self.disc_optimizer.apply(tape.gradient(loss, variables), variables)
        self.trackers["loss_d"].update_state(per_syn + per_real)
        self.trackers["d_acc_synthetic"].update_state(
            losses.patch_accuracy_per_example(logits_syn, losses.SYNTHETIC)
        )
        self.trackers["d_acc_real"].update_state(
            losses.patch_accuracy_per_example(logits_real, losses.REAL)
        )

    def train_step(self, data):
        synthetic = dict(data["synthetic"])
        synthetic["image"] = self._maybe_grayscale(synthetic["image"], salt=1)
        real_images = None
        if self.config.adapt:
            real_images = self._maybe_grayscale(data["real"]["image"], salt=2)
        # Stage 1: D frozen, B and H learn the tasks and to fool D.
        z_x, z_y = self.stage_bh(synthetic, real_images)
        # Stage 2: B frozen, D learns to tell synthetic from real features.
        if self.config.adapt:
            self.stage_d(z_x, z_y, real_images)
        return self._results(self.trackers)

    def test_step(self, data):
        synthetic = data["synthetic"] if "synthetic" in data else data
        x = synthetic["image"]
        if self.config.grayscale:
            # Deterministic evaluation input: the mean of the channels (same scale as one channel).
            x = tf.repeat(tf.reduce_mean(x, axis=-1, keepdims=True), 3, axis=-1)
        predictions = self.model(x, training=False)
        physical = to_physical(predictions)
        valid = synthetic["valid"]
        for task in self.config.tasks:
            per_example = _TASK_LOSSES[task](predictions[task], synthetic, self.config)
            self.trackers[f"loss_{task}"].update_state(per_example)
        if "depth" in self.eval_metrics:
            self.eval_metrics["depth"].update_state(synthetic["depth"], physical["depth"], valid)
        if "normals" in self.eval_metrics:
            self.eval_metrics["normals"].update_state(
                synthetic["normals"], physical["normals"], valid
            )
        if "contour" in self.eval_metrics:
            self.eval_metrics["contour"].update_state(synthetic["contour"], physical["contour"])
        results = self._results(
            {f"loss_{t}": self.trackers[f"loss_{t}"] for t in self.config.tasks}
        )
        for name, metric in self.eval_metrics.items():
            for key, value in metric.result().items():
                results[f"{name}_{key}"] = value
        return results

    @staticmethod
    def _results(trackers):
        return {name: tracker.result() for name, tracker in trackers.items()}

    def call(self, images, training=None):
        return self.model(images, training=training)

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}
