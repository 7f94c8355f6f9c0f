"""Exports: TF Serving SavedModels, ONNX models, standard-AlexNet conversion, checkpoints."""

from mtsyn_tf.export.alexnet_convert import (
    build_standard_alexnet,
    convert_to_standard_alexnet,
    save_standard_alexnet,
)
from mtsyn_tf.export.bn_folding import fold_batchnorm
from mtsyn_tf.export.caffe_layout import caffe_blobs, save_caffe_npz
from mtsyn_tf.export.checkpoint import load_model_from_checkpoint, untracked_weights
from mtsyn_tf.export.onnx_export import (
    ONNX_OPSET,
    OnnxRunner,
    export_onnx_base,
    export_onnx_predictor,
)
from mtsyn_tf.export.rescale import krahenbuhl_rescale
from mtsyn_tf.export.serving import TASK_SIGNATURES, export_for_serving

__all__ = [
    "ONNX_OPSET",
    "TASK_SIGNATURES",
    "OnnxRunner",
    "build_standard_alexnet",
    "caffe_blobs",
    "convert_to_standard_alexnet",
    "export_for_serving",
    "export_onnx_base",
    "export_onnx_predictor",
    "fold_batchnorm",
    "krahenbuhl_rescale",
    "load_model_from_checkpoint",
    "save_caffe_npz",
    "save_standard_alexnet",
    "untracked_weights",
]
