"""ONNX export of the multi-task predictor and of the base network's feature taps.

Converter: tf2onnx (``tf2onnx.convert.from_function``) used directly. Keras 3's
``model.export(format="onnx")`` is, on the TensorFlow backend, a thin wrapper around the
same tf2onnx call, but it can only export ``model.call`` (raw log-depth / logits, no
physical units, no feature-tap dict) and does not let us name inputs and outputs. Calling
tf2onnx on our own ``tf.function`` gives the served outputs and the taps with stable names.

Layout: NHWC float32 input ``image`` [batch, S, S, 3] RGB in [0, 1] (same as the SavedModel),
fed through the run's ``InputContract`` inside the graph (a grey-trained run: channel mean
repeated 3×), so ONNX clients send RGB too;
the batch dimension is symbolic (``dim_param = "batch"``). Predictor outputs: ``depth``
(metres), ``normals`` (unit, OpenCV camera frame), ``contour`` (probability). Base outputs:
one per tap, ``conv1`` … ``conv5``, ``fc6``, ``fc7`` (post-BN-ReLU activations, NHWC).
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from mtsyn_tf.export.atomic import atomic_file
from mtsyn_tf.models.preprocessor import InputContract

ONNX_OPSET = 17
INPUT_NAME = "image"


def _name_batch_dims(model_proto) -> None:
    """Gives the symbolic batch dimension of every input/output the readable name "batch"."""
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"


def _convert(
    fn, image_size: int, path: str, opset: int, batch_size: int | None, metadata=None
) -> str:
    import onnx
    import tf2onnx

    spec = [tf.TensorSpec([batch_size, image_size, image_size, 3], tf.float32, name=INPUT_NAME)]
    function = tf.function(fn, input_signature=spec, autograph=False)
    model_proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=opset)
    _name_batch_dims(model_proto)
    for key, value in (metadata or {}).items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_file(path) as tmp:
        onnx.save(model_proto, tmp)
    return path


def _contract_metadata(contract: InputContract) -> dict:
    """The contract as ONNX ``metadata_props`` (the transform itself is in the graph)."""
    return {"input_contract": json.dumps(contract.record(), sort_keys=True)}


def export_onnx_predictor(
    model, path: str, opset: int = ONNX_OPSET, batch_size=None, input_contract=None
) -> str:
    """Writes the full predictor (physical outputs) of a MultiTaskNet to ``path``.

    ``input_contract``: the run's (``info["input_contract"]``); None means colour (identity).
    """
    contract = input_contract or InputContract("rgb")
    return _convert(
        lambda image: dict(model.predict_physical(contract(image))),
        model.image_size,
        path,
        opset,
        batch_size,
        _contract_metadata(contract),
    )


def export_onnx_base(
    model, path: str, opset: int = ONNX_OPSET, batch_size=None, input_contract=None
) -> str:
    """Writes the base network (every feature tap, inference-mode BN) to ``path``."""
    contract = input_contract or InputContract("rgb")
    return _convert(
        lambda image: dict(model.backbone(contract(image), training=False)),
        model.image_size,
        path,
        opset,
        batch_size,
        _contract_metadata(contract),
    )


def export_onnx_keras(
    model, path: str, image_size: int, opset: int = ONNX_OPSET, input_contract=None
) -> str:
    """Writes a plain Keras model whose call maps images to a dict or tensor (e.g. AlexNet)."""
    contract = input_contract or InputContract("rgb")
    return _convert(
        lambda image: model(contract(image), training=False),
        image_size,
        path,
        opset,
        None,
        _contract_metadata(contract),
    )


class OnnxRunner:
    """onnxruntime session on CPU returning a dict of numpy outputs by name."""

    def __init__(self, path: str, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: np.ndarray) -> dict:
        images = np.ascontiguousarray(images, dtype=np.float32)
        values = self.session.run(self.output_names, {INPUT_NAME: images})
        return dict(zip(self.output_names, values))
