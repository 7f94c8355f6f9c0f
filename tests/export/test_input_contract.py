"""The run's input contract: what is served is what was evaluated (issue 12, item 3).

A grey-trained run (one random channel repeated, the paper's input) is evaluated on the
channel mean repeated 3×. Its SavedModel signatures, its ONNX model, ``Predictor`` on the
checkpoint and on the SavedModel must give the evaluation path's numbers on colour
photos; a colour-trained run must be served RGB as is.

Tolerances. SavedModel, Predictor and the evaluation path run the same TensorFlow kernels
on the same float32 input (the contract's mean is the same ``reduce_mean`` everywhere):
measured bit-identical under TF_ENABLE_ONEDNN_OPTS=0 and =1; 1e-5 leaves room only for a
graph-vs-eager kernel choice, far below what a wrong contract gives (≥ 0.1, asserted).
ONNX against ONNX fed the evaluation path's input: the same backend on the same input,
measured bit-identical. ONNX against TensorFlow: the two backends sum convolutions in a
different order; the float32 rounding differences (≈1e-7 relative per layer) grow through
the ~10 layers to a measured ≤ 7.6e-6 m on depths ≤ 6.3 m (1.2e-6 relative) and ≤ 5.4e-7
in contour probability, hence rtol = atol = 1e-5 there; normals are divided by the length
of the raw 3-vector, which amplifies the same absolute error where that vector is short
(measured ≤ 3.6e-5), hence atol 1e-4 for normals (the project's ONNX-vs-TF bound).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtsyn_tf.evaluation.loading import prepare_images
from mtsyn_tf.evaluation.predict import predict_numpy
from mtsyn_tf.export.checkpoint import load_model_from_checkpoint
from mtsyn_tf.export.onnx_export import OnnxRunner, export_onnx_predictor
from mtsyn_tf.export.predictor import Predictor, load_image
from mtsyn_tf.export.serving import export_for_serving
from mtsyn_tf.models import MultiTaskNet
from mtsyn_tf.models.preprocessor import CONTRACT_FILENAME, InputContract
from tests.export.conftest import write_workdir

TASKS = ("depth", "normals", "contour")
ONNX_TOL = {"depth": (1e-5, 1e-5), "normals": (0.0, 1e-4), "contour": (0.0, 1e-5)}  # (rtol, atol)


def _workdir(model, path, grayscale: bool) -> str:
    """A run as the trainer records it: config.json with trainer.grayscale + input_contract."""
    write_workdir(model, path)
    config_path = os.path.join(path, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["trainer"] = {"grayscale": grayscale}
    config["input_contract"] = InputContract.for_grayscale(grayscale).record()
    with open(config_path, "w") as f:
        json.dump(config, f)
    return path


@pytest.fixture(scope="module")
def colour_photos(photo_dir_module):
    """Colour photos through the serving decoder (the astronaut JPEG and random colour)."""
    rng = np.random.default_rng(5)
    decoded = load_image(str(photo_dir_module / "a.jpg"), 227)
    return np.concatenate([decoded[None], rng.random((2, 227, 227, 3), dtype=np.float32)])


@pytest.fixture(scope="module")
def photo_dir_module(tmp_path_factory):
    from tests.export.conftest import astronaut, encode

    folder = tmp_path_factory.mktemp("photos")
    (folder / "a.jpg").write_bytes(encode(astronaut(180), "JPEG"))
    return folder


@pytest.fixture(scope="module")
def grey_run(small_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("grey_run")
    workdir = _workdir(small_model, str(root / "run"), grayscale=True)
    model, info = load_model_from_checkpoint(workdir)
    return {"workdir": workdir, "model": model, "info": info, "root": root}


def _assert_close(got, expected, tol=(0.0, 1e-5)):
    for task in TASKS:
        rtol, atol = tol[task] if isinstance(tol, dict) else tol
        np.testing.assert_allclose(np.asarray(got[task]), expected[task], rtol=rtol, atol=atol)


# === The layer ===
def test_grayscale_contract_is_the_channel_mean_repeated():
    x = np.random.default_rng(0).random((2, 5, 5, 3), dtype=np.float32)
    grey = np.asarray(InputContract("grayscale")(x))
    np.testing.assert_allclose(grey, np.repeat(x.mean(-1, keepdims=True), 3, -1), atol=1e-7)
    assert np.array_equal(np.asarray(InputContract("rgb")(x)), x)
    with pytest.raises(ValueError, match="color_mode"):
        InputContract("bgr")


def test_contract_serialises_with_its_config():
    layer = InputContract("grayscale")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, InputContract) and restored.color_mode == "grayscale"
    model = keras.Sequential([keras.Input((4, 4, 3)), InputContract("grayscale")])
    clone = keras.models.model_from_json(model.to_json())
    assert clone.layers[0].color_mode == "grayscale"


def test_run_config_contract_and_old_run_defaults():
    assert InputContract.from_run_config({"input_contract": {"color_mode": "grayscale"}}).grayscale
    # Runs recorded before the contract: derived from what the trainer trained on.
    assert InputContract.from_run_config({"trainer": {"grayscale": True}}).grayscale
    assert not InputContract.from_run_config({"trainer": {"grayscale": False}}).grayscale
    # Neither recorded: colour, with a warning that names the fix.
    with pytest.warns(UserWarning, match="input_contract"):
        assert not InputContract.from_run_config({"preset": {}}).grayscale
    with pytest.raises(ValueError, match="input_contract"):
        InputContract.from_run_config({"input_contract": {"color_mode": "grey"}})


def test_training_run_records_its_contract(tiny_synthetic_dir, tmp_path):
    from mtsyn_tf.trainer.config import RunConfig, TrainerConfig
    from mtsyn_tf.trainer.run_record import record_run

    for grayscale in (True, False):
        cfg = RunConfig(
            workdir=str(tmp_path / str(grayscale)),
            synthetic_dir=tiny_synthetic_dir,
            preset="small",
            trainer=TrainerConfig(grayscale=grayscale),
        )
        os.makedirs(cfg.workdir)
        record_run(cfg, {"name": "small"}, tf.distribute.get_strategy())
        with open(os.path.join(cfg.workdir, "config.json")) as f:
            recorded = json.load(f)["input_contract"]
        assert recorded == {"color_mode": "grayscale" if grayscale else "rgb"}


# === Served == evaluated for a grey-trained run ===
def test_loader_returns_the_recorded_contract(grey_run):
    assert grey_run["info"]["input_contract"].grayscale
    assert grey_run["info"]["grayscale"] is True


def test_saved_model_serves_what_was_evaluated(grey_run, colour_photos):
    model, contract = grey_run["model"], grey_run["info"]["input_contract"]
    evaluated = predict_numpy(model, colour_photos, contract)
    raw = {k: np.asarray(v) for k, v in model.predict_physical(colour_photos).items()}
    # The photos are colourful enough that feeding RGB as is would be visibly wrong.
    assert np.abs(raw["depth"] - evaluated["depth"]).max() > 0.1
    base = str(grey_run["root"] / "serving")
    version = export_for_serving(model, base, warmup=False, input_contract=contract)
    assert InputContract.read(version).grayscale
    loaded = tf.saved_model.load(version)
    _assert_close(loaded.signatures["predict_all"](image=tf.constant(colour_photos)), evaluated)
    for task in TASKS:
        out = loaded.signatures[f"predict_{task}"](image=tf.constant(colour_photos))
        np.testing.assert_allclose(out[task], evaluated[task], atol=1e-5)
    # Bytes in: decoded by the same function as load_image, then the contract.
    with open(grey_run["root"] / "photo.jpg", "wb") as f:
        from tests.export.conftest import astronaut, encode

        data = encode(astronaut(180), "JPEG")
        f.write(data)
    decoded = load_image(str(grey_run["root"] / "photo.jpg"), 227)[None]
    by_bytes = loaded.signatures["predict_bytes"](image_bytes=tf.constant([data]))
    _assert_close(by_bytes, predict_numpy(model, decoded, contract))
    # Predictor on the SavedModel and on the checkpoint (scripts/predict.py's two paths).
    _assert_close(Predictor(base)(colour_photos), evaluated)
    checkpoint_predictor = Predictor(grey_run["workdir"])
    assert checkpoint_predictor.input_contract.grayscale
    _assert_close(checkpoint_predictor(colour_photos), evaluated)


def test_saved_preset_serves_what_was_evaluated(grey_run, colour_photos):
    """scripts/export.py --format=preset converts the run; Predictor (predict.py) and
    from_preset on the preset give the evaluation path's numbers (same kernels, same input:
    bit-identical)."""
    preset = str(grey_run["root"] / "preset")
    subprocess.run(
        [
            sys.executable,
            "scripts/export.py",
            f"--checkpoint={grey_run['workdir']}",
            "--format=preset",
            f"--output={preset}",
        ],
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        capture_output=True,
    )
    model, contract = grey_run["model"], grey_run["info"]["input_contract"]
    evaluated = predict_numpy(model, colour_photos, contract)
    predictor = Predictor(preset)
    assert predictor.input_contract.grayscale
    assert predictor.source == os.path.join(preset, "model.weights.h5")
    for task, value in predictor(colour_photos).items():
        np.testing.assert_array_equal(value, evaluated[task], err_msg=task)
    loaded = MultiTaskNet.from_preset(preset, expected_preset="small")
    for task, value in predict_numpy(loaded, colour_photos, loaded.input_contract).items():
        np.testing.assert_array_equal(value, evaluated[task], err_msg=task)


def test_onnx_serves_what_was_evaluated(grey_run, colour_photos):
    import onnx

    model, contract = grey_run["model"], grey_run["info"]["input_contract"]
    path = export_onnx_predictor(model, str(grey_run["root"] / "p.onnx"), input_contract=contract)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(meta["input_contract"]) == {"color_mode": "grayscale"}
    served = OnnxRunner(path)(colour_photos)
    # Same backend, fed the evaluation path's input: identical up to rounding.
    plain = OnnxRunner(export_onnx_predictor(model, str(grey_run["root"] / "plain.onnx")))
    _assert_close(served, plain(prepare_images(colour_photos, contract)))
    # Against the TensorFlow evaluation path: backend accumulation order only.
    _assert_close(served, predict_numpy(model, colour_photos, contract), ONNX_TOL)


def test_trainer_test_step_feeds_the_contract():
    from mtsyn_tf.models import build_discriminator, build_multitask_model
    from mtsyn_tf.trainer.config import TrainerConfig
    from mtsyn_tf.trainer.mtl_adversarial import MultiTaskAdversarialTrainer

    rng = np.random.default_rng(0)
    size = 227
    valid = np.ones((2, size, size, 1), np.float32)
    normals = rng.normal(size=(2, size, size, 3))
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    batch = {
        "image": rng.random((2, size, size, 3), dtype=np.float32),
        "depth": rng.uniform(0.5, 8.0, (2, size, size, 1)).astype(np.float32),
        "normals": normals.astype(np.float32),
        "contour": (rng.random((2, size, size, 1)) < 0.1).astype(np.float32),
        "valid": valid,
    }
    grey_batch = {**batch, "image": prepare_images(batch["image"], True)}
    losses = {}
    for grayscale in (True, False):
        keras.utils.set_random_seed(0)
        trainer = MultiTaskAdversarialTrainer(
            build_multitask_model("small"),
            build_discriminator("small"),
            TrainerConfig(pool_size=4, grayscale=grayscale),
        ).build_all()
        trainer.compile(keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01))
        for name, data in (("rgb", batch), ("grey", grey_batch)):
            for tracker in trainer.metrics:
                tracker.reset_state()
            logs = trainer.test_step(data)
            losses[grayscale, name] = float(logs["loss_depth"])
    # Grey-trained: a colour batch is evaluated exactly as its channel mean.
    assert losses[True, "rgb"] == pytest.approx(losses[True, "grey"], rel=1e-6)
    # Colour-trained: untouched, so the two inputs differ.
    assert abs(losses[False, "rgb"] - losses[False, "grey"]) > 1e-4


# === A colour-trained run is untouched ===
def test_colour_run_is_served_rgb_as_is(small_model, colour_photos, tmp_path):
    workdir = _workdir(small_model, str(tmp_path / "run"), grayscale=False)
    model, info = load_model_from_checkpoint(workdir)
    assert not info["input_contract"].grayscale
    raw = {k: np.asarray(v) for k, v in model.predict_physical(colour_photos).items()}
    _assert_close(predict_numpy(model, colour_photos, info["input_contract"]), raw)
    version = export_for_serving(
        model, str(tmp_path / "s"), warmup=False, input_contract=info["input_contract"]
    )
    with open(os.path.join(version, CONTRACT_FILENAME)) as f:
        assert json.load(f) == {"color_mode": "rgb"}
    served = tf.saved_model.load(version).signatures["predict_all"](
        image=tf.constant(colour_photos)
    )
    _assert_close(served, raw)
    _assert_close(Predictor(workdir)(colour_photos), raw)


def test_old_run_without_a_record_loads_as_colour(small_model, tmp_path):
    write_workdir(small_model, str(tmp_path / "old"))  # config.json holds only the preset
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, info = load_model_from_checkpoint(str(tmp_path / "old"))
    assert not info["input_contract"].grayscale
    assert any("input_contract" in str(w.message) for w in caught)
