"""Saved presets: a trained run round-trips through save_to_preset / from_preset with
identical predictions; a preset of another version or architecture, or a missing or
corrupt file, fails with one line naming the file."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from mtsyn_tf.export.checkpoint import load_model_from_checkpoint
from mtsyn_tf.models import MultiTaskNet, build_multitask_model, load_preset
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.models.saved_preset import PRESET_FILES
from mtsyn_tf.trainer.config import TrainerConfig
from mtsyn_tf.trainer.loop import RunConfig, train


@pytest.fixture(scope="module")
def trained_run(tiny_synthetic_dir, tmp_path_factory):
    """A `small` run of two steps on grey inputs (the paper's, and trainer's, default)."""
    workdir = str(tmp_path_factory.mktemp("preset_run") / "run")
    train(
        RunConfig(
            workdir=workdir,
            synthetic_dir=tiny_synthetic_dir,
            preset="small",
            batch_size=2,
            epochs=1,
            steps_per_epoch=2,
            eval_batches=1,
            trainer=TrainerConfig(pool_size=4, min_edge_pixels=0, grayscale=True),
            image_summaries=False,
            verbose=0,
        )
    )
    return workdir


@pytest.fixture(scope="module")
def saved(trained_run, tmp_path_factory):
    """The run converted into a saved preset directory."""
    directory = str(tmp_path_factory.mktemp("presets") / "small_run")
    MultiTaskNet.from_preset(trained_run).save_to_preset(directory)
    return directory


def _images(seed=0):
    return np.random.default_rng(seed).random((3, 227, 227, 3), dtype=np.float32)


def _predict(model, images):
    """Raw head outputs and physical predictions, fed through the model's input contract."""
    x = model.input_contract(images)
    raw = model(x, training=False)
    return {
        **{f"raw_{k}": np.asarray(v) for k, v in raw.items()},
        **{k: np.asarray(v) for k, v in model.predict_physical(x).items()},
    }


def test_trained_run_round_trips_with_identical_predictions(trained_run, saved):
    run_model, info = load_model_from_checkpoint(trained_run)
    loaded = MultiTaskNet.from_preset(saved)
    assert sorted(os.listdir(saved)) == sorted(PRESET_FILES)  # nothing else, no temporaries
    assert loaded.preset == run_model.preset == info["preset"]
    assert loaded.input_contract.color_mode == "grayscale" == info["input_contract"].color_mode
    # Every weight, BatchNorm moving statistics included, bit for bit.
    assert [w.path for w in loaded.weights] == [w.path for w in run_model.weights]
    for a, b in zip(loaded.weights, run_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # Same process, same weights, same ops: the predictions must be identical, not close.
    images = _images()
    want, got = _predict(run_model, images), _predict(loaded, images)
    assert (
        set(got)
        == set(want)
        == {
            "raw_contour",
            "raw_depth",
            "raw_normals",
            "contour",
            "depth",
            "normals",
        }
    )
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # Not vacuous: the same architecture at initialisation predicts something else.
    fresh = MultiTaskNet.from_preset(saved, load_weights=False)
    assert not np.array_equal(_predict(fresh, images)["raw_depth"], want["raw_depth"])


def test_metadata_records_versions_and_the_run(trained_run, saved):
    _, info = load_preset(saved)
    meta = info["metadata"]
    assert meta["format_version"] == "1.0"
    assert meta["parameter_count"] == build_multitask_model("small").count_params()
    assert {"mtsyn_tf_version", "keras_version", "tensorflow_version", "date_saved"} <= set(meta)
    run = meta["run"]
    assert run["preset"] == "small" and run["trainer"]["grayscale"] is True
    assert run["checkpoint"] == os.path.join(trained_run, "checkpoints", "ckpt-1")
    assert {"git_commit", "versions", "batch_size", "steps_per_epoch"} <= set(run)
    assert info["kind"] == "preset" and info["checkpoint"].endswith("model.weights.h5")
    # A preset loaded and saved again keeps the run it came from.
    config = json.loads(open(os.path.join(saved, "config.json")).read())
    assert (config["architecture"], config["tasks"]) == ("alexnet", ["contour", "depth", "normals"])


def test_resaving_a_loaded_preset_keeps_everything(saved, tmp_path):
    loaded = MultiTaskNet.from_preset(saved)
    again = loaded.save_to_preset(str(tmp_path / "again"))
    _, info = load_preset(again)
    assert info["run"] == load_preset(saved)[1]["run"]
    np.testing.assert_array_equal(
        _predict(MultiTaskNet.from_preset(again), _images(1))["depth"],
        _predict(loaded, _images(1))["depth"],
    )


def test_writing_is_atomic_and_refuses_to_overwrite(saved, tmp_path, monkeypatch):
    loaded = MultiTaskNet.from_preset(saved)
    with pytest.raises(ValueError, match="already exists"):
        loaded.save_to_preset(saved)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loaded, "save_weights", full_disk)
    target = tmp_path / "new" / "preset"
    with pytest.raises(OSError):
        loaded.save_to_preset(str(target))
    assert not (tmp_path / "new").exists()  # neither the directory nor its parent remain
    with pytest.raises(OSError):
        loaded.save_to_preset(saved, overwrite=True)
    assert sorted(os.listdir(saved)) == sorted(PRESET_FILES)  # the old preset is intact
    assert not [f for f in os.listdir(os.path.dirname(saved)) if f.startswith(".")]


def test_built_model_needs_an_input_contract(tmp_path):
    model = build_multitask_model("small")
    with pytest.raises(ValueError, match="input contract is unknown"):
        model.save_to_preset(str(tmp_path / "p"))
    assert not (tmp_path / "p").exists()
    model.save_to_preset(str(tmp_path / "p"), input_contract=InputContract("rgb"))
    assert MultiTaskNet.from_preset(str(tmp_path / "p")).input_contract.color_mode == "rgb"


def _edit_json(directory, name, edit):
    path = os.path.join(directory, name)
    with open(path) as f:
        payload = json.load(f)
    edit(payload)
    with open(path, "w") as f:
        json.dump(payload, f)


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(payload):
        for key in keys[:-1]:
            payload = payload[key]
        payload[keys[-1]] = value

    return edit


def _truncate(directory, name):
    path = os.path.join(directory, name)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _other_weights(directory, name):
    other = build_multitask_model("small", decoder_width=8)
    other.save_weights(os.path.join(directory, name))


BROKEN = {
    "newer major version": (
        lambda d: _edit_json(d, "config.json", _set("format_version", "2.0")),
        "saved in preset format 2.0",
        "config.json",
    ),
    "unknown architecture": (
        lambda d: _edit_json(d, "config.json", _set("architecture", "resnet50")),
        "architecture='resnet50'",
        "config.json",
    ),
    "architecture disagrees with the preset": (
        lambda d: _edit_json(d, "config.json", _set("architecture", "vgg16")),
        "disagree",
        "config.json",
    ),
    "another class": (
        lambda d: _edit_json(d, "config.json", _set("class_name", "BertBackbone")),
        "not a mtsyn_tf MultiTaskNet",
        "config.json",
    ),
    "bad preset field": (
        lambda d: _edit_json(d, "config.json", _set("config", "preset", "decoder_width", -4)),
        "decoder_width=-4",
        "config.json",
    ),
    "config.json not JSON": (lambda d: _truncate(d, "config.json"), "Corrupt config.json", None),
    "config.json missing": (
        lambda d: os.remove(os.path.join(d, "config.json")),
        "lacks config.json",
        "config.json",
    ),
    "metadata.json missing": (
        lambda d: os.remove(os.path.join(d, "metadata.json")),
        "lacks metadata.json",
        "metadata.json",
    ),
    "weights missing": (
        lambda d: os.remove(os.path.join(d, "model.weights.h5")),
        "lacks model.weights.h5",
        "model.weights.h5",
    ),
    "weights truncated": (
        lambda d: _truncate(d, "model.weights.h5"),
        "Corrupt or unreadable model.weights.h5",
        "model.weights.h5",
    ),
    "weights of another model": (
        lambda d: _other_weights(d, "model.weights.h5"),
        "does not match the model config.json describes",
        "model.weights.h5",
    ),
    "preprocessor of an unknown mode": (
        lambda d: _edit_json(d, "preprocessor.json", _set("config", "color_mode", "sepia")),
        "color_mode='sepia'",
        "preprocessor.json",
    ),
    "preprocessor of another class": (
        lambda d: _edit_json(d, "preprocessor.json", _set("class_name", "Tokenizer")),
        "Corrupt preprocessor.json",
        "preprocessor.json",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_presets_fail_with_one_line_naming_the_file(saved, tmp_path, case):
    breaker, match, filename = BROKEN[case]
    directory = str(tmp_path / "broken")
    shutil.copytree(saved, directory)
    breaker(directory)
    with pytest.raises(ValueError, match=match) as err:
        MultiTaskNet.from_preset(directory)
    message = str(err.value)
    assert "\n" not in message, message
    assert os.path.join(directory, filename or "config.json") in message, message


def test_another_architecture_or_preset_is_refused(saved):
    with pytest.raises(ValueError, match="architecture 'alexnet', expected 'vgg16'") as err:
        MultiTaskNet.from_preset(saved, architecture="vgg16")
    assert os.path.join(saved, "config.json") in str(err.value)
    with pytest.raises(ValueError, match=r"Preset mismatch.*decoder_width"):
        MultiTaskNet.from_preset(saved, expected_preset="paper_alexnet")
    assert MultiTaskNet.from_preset(saved, architecture="alexnet", expected_preset="small")


def test_builtin_names_and_missing_paths(tmp_path):
    with pytest.raises(ValueError, match="no trained weights"):
        MultiTaskNet.from_preset("small")
    model = MultiTaskNet.from_preset("small_vgg16", load_weights=False)
    assert model.image_size == 224 and model.input_contract.color_mode == "rgb"
    with pytest.raises(ValueError, match="architecture 'vgg16', expected 'alexnet'"):
        MultiTaskNet.from_preset("small_vgg16", architecture="alexnet", load_weights=False)
    with pytest.raises(ValueError, match=r"Checkpoint not found.*built-in preset name"):
        MultiTaskNet.from_preset(str(tmp_path / "nowhere"))
    assert build_multitask_model("small").input_contract is None
