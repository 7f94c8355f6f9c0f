"""scripts/make_tfrecords.py end to end on tiny inputs, then through the training pipeline."""

import importlib.util
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mtsyn_tf.data import pipeline, shards

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "make_tfrecords.py")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_tfrecords", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scenenet(root, frames=3):
    traj = os.path.join(root, "train", "0", "7")
    for kind in ("photo", "depth", "instance"):
        os.makedirs(os.path.join(traj, kind), exist_ok=True)
    rng = np.random.default_rng(0)
    instance = np.zeros((24, 32), np.uint8)
    instance[:, 16:] = 2
    for i in range(frames):
        cv2.imwrite(
            os.path.join(traj, "photo", f"{25 * i}.jpg"),
            rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
        )
        cv2.imwrite(
            os.path.join(traj, "depth", f"{25 * i}.png"), np.full((24, 32), 2500 + i, np.uint16)
        )
        cv2.imwrite(os.path.join(traj, "instance", f"{25 * i}.png"), instance)


def test_scenenet_to_batches(tmp_path, script):
    _scenenet(str(tmp_path / "scenenet"))
    out = str(tmp_path / "syn")
    result = script.make_tfrecords(
        "scenenet_rgbd", out, ["train"], input_dir=str(tmp_path / "scenenet"), num_shards=2
    )
    assert len(result["train"]["shards"]) == 2 and os.path.isfile(result["train"]["sample_grid"])
    manifest = shards.read_manifest(out)
    assert (manifest["kind"], manifest["source"]) == ("synthetic", "scenenet_rgbd")
    assert shards.verify_shards(out, "train") == 3
    real = str(tmp_path / "real")
    script.make_tfrecords(
        "embedded_real", real, ["train"], num_shards=1, max_examples=2, image_format="jpeg"
    )
    assert shards.verify_shards(real, "train") == 2
    batch = next(
        iter(
            pipeline.make_training_dataset(
                out, real, batch_size=2, image_size=16, seed=0, deterministic=True
            )
        )
    )
    assert batch["synthetic"]["depth"].shape == (2, 16, 16, 1)
    assert batch["real"]["image"].shape == (2, 16, 16, 3)
    # Overwrite protection.
    with pytest.raises(ValueError, match="already exists"):
        script.make_tfrecords("scenenet_rgbd", out, ["train"], input_dir=str(tmp_path / "scenenet"))


def test_cli_reports_bad_input_in_one_line(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--source=real_folder",
            f"--input_dir={tmp_path}",
            f"--output_dir={tmp_path / 'o'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    assert (
        f"make_tfrecords.py: error: No photos (*.jpg, *.jpeg, *.png) found under '{tmp_path}'"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "o" / "manifest.json")
