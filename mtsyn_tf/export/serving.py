"""TF Serving export of a MultiTaskNet: ``<model_base_path>/<version>/`` SavedModels.

Signatures (all outputs float32, physical units; ``B`` is the batch, polymorphic unless a
fixed ``batch_size`` is requested; ``S`` = 227 for AlexNet presets):

| signature | input | outputs |
|---|---|---|
| serving_default, predict_all | image float32 [B,S,S,3] RGB in [0,1] | depth, normals, contour |
| predict_depth | image | depth [B,S,S,1], metres (planar z-depth) |
| predict_normals | image | normals [B,S,S,3], unit, OpenCV camera frame (x right, y down, z forward) |
| predict_contour | image | contour [B,S,S,1], probability of an object contour |
| predict_bytes | image_bytes tf.string [B] (JPEG/PNG/GIF/BMP files; a scalar is refused) | depth, normals, contour |

Every signature feeds the network through the run's ``InputContract``
(``mtsyn_tf.models.preprocessor``): a grey-trained run gets the channel mean repeated 3×,
exactly as it was evaluated, so clients always send plain RGB. The contract is written
beside the model as ``<version>/input_contract.json``.

Only the tasks of the model's preset are exported. Bad inputs fail with
``InvalidArgumentError`` carrying a readable message, raised by ``tf.debugging`` asserts
inside the graph: wrong height/width/channels, values outside [0, 1], NaN/Inf, a wrong
batch for a fixed-batch export, or a byte string that is not an image. The dtype and rank
is part of the signature itself (TF rejects a mismatch before the graph runs). The spatial
size is fixed because the decoder's transposed convolutions only reproduce S×S at S. The
``image`` input is declared with unknown shape (``saved_model_cli`` shows ``unknown_rank``)
so that the asserts, not a kernel deep in the graph, report a wrong rank or size; the
graph sets the static shape [B, S, S, 3] right after the checks, and every output has a
static shape.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from mtsyn_tf.export.atomic import atomic_directory
from mtsyn_tf.export.preprocess import check_bytes_batch, check_image_values, decode_batch
from mtsyn_tf.export.warmup import write_warmup_file
from mtsyn_tf.models.preprocessor import InputContract

TASK_SIGNATURES = {
    "depth": "predict_depth",
    "normals": "predict_normals",
    "contour": "predict_contour",
}


def add_serving_endpoints(
    archive, model, batch_size: int | None = None, input_contract: InputContract | None = None
) -> None:
    """Registers every signature of this module's table on a ``keras.export.ExportArchive``.

    ``input_contract``: the run's (``info["input_contract"]``); None means colour (identity).
    """
    size = model.image_size
    contract = input_contract or InputContract("rgb")

    def _predict(model, images):
        return dict(model.predict_physical(contract(images)))

    # Unknown rank on purpose: a static rank lets TF fold shape checks away at trace time,
    # and a loaded signature does not enforce it, so a rank-3 input would reach a kernel.
    image_spec = tf.TensorSpec(None, tf.float32, name="image")
    # Unknown rank for the same reason: a scalar string must reach the rank check below,
    # not tf.map_fn (whose slicing error names no input).
    bytes_spec = tf.TensorSpec(None, tf.string, name="image_bytes")

    def predict_all(image):
        return _predict(model, check_image_values(image, size, batch_size))

    def predict_bytes(image_bytes):
        image_bytes = check_bytes_batch(image_bytes, batch_size)
        images = tf.ensure_shape(decode_batch(image_bytes, size), [None, size, size, 3])
        return _predict(model, images)

    # The first endpoint also becomes serving_default.
    archive.add_endpoint("predict_all", predict_all, input_signature=[image_spec])
    for task in model.tasks:

        def predict_task(image, task=task):
            return {task: _predict(model, check_image_values(image, size, batch_size))[task]}

        archive.add_endpoint(TASK_SIGNATURES[task], predict_task, input_signature=[image_spec])
    archive.add_endpoint("predict_bytes", predict_bytes, input_signature=[bytes_spec])


def next_version(model_base_path: str) -> int:
    """1 + the largest numeric version directory under ``model_base_path`` (1 if none)."""
    if not os.path.isdir(model_base_path):
        return 1
    versions = [int(d) for d in os.listdir(model_base_path) if d.isdigit()]
    return max(versions, default=0) + 1


def export_for_serving(
    model,
    model_base_path: str,
    version: int | None = None,
    batch_size: int | None = None,
    overwrite: bool = False,
    model_name: str = "mtsyn",
    warmup: bool = True,
    input_contract: InputContract | None = None,
) -> str:
    """Writes ``<model_base_path>/<version>/`` (SavedModel + warmup requests) atomically.

    Args:
        model: a built MultiTaskNet (AlexNet or VGG16 preset).
        model_base_path: TF Serving's ``--model_base_path``; created if missing.
        version: integer version directory; None picks the next free number.
        batch_size: None for a polymorphic batch, or an int: requests with another batch
            size are then rejected by an in-graph assert (the graph's static batch stays
            unknown, see ``preprocess.check_image_values``).
        overwrite: replace an existing version directory instead of refusing.
        model_name: the ``model_spec.name`` written into the warmup requests.
        warmup: write ``assets.extra/tf_serving_warmup_requests``.
        input_contract: the run's test-time input transform (``load_model_from_checkpoint``
            returns it as ``info["input_contract"]``), applied inside every signature and
            written to ``input_contract.json``. None: colour (identity).

    Returns:
        The path of the version directory.
    """
    if version is None:
        version = next_version(model_base_path)
    if not isinstance(version, int) or version < 0:
        raise ValueError(f"version must be a non-negative int. Received: version={version!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
        raise ValueError(f"batch_size must be None or a positive int. Received: {batch_size!r}")
    target = os.path.join(os.path.abspath(model_base_path), str(version))
    contract = input_contract or InputContract("rgb")
    archive = keras.export.ExportArchive()
    archive.track(model)
    add_serving_endpoints(archive, model, batch_size, contract)
    with atomic_directory(target, overwrite=overwrite) as tmp:
        archive.write_out(tmp, verbose=False)
        contract.write(tmp)
        if warmup:
            write_warmup_file(tmp, model_name, model.image_size, batch_size)
    return target
