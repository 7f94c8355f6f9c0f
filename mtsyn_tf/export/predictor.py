"""Runs an exported SavedModel, a saved preset or a training run on a folder of photos.

Any photo size is accepted: each file is decoded and stretched to the model's input size
by ``preprocess.decode_and_resize`` (the graph of the ``predict_bytes`` signature), so this
path and TF Serving agree number for number. Outputs are the physical predictions at the
input resolution of the network (S×S), not at the photo's size. Photos are sent as RGB;
the run's ``InputContract`` (channel mean for a grey-trained run) is applied by the
SavedModel's signature or, for a preset or run (``MultiTaskNet.from_preset``), here, so
both equal the evaluated model.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from mtsyn_tf.export.preprocess import decode_and_resize
from mtsyn_tf.export.visualize import COLORIZERS as _COLORIZERS
from mtsyn_tf.export.visualize import prediction_sheet
from mtsyn_tf.io_utils import atomic_file
from mtsyn_tf.io_utils import write_png as _write_png
from mtsyn_tf.models import MultiTaskNet
from mtsyn_tf.models.preprocessor import InputContract

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _saved_model_dir(path: str) -> str | None:
    """The SavedModel directory at ``path`` or, for a model_base_path, its newest version."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isdir(path):
        versions = sorted((int(d) for d in os.listdir(path) if d.isdigit()), reverse=True)
        for version in versions:
            candidate = os.path.join(path, str(version))
            if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
                return candidate
    return None


class Predictor:
    """``Predictor(path)(images) -> {depth, normals, contour}`` for a SavedModel export, a
    saved preset directory, a training workdir or a checkpoint prefix."""

    def __init__(self, path: str):
        path = os.path.abspath(os.fspath(path))
        if not os.path.exists(path) and not os.path.exists(path + ".index"):
            raise ValueError(
                "Model path does not exist: expected a SavedModel export, a TF Serving "
                "model_base_path, a saved preset, a training workdir or a checkpoint prefix. "
                f"Received: {path}"
            )
        saved_model = _saved_model_dir(path)
        if saved_model is not None:
            try:
                loaded = tf.saved_model.load(saved_model)
            except (OSError, ValueError, tf.errors.OpError) as err:
                raise ValueError(f"Unreadable SavedModel ({err}). Received: {saved_model}") from err
            if "predict_all" not in loaded.signatures:
                raise ValueError(
                    f"SavedModel has no predict_all signature (not a mtsyn_tf serving export); "
                    f"its signatures: {sorted(loaded.signatures)}. Received: {saved_model}"
                )
            signature = loaded.signatures["predict_all"]
            self._loaded = loaded
            self.image_size = int(
                signature.structured_outputs[next(iter(signature.structured_outputs))].shape[1]
            )
            # The signature applies the run's input contract itself (serving.py).
            self._fn = lambda images: signature(image=tf.constant(images))
            self.input_contract = InputContract.read(saved_model)
            self.source = saved_model
        else:
            model = MultiTaskNet.from_preset(path)
            self.image_size = model.image_size
            contract = self.input_contract = model.input_contract
            self._fn = lambda images: model.predict_physical(contract(images))
            self.source = model.load_info["checkpoint"]

    def __call__(self, images: np.ndarray) -> dict:
        return {k: np.asarray(v) for k, v in self._fn(np.asarray(images, np.float32)).items()}


def list_images(folder: str) -> list[str]:
    """Sorted image files (by extension) directly inside ``folder``."""
    if not os.path.isdir(folder):
        raise ValueError(f"Input directory does not exist. Received: {folder}")
    files = sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )
    if not files:
        raise ValueError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in the input directory. Received: {folder}"
        )
    return files


def load_image(path: str, image_size: int) -> np.ndarray:
    """Decodes and resizes one file; a corrupt file raises a ValueError naming it."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return decode_and_resize(tf.constant(data), image_size).numpy()
    except tf.errors.InvalidArgumentError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"Cannot decode image file {path}: {reason}") from err


def _write_npy(path: str, array: np.ndarray) -> None:
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def predict_folder(
    predictor: Predictor,
    input_dir: str,
    output_dir: str,
    batch_size: int = 8,
    save_raw: bool = False,
) -> list[str]:
    """Writes ``<stem>_{depth,normals,contour,sheet}.png`` (+ ``<stem>_<task>.npy``) per image.

    Images are decoded batch by batch (memory stays bounded for large folders); a corrupt
    file stops the run with a ValueError naming it, after the earlier batches' outputs
    (each file written whole, via a temporary name). Returns the processed image paths.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive. Received: batch_size={batch_size}")
    files = list_images(input_dir)
    os.makedirs(output_dir, exist_ok=True)
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        images = np.stack([load_image(f, predictor.image_size) for f in batch])
        outputs = predictor(images)
        for i, path in enumerate(batch):
            stem = os.path.join(output_dir, os.path.splitext(os.path.basename(path))[0])
            single = {k: v[i] for k, v in outputs.items()}
            for key, value in single.items():
                _write_png(f"{stem}_{key}.png", _COLORIZERS[key](value))
                if save_raw:
                    _write_npy(f"{stem}_{key}.npy", value.astype(np.float32))
            _write_png(f"{stem}_sheet.png", prediction_sheet(images[i], single))
    return files
