"""Robustness: non-finite steps skipped, failed checkpoint writes, kill -9 and resume."""

from __future__ import annotations

import csv
import json
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
from mtsyn_tf.trainer.build import build_trainer
from mtsyn_tf.trainer.callbacks import truncate_history
from mtsyn_tf.trainer.checkpointing import CheckpointSaveError, RunCheckpointer
from mtsyn_tf.trainer.config import RunConfig, TrainerConfig
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
    assert float(logs["skipped_steps"]) == 2.0  # stage 1, and stage 2 (the same batch)
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
    """The rollback machinery is transparent when nothing is non-finite.

    SGD with momentum, not Adam: Adam's first step is lr * g / (|g| + eps), +-lr for any
    g that is not tiny, so a rounding-level difference in a near-zero gradient element
    flips a whole lr-sized step; SGD's step is lr * g and compares the gradients. Both
    trainers run the same ops; only graph rewrites around the skip policy's tf.cond may
    reorder float32 sums, so each variable agrees to 1e-5 of its update's size plus one
    ulp of its largest element.
    """

    def sgd():
        return keras.optimizers.SGD(0.01, momentum=0.9)

    skip = _skip_trainer(sgd)
    keras.utils.set_random_seed(0)
    stop = MultiTaskAdversarialTrainer(
        build_multitask_model("small"),
        build_discriminator("small"),
        TrainerConfig(pool_size=4, grayscale=False),
    ).build_all()
    stop.compile(sgd(), sgd())
    stop.build_optimizers()
    for v, w in zip(_state(stop), _state(skip)):
        v.assign(w)
    initial = [v.numpy().copy() for v in _state(stop)]
    tf.function(skip.train_step)(make_batch(seed=2))
    tf.function(stop.train_step)(make_batch(seed=2))
    moved = 0
    for a, b, w0 in zip(_state(stop), _state(skip), initial):
        update = np.abs(a.numpy() - w0).max()
        moved += update > 0
        bound = 1e-5 * update + np.spacing(np.float32(np.abs(w0).max()))
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=bound, err_msg=a.path)
    assert moved > len(initial) // 2  # the step did update the trainers


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
def _train_cmd(data_dir, workdir, epochs=4, steps_per_epoch=4, batch_size=2):
    return [
        sys.executable,
        os.path.join(REPO, "scripts", "train.py"),
        "--preset=small",
        f"--synthetic_dir={data_dir}",
        f"--workdir={workdir}",
        f"--batch_size={batch_size}",
        f"--epochs={epochs}",
        f"--steps_per_epoch={steps_per_epoch}",
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


def _results(stdout: str) -> dict:
    """The results JSON ``scripts/train.py`` prints last."""
    return json.loads(stdout[stdout.index("{") :])


def _kill_after_checkpoint(command, checkpoints, after_epoch, delay_s):
    """Starts ``command``, SIGKILLs it ``delay_s`` after the checkpoint state file first
    names epoch ``after_epoch`` (the save is complete); returns the newest checkpoint's
    epoch after the kill."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        newest = tf.train.latest_checkpoint(str(checkpoints))
        if newest is not None and int(newest.rsplit("-", 1)[1]) >= after_epoch:
            break
        time.sleep(0.02)
    time.sleep(delay_s)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert running, f"the run ended before it could be killed: {err[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    newest = tf.train.latest_checkpoint(str(checkpoints))
    assert newest is not None, "no checkpoint survived the kill"
    epoch = int(newest.rsplit("-", 1)[1])
    assert epoch >= after_epoch, newest
    return epoch


def _resume(command) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _results(proc.stdout)


def test_sigkill_then_resume_runs_only_the_remaining_steps(tiny_synthetic_dir, tmp_path):
    """The fast version (default suite): killed after epoch 1's checkpoint, the same
    command resumes at epoch 1, runs only epochs 2-3 and keeps epoch 1's history row."""
    workdir = tmp_path / "run"
    command = _train_cmd(tiny_synthetic_dir, workdir, epochs=3, steps_per_epoch=1, batch_size=1)
    killed_at = _kill_after_checkpoint(command, workdir / "checkpoints", 1, delay_s=0.0)
    before = _history(workdir)[:killed_at]
    result = _resume(command)
    assert (result["initial_epoch"], result["steps_run"]) == (killed_at, 3 - killed_at)
    after = _history(workdir)
    assert [r["epoch"] for r in after] == [0, 1, 2]
    assert after[:killed_at] == before  # rows of checkpointed epochs are kept, not rewritten
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-3")


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume_replays_the_run(tiny_synthetic_dir, tmp_path):
    """``scripts/train.py`` killed with SIGKILL at a seeded moment after a checkpoint,
    then re-run with the same command, resumes from that checkpoint, runs only the
    remaining steps and logs the uninterrupted run's losses."""
    straight = tmp_path / "straight"
    assert _resume(_train_cmd(tiny_synthetic_dir, straight))["steps_run"] == 16

    killed = tmp_path / "killed"
    # A seeded moment after a seeded epoch's checkpoint (before the last): mid-epoch, or
    # between the history row and the next checkpoint.
    rng = random.Random(7)
    after_epoch, delay = rng.randint(1, 3), rng.uniform(0.0, 0.5)
    command = _train_cmd(tiny_synthetic_dir, killed)
    killed_at = _kill_after_checkpoint(command, killed / "checkpoints", after_epoch, delay)
    print(f"SIGKILLed after ckpt-{after_epoch} + {delay:.2f} s; newest: ckpt-{killed_at}")

    result = _resume(command)
    assert (result["initial_epoch"], result["steps_run"]) == (killed_at, (4 - killed_at) * 4)
    expected, resumed = _history(straight), _history(killed)
    assert [r["epoch"] for r in resumed] == [0, 1, 2, 3], (killed_at, resumed)
    # Same machine and settings, same steps on the same data: the losses are identical;
    # 1e-5 allows only for the CSV's decimal round trip.
    for want, got in zip(expected, resumed):
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=f"{killed_at} {key}")
