"""Shared fixtures: a `small` model with non-trivial BN statistics, photos, a workdir."""

import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mtsyn_tf.models import build_multitask_model


def randomize_batchnorm(model, seed=0):
    """Random BN statistics and affine terms, so folding and exports are really tested."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith("moving_variance"):
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        elif w.path.endswith("moving_mean"):
            w.assign(rng.normal(0.0, 0.3, w.shape))
        elif w.path.endswith("gamma"):
            w.assign(rng.uniform(0.5, 1.5, w.shape))
        elif w.path.endswith("beta"):
            w.assign(rng.normal(0.0, 0.2, w.shape))
    return model


def write_workdir(model, workdir, preset=None):
    """A training workdir as the train script writes it: config.json + checkpoints/."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump({"preset": preset or model.preset}, f)
    ckpt = tf.train.Checkpoint(model=model, epoch=tf.Variable(1, dtype=tf.int64))
    return ckpt.save(os.path.join(workdir, "checkpoints", "ckpt"))


def encode(image01, fmt="PNG", mode=None):
    """float [H,W,3] in [0,1] → encoded bytes (optionally converted to L / RGBA first)."""
    pil = Image.fromarray((np.clip(image01, 0, 1) * 255).round().astype(np.uint8))
    if mode:
        pil = pil.convert(mode)
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt)
    return buffer.getvalue()


def astronaut(size=227):
    from skimage import data, transform

    return transform.resize(data.astronaut(), (size, size), anti_aliasing=True).astype(np.float32)


@pytest.fixture(scope="session")
def small_model():
    # Seeded: the ONNX-vs-TF bound is checked on the same weights in every run.
    keras.utils.set_random_seed(0)
    return randomize_batchnorm(build_multitask_model("small"))


@pytest.fixture(scope="session")
def images():
    """Two random images and the astronaut, float32 [3, 227, 227, 3] in [0, 1]."""
    rng = np.random.default_rng(1)
    return np.concatenate([rng.random((2, 227, 227, 3), dtype=np.float32), astronaut()[None]])


@pytest.fixture()
def photo_dir(tmp_path):
    """Three photos of different sizes and formats (RGB JPEG, grayscale PNG, RGBA PNG)."""
    rng = np.random.default_rng(2)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(encode(astronaut(180), "JPEG"))
    (folder / "b.png").write_bytes(encode(rng.random((40, 64, 3)), "PNG", mode="L"))
    (folder / "c.png").write_bytes(encode(rng.random((33, 20, 3)), "PNG", mode="RGBA"))
    (folder / "notes.txt").write_text("not an image")
    return folder
