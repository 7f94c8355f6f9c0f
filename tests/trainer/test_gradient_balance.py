"""The λ balance the tasks' gradients on B (paper §3.1), measured on rendered scenes.

The fixture is a handful of Mitsuba renders of the project's procedural rooms (the demo's
scenes, fewer samples per pixel): 1-pixel instance contours, p ≈ 3 % edge pixels, which
is what made the old per-pixel contour mean ~250× too weak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.data import augment
from mtsyn_tf.models import build_discriminator, build_multitask_model
from mtsyn_tf.trainer import gradient_balance
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory):
    """6 rendered 227² rooms (scene ids 0–5, the demo's first scenes) as training shards."""
    from mtsyn_tf.render.generate import RenderConfig, generate_dataset

    out = str(tmp_path_factory.mktemp("rendered_rooms"))
    # Labels (depth, normals, instance contours) do not depend on spp; 2 spp keeps it fast.
    generate_dataset(out, num_scenes=6, config=RenderConfig(resolution=227, spp=2, seed=0))
    return out


def _measure(rendered_dir, preset, batch_size, **config):
    return gradient_balance.measure(
        rendered_dir, preset=preset, config=TrainerConfig(**config), batch_size=batch_size
    )


def test_default_losses_balance_the_tasks_on_b_small(rendered_dir):
    report, info = _measure(rendered_dir, "small", 4)
    assert 0.01 < info["edge_share"] < 0.1  # thin contours, as in real renders
    assert set(report["weighted"]) == {"contour", "depth", "normals", "adversarial"}
    assert gradient_balance.balance_ratio(report) <= gradient_balance.BALANCE_BOUND, report
    # Before issue 12 the contour loss was averaged over pixels: far outside the bound.
    old, _ = _measure(rendered_dir, "small", 4, contour_normalization="pixels")
    assert gradient_balance.balance_ratio(old) > 30, old


@pytest.mark.slow
def test_default_losses_balance_the_tasks_on_b_paper_alexnet(rendered_dir):
    report, _ = _measure(rendered_dir, "paper_alexnet", 2)
    assert gradient_balance.balance_ratio(report) <= gradient_balance.BALANCE_BOUND, report


def test_norms_equal_the_trainers_gradient_and_leave_the_model_unchanged(rendered_dir):
    config = TrainerConfig(tasks=("depth",), adapt=False, seed=0)
    keras.utils.set_random_seed(0)
    model = build_multitask_model("small")
    batch = gradient_balance.first_training_batch(rendered_dir, 2, 227, config)
    before = [v.numpy().copy() for v in model.variables]
    report = gradient_balance.task_gradient_norms(model, batch, config, seed=0)
    for value, variable in zip(before, model.variables):  # BN statistics restored too
        np.testing.assert_array_equal(value, variable.numpy(), err_msg=variable.path)
    # Independent path: the trainer's own L_BH gradient, depth only, same grey draw.
    trainer = MultiTaskAdversarialTrainer(model, build_discriminator("small"), config)
    trainer.compile(keras.optimizers.SGD())
    synthetic = dict(batch)
    # The grey channel task_gradient_norms(seed=0) draws, given to a colour trainer.
    synthetic["image"] = augment.random_grayscale_channel(
        tf.convert_to_tensor(batch["image"]), tf.constant([0, 0], tf.int64)
    )
    trainer.config.grayscale = False
    _, grads, _, _, _ = trainer._bh_gradients(synthetic, None, tf.constant(2.0))
    backbone_ids = {id(v) for v in model.backbone.trainable_variables}
    chosen = [g for g, v in zip(grads, model.trainable_variables) if id(v) in backbone_ids]
    expected = float(tf.linalg.global_norm(chosen))
    # Same ops on the same inputs; only the reduction order of the norm differs (float32
    # vs float64 sum of squares over ~0.6M terms): relative error ≲ 1e-5.
    np.testing.assert_allclose(report["weighted"]["depth"], expected, rtol=1e-4)
    np.testing.assert_allclose(report["weighted"]["depth"], 5.0 * report["unweighted"]["depth"])


def test_diagnose_script_prints_the_norms_and_the_ratio(rendered_dir):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    base = [sys.executable, os.path.join(REPO, "scripts", "diagnose.py")]
    args = ["--what=gradient_balance", "--preset=small", f"--synthetic_dir={rendered_dir}"]
    out = subprocess.run(
        base + args + ["--batch_size=2", "--json"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout[out.stdout.index("{") :])
    assert set(result["weighted"]) == {"contour", "depth", "normals", "adversarial"}
    assert result["balance_ratio"] == pytest.approx(gradient_balance.balance_ratio(result))
    bad = subprocess.run(
        base + ["--what=gradient_balance", "--synthetic_dir="],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("diagnose.py: error: --synthetic_dir")
