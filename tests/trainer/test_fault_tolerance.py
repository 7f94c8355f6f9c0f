"""Robustness: non-finite steps skipped, failed checkpoint writes, kill -9 and resume."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_two_stage import make_batch  # noqa: E402 - sibling test module (rootdir imports)

from mtsyn_tf.models import build_discriminator, build_multitask_model, get_preset
from mtsyn_tf.trainer.callbacks import truncate_history
from mtsyn_tf.trainer.checkpointing import CheckpointSaveError, RunCheckpointer
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.loop import RunConfig, build_trainer
from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------------ nonfinite_policy=skip
def _skip_trainer(optimizer=lambda: keras.optimizers.Adam(1e-3)):
    keras.utils.set_random_seed(0)
    trainer = MultiTaskAdversarialTrainer(
        build_multitask_model("small"),
        build_discriminator("small"),
        TrainerConfig(pool_size=4, grayscale=False),
        nonfinite_policy="skip",
    ).build_all()
    trainer.compile(optimizer(), optimizer())
    trainer.build_optimizers()
    return trainer


def _state(trainer):
    return (
        trainer.model.variables
        + trainer.discriminator.variables
        + trainer.pool.variables
        + trainer.task_optimizer.variables
        + trainer.disc_optimizer.variables
    )


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_skip_policy_rolls_back_a_non_finite_step(mode):
    trainer = _skip_trainer()
    step = trainer.train_step if mode == "eager" else tf.function(trainer.train_step)
    poisoned = make_batch(seed=0)
    poisoned["synthetic"]["image"][0, 5, 5, 0] = np.nan  # one pixel of one image
    before = [v.numpy().copy() for v in _state(trainer)]
    logs = step(poisoned)
    # Nothing moved: weights, BN statistics, pool, Adam slots and step counters.
    for v, value in zip(_state(trainer), before):
        np.testing.assert_array_equal(v.numpy(), value, err_msg=v.path)
    assert float(logs["skipped_steps"]) == 2.0  # stage 1, and stage 2 (NaN features)
    # Non-finite values are left out of the trackers: no NaN in the epoch's means.
    assert all(np.isfinite(float(v)) for v in logs.values())
    # A finite batch afterwards is applied normally and not counted.
    logs = step(make_batch(seed=1))
    assert float(logs["skipped_steps"]) == 2.0
    assert int(trainer.task_optimizer.iterations.numpy()) == 1
    assert int(trainer.disc_optimizer.iterations.numpy()) == 1
    assert int(trainer.pool.count.numpy()) == 2
    assert all(np.all(np.isfinite(v.numpy())) for v in _state(trainer))


def test_skip_policy_with_a_finite_step_equals_stop_policy():
    """The rollback machinery is transparent when nothing is non-finite."""
    skip = _skip_trainer()
    keras.utils.set_random_seed(0)
    stop = MultiTaskAdversarialTrainer(
        build_multitask_model("small"),
        build_discriminator("small"),
        TrainerConfig(pool_size=4, grayscale=False),
    ).build_all()
    stop.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    stop.build_optimizers()
    for v, w in zip(_state(stop), _state(skip)):
        v.assign(w)
    tf.function(skip.train_step)(make_batch(seed=2))
    tf.function(stop.train_step)(make_batch(seed=2))
    for a, b in zip(_state(stop), _state(skip)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7, err_msg=a.path)


# ------------------------------------------------------------------ failed checkpoint writes
def test_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    cfg = RunConfig(workdir=str(tmp_path), synthetic_dir="unused", preset="small")
    cfg.trainer = TrainerConfig(adapt=False)
    trainer = build_trainer(cfg, get_preset("small"), tf.distribute.get_strategy(), total_steps=10)
    directory = str(tmp_path / "ckpt")
    ckpt = RunCheckpointer(trainer, directory)
    first = ckpt.save(1)
    kernel = trainer.model.trainable_variables[0]
    saved_value = kernel.numpy().copy()
    # The next checkpoint's files cannot be written (as on a full disk): a directory
    # squats on the index file's name, so TF's final rename of the index fails.
    os.makedirs(os.path.join(directory, "ckpt-2.index", "blocker"))
    kernel.assign(kernel + 1.0)
    with pytest.raises(CheckpointSaveError, match="previous checkpoint is intact.*ckpt-1"):
        ckpt.save(2)
    assert tf.train.latest_checkpoint(directory) == first
    fresh = RunCheckpointer(trainer, directory)
    assert fresh.restore_latest() == 1
    np.testing.assert_array_equal(kernel.numpy(), saved_value)


# ------------------------------------------------------------------ history on resume
def test_truncate_history_drops_rows_of_unsaved_epochs(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.5\n")
    truncate_history(str(path), 2)
    assert path.read_text().splitlines() == ["epoch,loss", "0,3.0", "1,2.0"]
    truncate_history(str(path), 5)  # nothing to drop: unchanged
    assert path.read_text().splitlines() == ["epoch,loss", "0,3.0", "1,2.0"]
    truncate_history(str(tmp_path / "missing.csv"), 1)  # no file: nothing to do
    (tmp_path / "other.csv").write_text("step,loss\n1,2\n")
    with pytest.raises(ValueError, match="no 'epoch' column"):
        truncate_history(str(tmp_path / "other.csv"), 0)


# ------------------------------------------------------------------ kill -9 and resume
def _train_cmd(data_dir, workdir):
    return [
        sys.executable,
        os.path.join(REPO, "scripts", "train.py"),
        "--preset=small",
        f"--synthetic_dir={data_dir}",
        f"--workdir={workdir}",
        "--batch_size=2",
        "--epochs=4",
        "--steps_per_epoch=4",
        "--pool_size=4",
        "--min_edge_pixels=0",
        "--eval_split=none",
        "--verbose=2",
    ]


def _history(workdir):
    with open(os.path.join(workdir, "history.csv")) as f:
        return [
            {k: float(v) for k, v in row.items() if k.startswith(("loss", "d_acc", "epoch"))}
            for row in csv.DictReader(f)
        ]


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume_replays_the_run(tiny_synthetic_dir, tmp_path):
    """``scripts/train.py`` killed with SIGKILL at a random moment after its first
    checkpoint, then re-run with the same command, logs the uninterrupted run's losses."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    straight = tmp_path / "straight"
    subprocess.run(
        _train_cmd(tiny_synthetic_dir, straight), env=env, check=True, capture_output=True
    )

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(tiny_synthetic_dir, killed),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # A random moment after a random epoch's checkpoint (before the last): mid-epoch,
    # or between the history row and the next checkpoint.
    rng = random.Random()
    after = killed / "checkpoints" / f"ckpt-{rng.randint(1, 3)}.index"
    deadline = time.time() + 300
    while not after.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    time.sleep(rng.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = tf.train.latest_checkpoint(str(killed / "checkpoints"))
    print(f"SIGKILLed with {killed_at} as the newest checkpoint")

    subprocess.run(_train_cmd(tiny_synthetic_dir, killed), env=env, check=True, capture_output=True)
    expected, resumed = _history(straight), _history(killed)
    assert [r["epoch"] for r in resumed] == [0, 1, 2, 3], (killed_at, resumed)
    for want, got in zip(expected, resumed):
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=f"{killed_at} {key}")
