"""TF Serving warmup records (``assets.extra/tf_serving_warmup_requests``).

TF Serving replays these PredictRequests when it loads a version, so the first real
request does not pay for graph initialisation and kernel selection. The file is a
TFRecord of ``tensorflow_serving.apis.prediction_log_pb2.PredictionLog`` protos.
"""

from __future__ import annotations

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_FILENAME = "tf_serving_warmup_requests"


def _warmup_image(image_size: int, seed: int = 0) -> np.ndarray:
    """A smooth colour ramp plus noise: exercises every code path like a photo would."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    image = np.stack(
        [*np.meshgrid(ramp, ramp[::-1]), np.full((image_size,) * 2, 0.5, np.float32)], -1
    )
    return np.clip(image + 0.05 * rng.standard_normal(image.shape), 0, 1).astype(np.float32)


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def warmup_requests(model_name: str, image_size: int, batch_size: int | None) -> list:
    """PredictionLogs for serving_default (float images) and predict_bytes (one PNG)."""
    batch = batch_size or 1
    image = np.repeat(_warmup_image(image_size)[None], batch, axis=0)
    logs = []
    for signature, key, value in (
        ("serving_default", "image", image),
        ("predict_bytes", "image_bytes", np.array([_png_bytes(image[0])] * batch, dtype=object)),
    ):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
        )
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup_file(export_dir: str, model_name: str, image_size: int, batch_size=None) -> str:
    """Writes ``<export_dir>/assets.extra/tf_serving_warmup_requests``; returns its path."""
    path = os.path.join(export_dir, "assets.extra", WARMUP_FILENAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in warmup_requests(model_name, image_size, batch_size):
            writer.write(log.SerializeToString())
    return path


def read_warmup_file(path: str) -> list:
    """Parses a warmup file back into PredictionLog protos (used by tests and checks)."""
    logs = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
