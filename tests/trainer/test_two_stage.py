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
    assert tuple(z_x.shape) == (BATCH, 13, 13, 64)
    assert z_y is None  # real features are only needed in stage 1 for bi-fool / real updates


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
    model_vars = trainer.model.trainable_variables
    disc_vars = trainer.discriminator.trainable_variables
    before_model, before_disc = snapshot(model_vars), snapshot(disc_vars)
    trainer.stage_d(tf.stop_gradient(z_x), None, data["real"]["image"])
    assert changed(before_model, model_vars) == set()
    assert changed(before_disc, disc_vars) == paths(disc_vars)
    assert with_gradient(trainer.disc_optimizer.recorded) == paths(disc_vars)
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
    z_x = backbone(synthetic["image"], training=True, up_to="conv5")["conv5"]
    expected = patch_bce(disc(z_x, training=True), syn_label)
    if real_label is not None:
        z_y = backbone(real, training=True, up_to="conv5")["conv5"]
        expected = expected + patch_bce(disc(z_y, training=True), real_label)
    for tracker in trainer.trackers.values():
        tracker.reset_state()
    _, z_y_out = trainer.stage_bh(synthetic, real)
    assert (z_y_out is None) == (real_label is None)
    logs = {k: float(t.result()) for k, t in trainer.trackers.items()}
    np.testing.assert_allclose(logs["loss_adv"], expected.mean(), rtol=1e-5)
    weights = trainer.config.loss_weights
    total = sum(weights[t] * logs[f"loss_{t}"] for t in TASKS)
    total += weights["adversarial"] * logs["loss_adv"]
    np.testing.assert_allclose(logs["loss_bh"], total, rtol=1e-5)


# ------------------------------------------------------------------ fit
def test_fit_two_steps_eager_and_graph_agree():
    def run(run_eagerly):
        # SGD: weight differences stay proportional to gradient differences (Adam's first
        # steps are ≈ lr·sign(g) and would amplify float-reordering noise in tiny gradients).
        trainer = make_trainer(
            optimizer=lambda: keras.optimizers.SGD(0.01, momentum=0.9), run_eagerly=run_eagerly
        )
        dataset = tf.data.Dataset.from_tensor_slices(
            tf.nest.map_structure(lambda *x: np.stack(x), make_batch(0), make_batch(1))
        )
        history = trainer.fit(dataset, epochs=1, verbose=0).history
        return trainer, {k: v[-1] for k, v in history.items()}

    init = snapshot(make_trainer().model.trainable_variables)
    eager, eager_logs = run(True)
    graph, graph_logs = run(False)
    expected_keys = {"loss_bh", "loss_d", "loss_adv", "d_acc_synthetic", "d_acc_real"}
    expected_keys |= {f"loss_{t}" for t in TASKS}
    assert set(eager_logs) == set(graph_logs) == expected_keys
    assert all(np.isfinite(v) for v in eager_logs.values())
    for trainer in (eager, graph):
        assert int(trainer.task_optimizer.iterations.numpy()) == 2
        assert int(trainer.disc_optimizer.iterations.numpy()) == 2
        assert int(trainer.pool.count.numpy()) == 4
    for key in expected_keys:
        np.testing.assert_allclose(eager_logs[key], graph_logs[key], rtol=1e-3, atol=1e-4)
    for a, b in zip(eager.model.trainable_variables, graph.model.trainable_variables):
        step_a, step_b = a.numpy() - init[a.path], b.numpy() - init[b.path]
        scale = np.abs(step_a).max()
        assert scale > 0, a.path
        # 1e-6: a few float32 ulps of weights near 1 (BN γ), where the steps are ~1e-4.
        np.testing.assert_allclose(step_a, step_b, atol=1e-2 * scale + 1e-6, err_msg=a.path)


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
