"""A whole training run: artifacts, exact resume, clear errors before training."""

from __future__ import annotations

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.loop import RunConfig, train


def _config(tiny_synthetic_dir, workdir, **kwargs):
    defaults = dict(
        workdir=str(workdir),
        synthetic_dir=tiny_synthetic_dir,
        preset="small",
        batch_size=2,
        epochs=2,
        steps_per_epoch=2,
        trainer=TrainerConfig(pool_size=4, min_edge_pixels=0),
        image_summaries=True,
        verbose=0,
    )
    defaults.update(kwargs)
    return RunConfig(**defaults)


def _history(workdir):
    rows = {}
    with open(os.path.join(workdir, "history.csv")) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = {
                k: float(v) for k, v in row.items() if k.startswith(("loss", "d_acc"))
            }
    return rows


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def test_run_writes_every_artifact(tiny_synthetic_dir, tmp_path):
    results = train(_config(tiny_synthetic_dir, tmp_path / "run"))
    run = tmp_path / "run"
    for name in (
        "config.json",
        "history.csv",
        "eval.json",
        "checkpoints",
        "tensorboard",
        "saved_model_base",
    ):
        assert (run / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["resolved_preset"]["name"] == "small"
    assert config["versions"]["tensorflow"] == tf.__version__
    assert config["data_manifests"]["synthetic"]["kind"] == "synthetic"
    assert set(results["eval"]) >= {"depth_abs_rel", "normals_mean", "contour_ap"}
    assert all(np.isfinite(v) for v in results["eval"].values())
    # The base SavedModel serves every tap at the preset's sizes.
    loaded = tf.saved_model.load(str(run / "saved_model_base"))
    taps = loaded.signatures["serving_default"](image=tf.zeros([1, 227, 227, 3]))
    assert tuple(taps["conv5"].shape) == (1, 13, 13, 64)
    assert tuple(taps["fc7"].shape) == (1, 13, 13, 256)


def test_resume_replays_the_uninterrupted_run(tiny_synthetic_dir, tmp_path):
    straight_run = train(_config(tiny_synthetic_dir, tmp_path / "straight"))
    assert (straight_run["initial_epoch"], straight_run["steps_run"]) == (0, 4)
    # Same command, interrupted after epoch 1, then run again: it resumes from epoch 1.
    cfg = _config(tiny_synthetic_dir, tmp_path / "resumed")
    first = train(cfg, extra_callbacks=[_StopAfterFirstEpoch()])
    assert (first["initial_epoch"], first["steps_run"]) == (0, 2)
    assert sorted(_history(tmp_path / "resumed")) == [0]
    second = train(cfg)
    # The second process starts at the checkpoint's epoch and runs only epoch 2's steps
    # (a run that retrained from scratch would log the same rows and reach step 4 too).
    assert (second["initial_epoch"], second["steps_run"]) == (1, 2)
    straight, resumed = _history(tmp_path / "straight"), _history(tmp_path / "resumed")
    assert sorted(resumed) == [0, 1]
    for key, value in straight[1].items():
        np.testing.assert_allclose(resumed[1][key], value, rtol=1e-5, err_msg=key)
    a = tf.train.load_checkpoint(str(tmp_path / "straight" / "checkpoints"))
    b = tf.train.load_checkpoint(str(tmp_path / "resumed" / "checkpoints"))
    step_key = [
        k for k in a.get_variable_to_shape_map() if "task_optimizer" in k and "iteration" in k
    ][0]
    assert a.get_tensor(step_key) == b.get_tensor(step_key) == 4
    weight_keys = [
        k for k in a.get_variable_to_shape_map() if k.startswith("model/") and "OPTIMIZER" not in k
    ]
    assert weight_keys
    for key in weight_keys:
        np.testing.assert_allclose(
            b.get_tensor(key), a.get_tensor(key), rtol=1e-5, atol=1e-6, err_msg=key
        )


def test_errors_before_training(tiny_synthetic_dir, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        train(_config(str(tmp_path / "missing"), tmp_path / "a"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="manifest"):
        train(_config(str(tmp_path / "empty"), tmp_path / "a"))
    with pytest.raises(ValueError, match="Unknown preset"):
        train(_config(tiny_synthetic_dir, tmp_path / "b", preset="alexnet_huge"))
    with pytest.raises(ValueError, match="Nothing to train"):
        train(
            _config(
                tiny_synthetic_dir,
                tmp_path / "c",
                trainer=TrainerConfig(tasks=("depth",), adapt=False, loss_weights={"depth": 0.0}),
            )
        )
    with pytest.raises(ValueError, match="da_tap"):
        train(_config(tiny_synthetic_dir, tmp_path / "d", trainer=TrainerConfig(da_tap="conv2")))


def test_checkpoint_of_another_preset_is_refused(tiny_synthetic_dir, tmp_path):
    train(
        _config(
            tiny_synthetic_dir, tmp_path / "run", epochs=1, steps_per_epoch=1, image_summaries=False
        )
    )
    with pytest.raises(ValueError, match="different model"):
        train(
            _config(
                tiny_synthetic_dir,
                tmp_path / "run",
                preset_overrides={"decoder_width": 8},
                epochs=1,
                steps_per_epoch=1,
            )
        )


class _PoisonAfterFirstEpoch(keras.callbacks.Callback):
    """After epoch 1's checkpoint (run callbacks come first), makes a weight NaN."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            kernel = self.model.model.trainable_variables[0]
            self.saved = [v.numpy().copy() for v in self.model.model.weights]
            kernel.assign(kernel * float("nan"))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_synthetic_dir, tmp_path):
    from mtsyn_tf.trainer.callbacks import NonFiniteLossError

    cfg = _config(tiny_synthetic_dir, tmp_path / "run", epochs=2, steps_per_epoch=2)
    poison = _PoisonAfterFirstEpoch()
    with pytest.raises(NonFiniteLossError, match=r"Non-finite loss_\w+=.* at step 3"):
        train(cfg, extra_callbacks=[poison])
    # Epoch 2 went non-finite at its first step: no checkpoint of it; epoch 1's is the
    # newest and holds the finite weights the model had before the poisoning.
    ckpt = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert ckpt is not None and ckpt.endswith("ckpt-1"), ckpt
    reader = tf.train.load_checkpoint(ckpt)
    finite_keys = 0
    for key in reader.get_variable_to_shape_map():
        value = reader.get_tensor(key)
        if key.startswith(("model/", "task_optimizer/_trainable")) and np.issubdtype(
            np.asarray(value).dtype, np.floating
        ):
            assert np.all(np.isfinite(value)), key
            finite_keys += 1
    assert finite_keys > 0
    # Resuming restores exactly the weights of epoch 1's end.
    from mtsyn_tf.models import get_preset
    from mtsyn_tf.trainer.build import build_trainer
    from mtsyn_tf.trainer.checkpointing import RunCheckpointer

    trainer = build_trainer(cfg, get_preset("small"), tf.distribute.get_strategy(), 4)
    assert RunCheckpointer(trainer, str(tmp_path / "run" / "checkpoints")).restore_latest() == 1
    assert len(trainer.model.weights) == len(poison.saved)
    for v, saved in zip(trainer.model.weights, poison.saved):
        np.testing.assert_array_equal(v.numpy(), saved, err_msg=v.path)
