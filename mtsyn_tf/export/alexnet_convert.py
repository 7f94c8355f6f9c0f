"""Turns the AlexNet-BN base + bottleneck into a standard AlexNet (SPEC §5 transfer).

Standard AlexNet (no BN, no LRN, no groups), input float32 [B, 227, 227, 3] RGB in [0, 1]:
conv1 (11, s4) → pool1 → conv2 (5, pad 2) → pool2 → conv3, conv4, conv5 (3, pad 1) →
pool5 (3, **s2**) → 6×6×C → flatten → fc6 Dense (36·C → F) → fc7 Dense (F → F), each conv/fc
with bias and ReLU. Every BatchNorm is folded into its conv (exact to float rounding), and
the input centring x − 0.5 is folded into conv1's bias (exact: conv1 has no zero padding).

How the dilated conv-fc6 maps onto fc6 (exact at the centre, dropped elsewhere):
our pool5 is 3×3 / stride 1 / "same" on the 13×13 conv5 map, so pool5₁[r] = max(conv5[r−1 …
r+1]) (rows; columns alike). Standard pool5 is 3×3 / stride 2 / valid, so pool5₂[m] =
max(conv5[2m … 2m+2]), m = 0…5, i.e. pool5₂[m] = pool5₁[2m+1]. Our fc6 is a 6×6 kernel with
dilation 2 and padding 5; at output position i it reads pool5₁ rows i − 5 + 2k, k = 0…5.
At the centre i = 6 these are rows 1, 3, …, 11 = 2k+1, exactly the windows stride-2 pooling
keeps, so the standard fc6 (the same 6×6×C×F kernel flattened to a Dense layer over pool5₂)
equals our fc6 at the centre position (6, 6) to float rounding, and fc7 (a 1×1 conv) likewise.
What is approximated: the standard net computes only that one position. Our other 168
positions are lost; of those, positions with i − 6 odd read pool5₁ at even rows, i.e. max
windows shifted by one pixel that stride-2 pooling never forms, and positions near the
border read zero padding. A classifier fine-tuned on fc7 sees the centre column of the
13×13 map, the same receptive field (the whole 227×227 image) the bottleneck had there.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from mtsyn_tf.export.atomic import atomic_directory
from mtsyn_tf.export.bn_folding import fold_conv_bn_block
from mtsyn_tf.export.caffe_layout import save_caffe_npz
from mtsyn_tf.export.standard_alexnet import (
    PARAM_LAYERS,
    build_standard_alexnet,
    preactivation_model,
)

# The architecture lives in standard_alexnet (below both this module and caffe_layout);
# its names stay importable from here.
__all__ = [
    "PARAM_LAYERS",
    "build_standard_alexnet",
    "convert_to_standard_alexnet",
    "preactivation_model",
    "save_standard_alexnet",
]


def convert_to_standard_alexnet(model) -> keras.Model:
    """Builds a standard AlexNet carrying a MultiTaskNet's (or AlexNetBackbone's) weights."""
    backbone = getattr(model, "backbone", model)
    if not all(hasattr(backbone, name) for name in PARAM_LAYERS):
        raise ValueError(
            "Expected an AlexNet MultiTaskNet or AlexNetBackbone (layers conv1..fc7). "
            f"Received: {type(model).__name__}"
        )
    widths = dict(backbone.widths)
    alexnet = build_standard_alexnet(widths)
    for name in PARAM_LAYERS:
        kernel, bias = fold_conv_bn_block(getattr(backbone, name))
        if name == "conv1":
            # Backbone input is images − 0.5 and conv1 is unpadded: W*(x − 0.5) = W*x − 0.5·ΣW.
            bias = bias - 0.5 * kernel.sum(axis=(0, 1, 2))
        if name == "fc6":
            expected = (6, 6, widths["conv5"], widths["fc6"])
            if kernel.shape != expected:
                raise ValueError(f"fc6 kernel must be {expected}. Received: {kernel.shape}")
            # Flatten of NHWC is (h, w, c) row-major, the same order as the kernel's axes.
            kernel = kernel.reshape(-1, widths["fc6"])
        elif name == "fc7":
            kernel = kernel.reshape(widths["fc6"], widths["fc7"])
        alexnet.get_layer(name).set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return alexnet


def save_standard_alexnet(
    alexnet: keras.Model,
    output_dir: str,
    overwrite: bool = False,
    caffe: bool = False,
    input_contract=None,
    pretraining_contract=None,
) -> dict:
    """Writes ``alexnet.keras``, ``saved_model/``, ``alexnet.onnx`` (+ Caffe ``.npz``).

    Everything goes into a temporary sibling directory renamed to ``output_dir`` at the end.
    The SavedModel's ``serving_default`` maps ``image`` [B, 227, 227, 3] RGB in [0, 1] to the
    taps conv1 … fc7; the ONNX model has the same input and output names.

    Input contract: the converted net is what the transfer protocols fine-tune, and the
    reference fine-tunes it on colour images whatever the pretraining input was, so
    ``input_contract`` defaults to colour (identity). It is applied inside the SavedModel
    and ONNX graphs and written to ``input_contract.json`` together with
    ``pretraining_color_mode`` (from ``pretraining_contract``, the run's own contract) so
    a user can feed the pretraining input instead (``color_mode: grayscale``); the Keras
    and Caffe files hold the bare network, to be fed as ``input_contract.json`` says.
    """
    from mtsyn_tf.models.preprocessor import InputContract

    contract = input_contract or InputContract("rgb")
    notes = {}
    if pretraining_contract is not None:
        notes["pretraining_color_mode"] = pretraining_contract.color_mode
    from mtsyn_tf.export.onnx_export import export_onnx_keras

    size = alexnet.input.shape[1]
    with atomic_directory(output_dir, overwrite=overwrite) as tmp:
        alexnet.save(os.path.join(tmp, "alexnet.keras"))
        archive = keras.export.ExportArchive()
        archive.track(alexnet)
        archive.add_endpoint(
            "serving_default",
            lambda image: alexnet(contract(image), training=False),
            input_signature=[keras.InputSpec(shape=(None, size, size, 3), dtype="float32")],
        )
        archive.write_out(os.path.join(tmp, "saved_model"), verbose=False)
        export_onnx_keras(alexnet, os.path.join(tmp, "alexnet.onnx"), size, input_contract=contract)
        contract.write(tmp, **notes)
        if caffe:
            save_caffe_npz(alexnet, os.path.join(tmp, "alexnet_caffe.npz"))
    names = {
        "keras": "alexnet.keras",
        "saved_model": "saved_model",
        "onnx": "alexnet.onnx",
        "input_contract": "input_contract.json",
    }
    if caffe:
        names["caffe_npz"] = "alexnet_caffe.npz"
    return {k: os.path.join(os.path.abspath(output_dir), v) for k, v in names.items()}
