"""The two-stage adversarial multi-task trainer (paper Algorithm 1)."""

from __future__ import annotations

import keras
import tensorflow as tf

from mtsyn_tf import losses
from mtsyn_tf.data import augment
from mtsyn_tf.metrics.keras_metrics import ContourMetrics, DepthMetrics, NormalAngleMetrics
from mtsyn_tf.models.multitask import MultiTaskNet, to_physical
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.history_pool import FeatureHistoryPool

NONFINITE_POLICIES = ("stop", "skip")

# Per-example loss of each task head: (prediction, synthetic batch, TrainerConfig) -> [B].
TASK_LOSSES = {
    "contour": lambda pred, syn, cfg: losses.contour_loss_per_example(
        pred, syn["contour"], normalization=cfg.contour_normalization
    ),
    "depth": lambda pred, syn, cfg: losses.depth_loss_per_example(pred, syn["depth"], syn["valid"]),
    "normals": lambda pred, syn, cfg: losses.normals_loss_per_example(
        pred, syn["normals"], syn["valid"]
    ),
}


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class MultiTaskAdversarialTrainer(keras.Model):
    """Trains base B + heads H on synthetic images while D aligns B's features with real photos.

    Each ``train_step`` (Algorithm 1):
      1. D frozen: update B, H with ``L_BH = λa·adv(D(z_x) → real) + λe·Le + λd·Ld + λs·Ls``
         (+ ``λa·adv(D(z_y) → synthetic)`` with bi-fool).
      2. B frozen: update D with
         ``L_D = ½·[BCE(D(pool(z_x)) → synthetic) + BCE(D(z_y) → real)]`` (the reference
         code's ½, which sets D's SGD step size).
    Both z_x (from stage 1's forward pass) and z_y (one pass of the real batch up to the
    tap) come from B *before* stage 1's update, as Algorithm 1 extracts both per iteration
    before updating. D reads the tap's BatchNorm output before its ReLU by default
    (``config.disc_features``), as the reference code does; B's own forward still applies
    the ReLU. Losses are per-example sums divided by the global batch, so gradients are
    right under ``MirroredStrategy``.

    BatchNorm, intended behaviour (tests/trainer/test_two_stage.py holds it):
      * every forward pass runs in training mode (batch statistics), as in the reference;
      * B's moving statistics are updated by the synthetic batch (stage 1's forward) and
        then by the real batch (z_y's pass), both before stage 1's update: the statistics
        used at test time describe both domains, like the reference's ``netB`` that runs
        on both batches in training mode;
      * H's moving statistics: the synthetic batch only (the heads never see real images);
      * D's moving statistics: stage 1's pass over z_x (D frozen, but in training mode, as
        in the reference) and stage 2's passes over pool(z_x) and z_y. Stage 1 changes no
        trainable weight of D; stage 2 changes no weight or statistic of B or H.

    Data: ``{"synthetic": {image, depth, normals, contour, valid}, "real": {image}}``, see
    docs/CONTRACTS.md. ``test_step`` takes the synthetic part (or the full structure).

    Args:
        grad_accum_steps: k. Each step's batch is split into k micro-batches; stage 1
            accumulates the B/H gradients of all k (D fixed) and applies them once, then
            stage 2 accumulates D's gradients over the k micro-batches' features from the
            same pre-update B and applies once. Losses are divided by the global batch
            (k · micro-batch · replicas), so the update is the one of the whole batch
            except for BatchNorm: batch statistics are per micro-batch and the moving
            statistics take k updates per step.
        nonfinite_policy: "stop" applies every update (``callbacks.NonFiniteLossGuard``
            stops the run at the first non-finite loss); "skip" rolls a stage back when
            its loss or gradients are non-finite on any replica (weights, BatchNorm
            statistics, optimizer slots and step, D's pool), leaves the non-finite
            values out of the loss trackers, and counts such steps in ``skipped_steps``.
    """

    def __init__(
        self,
        model: MultiTaskNet,
        discriminator: keras.Model,
        config: TrainerConfig | None = None,
        grad_accum_steps: int = 1,
        nonfinite_policy: str = "stop",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(grad_accum_steps, int) or grad_accum_steps < 1:
            raise ValueError(
                f"grad_accum_steps must be an integer >= 1. Received: grad_accum_steps={grad_accum_steps!r}"
            )
        if nonfinite_policy not in NONFINITE_POLICIES:
            raise ValueError(
                f"nonfinite_policy must be one of {NONFINITE_POLICIES}. "
                f"Received: nonfinite_policy={nonfinite_policy!r}"
            )
        self.grad_accum_steps = grad_accum_steps
        self.nonfinite_policy = nonfinite_policy
        config = config or TrainerConfig()
        self.config = config.validate(model.preset["arch"], model.tasks)
        self.model = model
        self.discriminator = discriminator
        self.tap = config.da_tap or model.preset["da_tap"]
        # float32 whatever the global policy: the stored features are not recomputed.
        self.pool = FeatureHistoryPool(
            config.pool_size, config.pool_swap_prob, dtype="float32", name="history_pool"
        )
        self.weights_ = {k: float(v) for k, v in config.loss_weights.items()}

        # === Metric trackers ===
        names = ["loss_bh", "loss_d", "loss_adv"] + [f"loss_{t}" for t in config.tasks]
        names += ["d_acc_synthetic", "d_acc_real"]
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}
        if nonfinite_policy == "skip":
            # Stages rolled back this epoch (B/H and D stages counted separately).
            self.trackers["skipped_steps"] = keras.metrics.Sum(name="skipped_steps")
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
        features = self._real_features(zeros, training=False)
        # D and the pool are built even without adaptation: Keras requires every
        # sub-layer to be built, and checkpoints keep one layout across ablations.
        self.discriminator(features, training=False)
        self.pool.build(features.shape)
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
        # The data layer's op, with a stateless seed of (step, replica) so resumes replay it.
        return augment.random_grayscale_channel(images, self._step_seed(salt))

    def _global_batch(self, images):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.cast(tf.shape(images)[0] * replicas, tf.float32)

    @property
    def _pre_activation(self) -> bool:
        return self.config.disc_features == "pre_activation"

    def _real_features(self, real_images, training):
        """B's features of the real batch up to D's tap, as D reads them."""
        taps, pre = self.model.backbone(
            real_images, training=training, up_to=self.tap, return_pre_activation=True
        )
        return (pre if self._pre_activation else taps)[self.tap]

    def _discriminate(self, features):
        # Logits in float32 whatever the compute dtype (mixed precision).
        return tf.cast(self.discriminator(features, training=True), tf.float32)

    def _track(self, logs, finite=None):
        """Adds per-example values to the trackers; with ``finite`` false, adds nothing."""
        for name, values in logs.items():
            if finite is None:
                self.trackers[name].update_state(values)
            else:
                weight = tf.cast(finite, tf.float32) * tf.ones_like(values)
                self.trackers[name].update_state(
                    tf.where(finite, values, tf.zeros_like(values)), sample_weight=weight
                )

    # ------------------------------------------------------------------ the algorithm
    def stage_bh(self, synthetic, real_images):
        """Stage 1 — D frozen: update B and H on synthetic images with L_BH.

        Returns (synthetic features z_x, real features z_y), both computed by B before
        this update and cut from the graph (both None without adaptation).
        """
        guard = self._snapshot(self._bh_state())
        loss, grads, logs, z_x, z_y = self._bh_gradients(
            synthetic, real_images, self._global_batch(synthetic["image"])
        )
        self._apply(self.task_optimizer, grads, self.model.trainable_variables, loss, logs, guard)
        return z_x, z_y

    def _bh_gradients(self, synthetic, real_images, global_batch):
        """L_BH of one (micro-)batch, divided by ``global_batch``, and its B/H gradients.

        Returns (loss, gradients, per-example logs, z_x, z_y) with z_x / z_y (None without
        adaptation) cut from the graph, both from B before the update.
        """
        cfg, w = self.config, self.weights_
        x = synthetic["image"]
        optimizer = self.task_optimizer
        logs = {}
        z_y = None
        with tf.GradientTape() as tape:
            taps, predictions = self.model.forward(
                x, training=True, pre_activation=self._pre_activation
            )
            # Losses in float32 whatever the compute dtype (mixed precision).
            predictions = {k: tf.cast(v, tf.float32) for k, v in predictions.items()}
            total = tf.zeros([tf.shape(x)[0]])
            for task in cfg.tasks:
                per_example = TASK_LOSSES[task](predictions[task], synthetic, cfg)
                logs[f"loss_{task}"] = per_example
                total += w.get(task, 0.0) * per_example
            if cfg.adapt:
                # Fool D: synthetic features should look real.
                adversarial = losses.patch_bce_per_example(
                    self._discriminate(taps[self.tap]), losses.REAL
                )
                if cfg.real_images_update_base:
                    # Bi-fool: real features should also look synthetic (B learns from y).
                    z_y = self._real_features(real_images, training=True)
                    adversarial += losses.patch_bce_per_example(
                        self._discriminate(z_y), losses.SYNTHETIC
                    )
                logs["loss_adv"] = adversarial
                total += w.get("adversarial", 0.0) * adversarial
            logs["loss_bh"] = total
            loss = tf.reduce_sum(total) / global_batch
            # Identity for plain optimizers; × the dynamic scale for a LossScaleOptimizer,
            # whose apply() divides the gradients by it again.
            scaled_loss = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled_loss, self.model.trainable_variables)
        if not cfg.adapt:
            return loss, grads, logs, None, None
        if z_y is None:
            # Algorithm 1: z_y from the same B as z_x, before the update is applied.
            z_y = self._real_features(real_images, training=True)
        return loss, grads, logs, tf.stop_gradient(taps[self.tap]), tf.stop_gradient(z_y)

    def stage_d(self, z_x, z_y):
        """Stage 2 — B frozen: update D on (pooled) synthetic vs real features with L_D."""
        guard = self._snapshot(self._d_state())
        loss, grads, logs = self._d_gradients(z_x, z_y, self._global_batch(z_x))
        self._apply(
            self.disc_optimizer, grads, self.discriminator.trainable_variables, loss, logs, guard
        )

    def _d_gradients(self, z_x, z_y, global_batch, salt: int = 0):
        """L_D of one (micro-)batch, divided by ``global_batch``, and D's gradients."""
        z_hist = self.pool(z_x, seed=self._step_seed(3 + salt))
        with tf.GradientTape() as tape:
            logits_syn = self._discriminate(z_hist)
            logits_real = self._discriminate(z_y)
            per_syn = losses.patch_bce_per_example(logits_syn, losses.SYNTHETIC)
            per_real = losses.patch_bce_per_example(logits_real, losses.REAL)
            per_example = 0.5 * (per_syn + per_real)
            loss = tf.reduce_sum(per_example) / global_batch
            scaled_loss = self.disc_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled_loss, self.discriminator.trainable_variables)
        logs = {
            "loss_d": per_example,
            "d_acc_synthetic": losses.patch_accuracy_per_example(logits_syn, losses.SYNTHETIC),
            "d_acc_real": losses.patch_accuracy_per_example(logits_real, losses.REAL),
        }
        return loss, grads, logs

    # ------------------------------------------------------------------ non-finite steps
    def _bh_state(self):
        """What stage 1 may change: B/H (BN statistics included), D's BN statistics (D runs
        in training mode to give the adversarial term), the task optimizer."""
        return (
            self.model.variables
            + self.discriminator.non_trainable_variables
            + _optimizer_state(self.task_optimizer)
        )

    def _d_state(self):
        """What stage 2 may change: D, its optimizer, the pool (z_y is computed in stage 1)."""
        return (
            self.discriminator.variables
            + _optimizer_state(self.disc_optimizer)
            + self.pool.variables
        )

    def _snapshot(self, variables):
        """Values to roll back to (only under ``nonfinite_policy="skip"``)."""
        if self.nonfinite_policy != "skip":
            return None
        return [(v, tf.identity(v.value)) for v in variables]

    def _apply(self, optimizer, grads, variables, loss, logs, guard):
        if guard is None:
            optimizer.apply(grads, variables)
            self._track(logs)
            return
        finite = _all_replicas_finite([loss, *logs.values()] + _unscaled_checks(optimizer, grads))
        safe = [None if g is None else tf.where(finite, g, tf.zeros_like(g)) for g in grads]
        optimizer.apply(safe, variables)
        for variable, saved in guard:
            variable.assign(tf.where(finite, variable.value, saved))
        self._track(logs, finite)
        self.trackers["skipped_steps"].update_state(1.0 - tf.cast(finite, tf.float32))

    # ------------------------------------------------------------------ one step
    def train_step(self, data):
        synthetic = dict(data["synthetic"])
        synthetic["image"] = self._maybe_grayscale(synthetic["image"], salt=1)
        real_images = None
        if self.config.adapt:
            real_images = self._maybe_grayscale(data["real"]["image"], salt=2)
        if self.grad_accum_steps > 1:
            self._accumulated_step(synthetic, real_images)
            return self._results(self.trackers)
        # Stage 1: D frozen, B and H learn the tasks and to fool D.
        z_x, z_y = self.stage_bh(synthetic, real_images)
        # Stage 2: B frozen, D learns to tell synthetic from real features.
        if self.config.adapt:
            self.stage_d(z_x, z_y)
        return self._results(self.trackers)

    def _accumulated_step(self, synthetic, real_images):
        """Algorithm 1 on k micro-batches: sum the gradients of each stage, apply once.

        Micro-batch i+1 starts after micro-batch i's gradients exist (control
        dependencies), so only one micro-batch's activations are alive at a time.
        """
        k = self.grad_accum_steps
        global_batch = self._global_batch(synthetic["image"])
        micro_syn = _split(synthetic, k)
        micro_real = [None] * k if real_images is None else _split(real_images, k)

        guard = self._snapshot(self._bh_state())
        total_loss, acc, logs, features = 0.0, None, [], []
        for i in range(k):
            with tf.control_dependencies(_tensors(acc)):
                syn_i = tf.nest.map_structure(tf.identity, micro_syn[i])
            loss, grads, logs_i, z_x, z_y = self._bh_gradients(syn_i, micro_real[i], global_batch)
            total_loss += loss
            acc = grads if acc is None else [_add(a, g) for a, g in zip(acc, grads)]
            logs.append(logs_i)
            features.append((z_x, z_y))
        self._apply(
            self.task_optimizer,
            acc,
            self.model.trainable_variables,
            total_loss,
            _concat_logs(logs),
            guard,
        )
        if not self.config.adapt:
            return

        guard = self._snapshot(self._d_state())
        total_loss, acc, logs = 0.0, None, []
        for i in range(k):
            with tf.control_dependencies(_tensors(acc)):
                z_x = tf.identity(features[i][0])
            # Salt 0 for the first micro-batch: k = 1 draws exactly what stage_d draws.
            loss, grads, logs_i = self._d_gradients(z_x, features[i][1], global_batch, salt=100 * i)
            total_loss += loss
            acc = grads if acc is None else [_add(a, g) for a, g in zip(acc, grads)]
            logs.append(logs_i)
        self._apply(
            self.disc_optimizer,
            acc,
            self.discriminator.trainable_variables,
            total_loss,
            _concat_logs(logs),
            guard,
        )

    def test_step(self, data):
        synthetic = data["synthetic"] if "synthetic" in data else data
        # The run's test-time input contract (channel mean for a grey-trained run).
        x = InputContract.for_grayscale(self.config.grayscale)(synthetic["image"])
        predictions = self.model(x, training=False)
        predictions = {k: tf.cast(v, tf.float32) for k, v in predictions.items()}
        physical = to_physical(predictions)
        valid = synthetic["valid"]
        for task in self.config.tasks:
            per_example = TASK_LOSSES[task](predictions[task], synthetic, self.config)
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
        return {
            "config": self.config.to_dict(),
            "grad_accum_steps": self.grad_accum_steps,
            "nonfinite_policy": self.nonfinite_policy,
            "name": self.name,
        }


# ---------------------------------------------------------------------- helpers
def _optimizer_state(optimizer):
    """An optimizer's slots and step; for a LossScaleOptimizer, its inner optimizer's only:
    the dynamic loss scale must keep its own reaction to overflow (halving)."""
    if optimizer is None:
        return []
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return list(inner.variables)


def _unscaled_checks(optimizer, grads):
    """Gradients to check for the skip policy. A LossScaleOptimizer already skips
    steps whose scaled gradients overflow (and lowers its scale), so those are not
    counted as non-finite steps; only its loss is checked."""
    if hasattr(optimizer, "inner_optimizer"):
        return []
    return [g for g in grads if g is not None]


def _all_replicas_finite(tensors):
    """True iff every tensor is finite on every replica (all replicas take one branch)."""
    bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(t), tf.float32)) for t in tensors])
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and tf.distribute.get_strategy().num_replicas_in_sync > 1:
        bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, bad)
    return tf.equal(bad, 0.0)


def _split(structure, k):
    """k micro-batches of a batch (a tensor or a dict of tensors) along axis 0."""
    leaves = tf.nest.flatten(structure)
    batch = leaves[0].shape[0]
    if batch is not None and batch % k:
        raise ValueError(
            f"The per-replica batch ({batch}) must be divisible by grad_accum_steps ({k})."
        )
    parts = [tf.split(leaf, k, axis=0) for leaf in leaves]
    return [tf.nest.pack_sequence_as(structure, [p[i] for p in parts]) for i in range(k)]


def _add(a, b):
    if a is None or b is None:
        return a if b is None else b
    return a + b


def _tensors(grads):
    return [] if grads is None else [g for g in grads if g is not None]


def _concat_logs(logs):
    return {name: tf.concat([entry[name] for entry in logs], axis=0) for name in logs[0]}
