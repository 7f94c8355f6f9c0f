import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.evaluation.loading import load_run_model, prepare_images
from mtsyn_tf.models import build_multitask_model
from tests.evaluation.conftest import write_trainer_workdir


def test_trainer_workdir_round_trip(tmp_path, small_model, tiny_images):
    workdir = write_trainer_workdir(small_model, tmp_path / "run", grayscale=True)
    model, info = load_run_model(workdir, expected_preset="small")
    assert info["grayscale"] is True
    assert info["checkpoint"].endswith("ckpt-1")
    want = small_model.backbone(tiny_images[:1], training=False)["conv5"]
    got = model.backbone(tiny_images[:1], training=False)["conv5"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bare_preset_layout_uses_export_loader(tmp_path, small_model):
    workdir = tmp_path / "bare"
    os.makedirs(workdir)
    (workdir / "config.json").write_text(json.dumps({"preset": small_model.preset}))
    tf.train.Checkpoint(model=small_model).save(str(workdir / "checkpoints" / "ckpt"))
    model, info = load_run_model(str(workdir))
    assert info["grayscale"] is False
    np.testing.assert_array_equal(model.weights[0].numpy(), small_model.weights[0].numpy())


def test_preset_mismatch_and_missing_weights(tmp_path, small_model):
    workdir = write_trainer_workdir(small_model, tmp_path / "run")
    with pytest.raises(ValueError, match="Preset mismatch"):
        load_run_model(workdir, expected_preset="paper_alexnet")
    # config.json says small with a wider decoder: the checkpoint cannot fill it.
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["resolved_preset"]["decoder_width"] = 24
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match"):
        load_run_model(workdir)


def test_missing_checkpoint_and_config(tmp_path):
    with pytest.raises(ValueError, match="Checkpoint not found"):
        load_run_model(str(tmp_path / "nowhere"))
    other = build_multitask_model("small")
    workdir = write_trainer_workdir(other, tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text(json.dumps({"epochs": 3}))
    with pytest.raises(ValueError, match="resolved_preset"):
        load_run_model(workdir)


def test_prepare_images_grayscale_is_channel_mean():
    x = np.random.default_rng(0).random((2, 5, 5, 3), dtype=np.float32)
    g = prepare_images(x, grayscale=True)
    np.testing.assert_allclose(g[..., 1], x.mean(-1), rtol=1e-6)
    np.testing.assert_array_equal(prepare_images(x, grayscale=False), x)
    with pytest.raises(ValueError, match="N, S, S, 3"):
        prepare_images(x[0], grayscale=False)
