"""Evaluation metrics.

Numpy references (no TensorFlow import), each documenting its conventions:
``depth`` (Eigen errors), ``normals`` (angular errors), ``contours`` (BSDS ODS/OIS/AP,
matching in ``edge_matching``), ``contour_proxy`` (fast pixel-exact contour scores),
``classification`` (VOC AP, both devkit conventions) and ``multitask`` (Δ_MTL).
Streaming Keras metrics for training live in ``mtsyn_tf.metrics.keras_metrics``
(imported explicitly, so that numpy-only evaluation does not load TensorFlow).
"""

from mtsyn_tf.metrics.classification import voc_average_precision, voc_mean_average_precision
from mtsyn_tf.metrics.contour_proxy import ContourProxyAccumulator, contour_proxy_metrics
from mtsyn_tf.metrics.contours import BoundaryEvaluator, boundary_metrics
from mtsyn_tf.metrics.depth import DepthAccumulator, depth_metrics
from mtsyn_tf.metrics.multitask import delta_mtl
from mtsyn_tf.metrics.normals import NormalAccumulator, normal_metrics

__all__ = [
    "BoundaryEvaluator",
    "ContourProxyAccumulator",
    "DepthAccumulator",
    "NormalAccumulator",
    "boundary_metrics",
    "contour_proxy_metrics",
    "delta_mtl",
    "depth_metrics",
    "normal_metrics",
    "voc_average_precision",
    "voc_mean_average_precision",
]
