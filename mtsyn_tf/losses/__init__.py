"""Losses of SPEC §3, each returning one value per example (for global-batch reductions)."""

from mtsyn_tf.losses.adversarial import (
    REAL,
    SYNTHETIC,
    patch_accuracy_per_example,
    patch_bce_per_example,
)
from mtsyn_tf.losses.contour import contour_loss_per_example
from mtsyn_tf.losses.depth import depth_loss_per_example
from mtsyn_tf.losses.keras_losses import (
    ContourLoss,
    DepthLoss,
    NormalsLoss,
    PatchBCE,
    check_task_losses,
    task_losses,
)
from mtsyn_tf.losses.normals import normals_loss_per_example

__all__ = [
    "REAL",
    "SYNTHETIC",
    "ContourLoss",
    "DepthLoss",
    "NormalsLoss",
    "PatchBCE",
    "check_task_losses",
    "contour_loss_per_example",
    "depth_loss_per_example",
    "normals_loss_per_example",
    "patch_accuracy_per_example",
    "patch_bce_per_example",
    "task_losses",
]
