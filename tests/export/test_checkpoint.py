"""load_model_from_checkpoint: round trip and clear errors."""

import json
import os

import numpy as np
import pytest

from mtsyn_tf.export.checkpoint import load_model_from_checkpoint, untracked_weights
from mtsyn_tf.models import build_multitask_model
from tests.export.conftest import randomize_batchnorm, write_workdir


def test_round_trip_restores_every_weight(small_model, tmp_path, images):
    prefix = write_workdir(small_model, str(tmp_path / "run"))
    for source in (str(tmp_path / "run"), str(tmp_path / "run" / "checkpoints"), prefix):
        model, info = load_model_from_checkpoint(source, expected_preset="small")
        assert info["checkpoint"] == prefix
        for a, b in zip(model.weights, small_model.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(
        model.predict_physical(images[:1])["depth"],
        small_model.predict_physical(images[:1])["depth"],
    )


@pytest.mark.parametrize("preset", ["small", "small_vgg16"])
def test_every_weight_is_tracked_by_checkpoints(preset):
    # Regression: heads held only in a dict were invisible to tf.train.Checkpoint.
    assert untracked_weights(build_multitask_model(preset)) == []


def test_untracked_weights_are_refused(tmp_path, monkeypatch):
    write_workdir(build_multitask_model("small"), str(tmp_path / "run"))
    monkeypatch.setattr(
        "mtsyn_tf.models.run_checkpoint.untracked_weights", lambda model: ["head/kernel"]
    )
    with pytest.raises(ValueError, match="cannot be saved or restored"):
        load_model_from_checkpoint(str(tmp_path / "run"))


def test_missing_paths_and_config(tmp_path):
    with pytest.raises(ValueError, match="Checkpoint not found"):
        load_model_from_checkpoint(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No checkpoint found"):
        load_model_from_checkpoint(str(tmp_path / "empty"))
    prefix = write_workdir(build_multitask_model("small"), str(tmp_path / "run"))
    os.remove(tmp_path / "run" / "config.json")
    with pytest.raises(ValueError, match="No config.json"):
        load_model_from_checkpoint(prefix)
    (tmp_path / "run" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="Unreadable config.json"):
        load_model_from_checkpoint(prefix)


def test_preset_mismatch_and_wrong_shapes(tmp_path):
    model = randomize_batchnorm(build_multitask_model("small", decoder_width=8))
    write_workdir(model, str(tmp_path / "run"))
    with pytest.raises(ValueError, match="Preset mismatch"):
        load_model_from_checkpoint(str(tmp_path / "run"), expected_preset="small")
    # config.json claims `small`, the weights are from the narrower decoder / another run.
    with open(tmp_path / "run" / "config.json", "w") as f:
        json.dump({"preset": build_multitask_model("small").preset}, f)
    with pytest.raises(ValueError, match="does not match the model"):
        load_model_from_checkpoint(str(tmp_path / "run"))


def test_corrupt_checkpoint(tmp_path):
    prefix = write_workdir(build_multitask_model("small"), str(tmp_path / "run"))
    with open(prefix + ".index", "wb") as f:
        f.write(b"garbage")
    with pytest.raises(ValueError, match="Corrupt or unreadable checkpoint"):
        load_model_from_checkpoint(str(tmp_path / "run"))
