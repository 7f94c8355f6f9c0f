"""The two-stage trainer (paper Algorithm 1) on the `small` preset, batch 2, 227² noise.

Optimizers are SGD wrappers that record the gradients they are given, so the tests see
exactly which weights each stage's loss reaches; SGD (lr 1) moves every weight with a
nonzero gradient, so "changed" and "has a gradient" are checked separately.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.models import TASKS, build_discriminator, build_multitask_model
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer

SIZE, BATCH = 227, 2


class RecordingSGD(keras.optimizers.SGD):
    """SGD that keeps the last gradients it applied, by variable path."""

    def apply(self, grads, trainable_variables=None):
        self.recorded = {
            v.path: None if g is None else np.asarray(g) for g, v in zip(grads, trainable_variables)
        }
        return super().apply(grads, trainable_variables)


def make_batch(seed=0, batch=BATCH):
    rng = np.random.default_rng(seed)
    shape = (batch, SIZE, SIZE)
    valid = (rng.random((*shape, 1)) < 0.9).astype(np.float32)
    normals = rng.normal(size=(*shape, 3))
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    synthetic = {
        "image": rng.random((*shape, 3), dtype=np.float32),
        "depth": (rng.uniform(0.5, 8.0, (*shape, 1)) * valid).astype(np.float32),
        "normals": (normals * valid).astype(np.float32),
        "contour": (rng.random((*shape, 1)) < 0.1).astype(np.float32),  # ~5000 ≥ 350 edges
        "valid": valid,
    }
    return {"synthetic": synthetic, "real": {"image": rng.random((*shape, 3), dtype=np.float32)}}


def make_trainer(config=None, model_tasks=TASKS, optimizer=None, **compile_kwargs):
    keras.utils.set_random_seed(0)
    config = config or TrainerConfig(pool_size=4)
    model = build_multitask_model("small", tasks=model_tasks)
    disc = build_discriminator("small", da_tap=config.da_tap or "conv5")
    trainer = MultiTaskAdversarialTrainer(model, disc, config).build_all()
    optimizer = optimizer or (lambda: RecordingSGD(learning_rate=1.0))
    trainer.compile(optimizer(), optimizer() if config.adapt else None, **compile_kwargs)
    return trainer


def snapshot(variables):
    return {v.path: v.numpy().copy() for v in variables}


def changed(before, variables):
    return {v.path for v in variables if not np.array_equal(before[v.path], v.numpy())}


def paths(variables):
    return {v.path for v in variables}


def with_gradient(recorded):
    return {p for p, g in recorded.items() if g is not None and np.any(g != 0)}


def head_variables(trainer, task):
    return trainer.model.heads[task].trainable_variables


def pre_activation(backbone, images, tap="conv5"):
    """The tap's BN output before its ReLU, training-mode BN (batch statistics)."""
    return backbone(images, training=True, up_to=tap, return_pre_activation=True)[1][tap]


# ------------------------------------------------------------------ stage 1
def test_stage_bh_updates_b_and_h_and_leaves_d_alone():
    trainer = make_trainer()
    data = make_batch()
    model_vars = trainer.model.trainable_variables
    disc_vars = trainer.discriminator.trainable_variables
    before_model, before_disc = snapshot(model_vars), snapshot(disc_vars)
    z_x, z_y = trainer.stage_bh(data["synthetic"], data["real"]["image"])
    assert changed(before_disc, disc_vars) == set()
    assert changed(before_model, model_vars) == paths(model_vars)
    assert with_gradient(trainer.task_optimizer.recorded) == paths(model_vars)
    assert tuple(z_x.shape) == tuple(z_y.shape) == (BATCH, 13, 13, 64)


@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("adapt", [True, False], ids=["adapt", "no_adapt"])
def test_single_task_gradients_reach_only_that_head(task, adapt):
    trainer = make_trainer(TrainerConfig(tasks=(task,), adapt=adapt, pool_size=4))
    data = make_batch()
    before = snapshot(trainer.model.trainable_variables)
    trainer.stage_bh(data["synthetic"], data["real"]["image"])
    reached = with_gradient(trainer.task_optimizer.recorded)
    expected = paths(trainer.model.backbone.trainable_variables) | paths(
        head_variables(trainer, task)
    )
    assert reached == expected
    assert changed(before, trainer.model.trainable_variables) == expected


# ------------------------------------------------------------------ stage 2
def test_stage_d_updates_d_and_leaves_b_and_h_alone():
    trainer = make_trainer()
    data = make_batch()
    images = data["synthetic"]["image"]
    z_x = trainer.model.backbone(images, training=True, up_to="conv5")["conv5"]
    z_y = trainer.model.backbone(data["real"]["image"], training=True, up_to="conv5")["conv5"]
    model_vars = trainer.model.trainable_variables
    disc_vars = trainer.discriminator.trainable_variables
    before_model = snapshot(trainer.model.variables)  # BN statistics included
    before_disc = snapshot(disc_vars)
    trainer.stage_d(tf.stop_gradient(z_x), tf.stop_gradient(z_y))
    assert changed(before_model, trainer.model.variables) == set()
    assert changed(before_disc, disc_vars) == paths(disc_vars)
    assert with_gradient(trainer.disc_optimizer.recorded) == paths(disc_vars)
    del model_vars
    assert int(trainer.pool.count.numpy()) == BATCH  # the synthetic features were pooled


def test_no_adaptation_never_touches_d():
    trainer = make_trainer(TrainerConfig(adapt=False, pool_size=4))
    disc = trainer.discriminator
    disc(np.zeros((1, 13, 13, 64), np.float32))  # give D weights to watch
    before = snapshot(disc.weights)  # trainable and BN statistics
    logs = trainer.train_step(make_batch())
    assert changed(before, disc.weights) == set()
    assert trainer.disc_optimizer is None
    assert float(logs["loss_adv"]) == 0.0 and float(logs["loss_d"]) == 0.0  # never updated
    assert trainer.trackers["loss_d"].count.numpy() == 0


# ------------------------------------------------------------------ the adversarial term
def softplus(x):
    return np.logaddexp(0.0, np.asarray(x, np.float64))


def patch_bce(logits, label):
    flat = np.asarray(logits, np.float64).reshape(len(logits), -1)
    return (label * softplus(-flat) + (1.0 - label) * softplus(flat)).mean(axis=1)


@pytest.mark.parametrize(
    "flags, syn_label, real_label",
    [
        ({}, 0.0, None),  # paper: −log(1 − D(z_x)), real images unused
        ({"update_base_with_real": True}, 0.0, 1.0),  # + −log D(z_y)
        ({"bi_fool": True}, 0.0, 1.0),  # paper §4.5: fool D both ways, the same term
    ],
    ids=["default", "update_base_with_real", "bi_fool"],
)
def test_stage_one_adversarial_term(flags, syn_label, real_label):
    trainer = make_trainer(TrainerConfig(pool_size=4, **flags))
    data = make_batch()
    synthetic, real = data["synthetic"], data["real"]["image"]
    # Independent reference with the weights before the update (training-mode BN).
    backbone, disc = trainer.model.backbone, trainer.discriminator
    # D reads conv5's BatchNorm output before the ReLU (reference code, the default).
    z_x = pre_activation(backbone, synthetic["image"])
    expected = patch_bce(disc(z_x, training=True), syn_label)
    if real_label is not None:
        z_y = pre_activation(backbone, real)
        expected = expected + patch_bce(disc(z_y, training=True), real_label)
    for tracker in trainer.trackers.values():
        tracker.reset_state()
    trainer.stage_bh(synthetic, real)
    logs = {k: float(t.result()) for k, t in trainer.trackers.items()}
    np.testing.assert_allclose(logs["loss_adv"], expected.mean(), rtol=1e-5)
    weights = trainer.config.loss_weights
    total = sum(weights[t] * logs[f"loss_{t}"] for t in TASKS)
    total += weights["adversarial"] * logs["loss_adv"]
    np.testing.assert_allclose(logs["loss_bh"], total, rtol=1e-5)


# ------------------------------------------------------------------ the composed step
class PathRecordingSGD(keras.optimizers.SGD):
    """SGD that records, when traced, which variables it is asked to update."""

    def apply(self, grads, trainable_variables=None):
        self.applied_to = {v.path for v in trainable_variables}
        return super().apply(grads, trainable_variables)


@pytest.mark.parametrize("frozen", ["task_optimizer", "disc_optimizer"])
def test_compiled_train_step_keeps_the_stages_apart(frozen):
    """Under tf.function: stage 1 never moves D's weights, stage 2 never moves B's or H's.

    One optimizer at learning rate 0 freezes its own stage exactly (w − 0·g = w), so what
    still moves can only come from the other stage.
    """
    trainer = make_trainer(optimizer=lambda: PathRecordingSGD(learning_rate=1.0))
    getattr(trainer, frozen).learning_rate = 0.0
    model_vars = trainer.model.trainable_variables
    disc_vars = trainer.discriminator.trainable_variables
    before_model, before_disc = snapshot(model_vars), snapshot(disc_vars)
    data = tf.nest.map_structure(tf.constant, make_batch())
    tf.function(trainer.train_step)(data)
    assert trainer.task_optimizer.applied_to == paths(model_vars)
    assert trainer.disc_optimizer.applied_to == paths(disc_vars)
    if frozen == "disc_optimizer":  # only stage 1 can move anything
        assert changed(before_disc, disc_vars) == set()
        assert changed(before_model, model_vars) == paths(model_vars)
    else:  # only stage 2 can
        assert changed(before_model, model_vars) == set()
        assert changed(before_disc, disc_vars) == paths(disc_vars)


@pytest.mark.parametrize("disc_features", ["pre_activation", "post_relu"])
def test_stage_two_reads_z_x_and_z_y_of_b_before_stage_one(disc_features, monkeypatch):
    """Algorithm 1: both feature batches are extracted before B is updated; D reads the
    tap's BN output before the ReLU (reference code) unless asked for post-ReLU."""
    config = TrainerConfig(pool_size=0, grayscale=False, disc_features=disc_features)
    trainer = make_trainer(config)
    data = make_batch()
    backbone = trainer.model.backbone

    def features(images):
        taps, pre = backbone(images, training=True, up_to="conv5", return_pre_activation=True)
        return (pre if disc_features == "pre_activation" else taps)["conv5"].numpy()

    expected = {"z_x": features(data["synthetic"]["image"]), "z_y": features(data["real"]["image"])}
    seen = {}
    stage_d = trainer.stage_d

    def recording(z_x, z_y, **kwargs):
        seen["z_x"], seen["z_y"] = z_x.numpy(), z_y.numpy()
        return stage_d(z_x, z_y, **kwargs)

    monkeypatch.setattr(trainer, "stage_d", recording)
    trainer.train_step(data)
    for key in ("z_x", "z_y"):
        # The same ops on the same inputs and weights; only kernel-internal summation
        # order may differ (a few float32 ulps of the largest feature).
        scale = np.abs(expected[key]).max()
        np.testing.assert_allclose(seen[key], expected[key], rtol=0, atol=1e-5 * scale)
    if disc_features == "pre_activation":
        assert (seen["z_y"] < 0).mean() > 0.2  # BN output, not rectified
    else:
        assert seen["z_y"].min() >= 0.0


def test_compiled_train_step_batchnorm_statistics_of_b_see_both_domains():
    """B's moving statistics take the synthetic batch (stage 1's forward), then the real
    batch (z_y), both through B's weights before the update (trainer docstring)."""
    trainer = make_trainer(
        TrainerConfig(pool_size=4, grayscale=False), optimizer=lambda: keras.optimizers.SGD(1.0)
    )
    data = tf.nest.map_structure(tf.constant, make_batch())
    conv1 = trainer.model.backbone.conv1  # no padding: BN's input is conv(image − 0.5)

    def batch_mean(images):
        return tf.reduce_mean(conv1.conv(images - 0.5), axis=[0, 1, 2]).numpy()

    mu_syn, mu_real = batch_mean(data["synthetic"]["image"]), batch_mean(data["real"]["image"])
    m, start = conv1.bn.momentum, conv1.bn.moving_mean.numpy()
    tf.function(trainer.train_step)(data)
    expected = m * (m * start + (1 - m) * mu_syn) + (1 - m) * mu_real
    # Means over 2·55·55 positions of the same convolution: float32 reordering only,
    # ≲ 1e-6 of the largest mean; a mean through the updated weights differs by O(1).
    scale = np.abs(expected).max()
    np.testing.assert_allclose(conv1.bn.moving_mean.numpy(), expected, rtol=0, atol=1e-5 * scale)


# ------------------------------------------------------------------ fit
def test_fit_two_steps_eager_and_graph_agree():
    """Eager and compiled fit take the same first step and run the same loop.

    Compared after the first step, from identical weights, as gradients g = (w0 − w1)/lr
    (plain SGD): only float32 summation order differs between the two (oneDNN and Eigen
    pick different reduction orders, eagerly and in a graph). Later steps are not
    compared element-wise: BatchNorm at batch 2 makes later gradients depend so steeply
    on the weights that rounding-level differences grow, and Adam's first step, ≈ lr·sign(g),
    flips sign on gradients that are ~0 (this test compared Adam weights before, and failed on
    AVX2 machines for 171 of 589,824 fc6 weights).
    """
    lr = 1e-2

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.weights = snapshot(self.model.model.trainable_variables)
                self.logs = {k: float(v) for k, v in logs.items()}

    def run(run_eagerly):
        trainer = make_trainer(optimizer=lambda: keras.optimizers.SGD(lr), run_eagerly=run_eagerly)
        dataset = tf.data.Dataset.from_tensor_slices(
            tf.nest.map_structure(lambda *x: np.stack(x), make_batch(0), make_batch(1))
        )
        first = FirstStep()
        history = trainer.fit(dataset, epochs=1, verbose=0, callbacks=[first]).history
        return trainer, first, {k: v[-1] for k, v in history.items()}

    init = snapshot(make_trainer().model.trainable_variables)
    eager, eager_first, eager_logs = run(True)
    graph, graph_first, graph_logs = run(False)
    expected_keys = {"loss_bh", "loss_d", "loss_adv", "d_acc_synthetic", "d_acc_real"}
    expected_keys |= {f"loss_{t}" for t in TASKS}
    assert set(eager_logs) == set(graph_logs) == expected_keys
    assert all(np.isfinite(v) for v in eager_logs.values())
    for trainer in (eager, graph):
        assert int(trainer.task_optimizer.iterations.numpy()) == 2
        assert int(trainer.disc_optimizer.iterations.numpy()) == 2
        assert int(trainer.pool.count.numpy()) == 4
    for key in expected_keys - {"d_acc_synthetic", "d_acc_real"}:
        # Losses of one forward pass from the same weights: float32 sums over ≤ 10⁵ terms,
        # relative error ≲ 1e-5 in practice; 1e-4 leaves a margin, and atol covers
        # losses that are themselves ~0 (the normals loss at initialisation).
        np.testing.assert_allclose(
            eager_first.logs[key], graph_first.logs[key], rtol=1e-4, atol=1e-5, err_msg=key
        )
    for variable in eager.model.trainable_variables:
        path = variable.path
        g_eager = (init[path] - eager_first.weights[path]) / lr
        g_graph = (init[path] - graph_first.weights[path]) / lr
        norm = np.linalg.norm(g_eager)
        assert norm > 0, path
        # Per variable, in norm (single elements near 0 may differ in relative terms):
        # summation-order noise of float32 gradients (measured ≤ 3e-5 of the gradient norm
        # with oneDNN on and off, AVX2 ISA), bounded by 1e-3, plus the rounding of w − lr·g:
        # at most half an ulp of |w| per element, i.e. ‖ulp(w)‖ / (2·lr) in gradient units.
        rounding = np.linalg.norm(np.spacing(np.abs(init[path]).astype(np.float32))) / (2 * lr)
        diff = np.linalg.norm(g_eager - g_graph)
        assert diff <= 1e-3 * norm + 2 * rounding, (path, diff, norm, rounding)


# ------------------------------------------------------------------ configuration
@pytest.mark.parametrize(
    "config, match",
    [
        (TrainerConfig(tasks=(), adapt=False), "Nothing to train"),
        (
            TrainerConfig(adapt=False, loss_weights={"contour": 0, "depth": 0, "normals": 0}),
            "Nothing to train",
        ),
        (TrainerConfig(da_tap="conv3"), "da_tap='conv3'"),
        (TrainerConfig(da_tap="conv5_3"), "da_tap='conv5_3'"),
        (TrainerConfig(bi_fool=True, adapt=False), "bi_fool=True"),
        (TrainerConfig(update_base_with_real=True, adapt=False), "update_base_with_real=True"),
        (TrainerConfig(tasks=("depth", "sky")), "sky"),
        (TrainerConfig(loss_weights={"edges": 1.0}), "edges"),
        (TrainerConfig(loss_weights={"depth": -1.0}), "depth=-1.0"),
    ],
)
def test_invalid_configs(config, match):
    model = build_multitask_model("small")
    with pytest.raises(ValueError, match=match):
        MultiTaskAdversarialTrainer(model, build_discriminator("small"), config)


def test_config_needs_a_head_for_each_task_and_adapt_needs_a_d_optimizer():
    model = build_multitask_model("small", tasks=("depth",))
    with pytest.raises(ValueError, match="no head for"):
        MultiTaskAdversarialTrainer(model, build_discriminator("small"), TrainerConfig())
    trainer = MultiTaskAdversarialTrainer(
        model, build_discriminator("small"), TrainerConfig(tasks=("depth",))
    )
    with pytest.raises(ValueError, match="disc_optimizer=None"):
        trainer.compile(keras.optimizers.SGD())


def test_config_dict_round_trip():
    config = TrainerConfig(tasks=("depth", "normals"), da_tap="fc6", bi_fool=True, seed=3)
    assert TrainerConfig.from_dict(config.to_dict()) == config


# ------------------------------------------------------------------ evaluate
def test_evaluate_returns_the_documented_metrics():
    trainer = make_trainer()
    data = make_batch(seed=5)
    synthetic = data["synthetic"]
    results = trainer.evaluate(tf.data.Dataset.from_tensors(synthetic), return_dict=True, verbose=0)
    expected = {f"loss_{t}" for t in TASKS}
    expected |= {"depth_abs_rel", "depth_rmse", "depth_delta1"}
    expected |= {f"normals_{k}" for k in ("mean", "median", "pct_11_25", "pct_22_5", "pct_30")}
    expected |= {"contour_f_0_5", "contour_ap"}
    assert set(results) == expected
    assert all(np.isfinite(v) for v in results.values())
    # Depth abs_rel against numpy: evaluation input is the channel mean, repeated.
    gray = np.repeat(synthetic["image"].mean(axis=-1, keepdims=True), 3, axis=-1)
    pred = np.exp(trainer.model(gray, training=False)["depth"].numpy().astype(np.float64))
    gt, valid = synthetic["depth"].astype(np.float64), synthetic["valid"] > 0
    abs_rel = np.mean(np.abs(pred - gt)[valid] / gt[valid])
    np.testing.assert_allclose(results["depth_abs_rel"], abs_rel, rtol=1e-4)
    # The full training structure is accepted too, with the same numbers.
    again = trainer.evaluate(tf.data.Dataset.from_tensors(data), return_dict=True, verbose=0)
    for key in expected:
        np.testing.assert_allclose(again[key], results[key], rtol=1e-5, err_msg=key)
