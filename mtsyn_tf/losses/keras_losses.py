"""The losses of SPEC §3 as ``keras.losses.Loss`` objects, for ``trainer.compile``.

Each returns one value per example (``reduction=None``): the trainer sums them and
divides by the global batch, which keeps gradients right under ``MirroredStrategy`` and
gradient accumulation. A task loss takes the synthetic batch as ``y_true`` (targets and
valid mask, docs/CONTRACTS.md) and its head's float32 output as ``y_pred``; the
adversarial loss takes a domain label (``SYNTHETIC`` / ``REAL``) and D's patch logits.
"""

from __future__ import annotations

import keras

from mtsyn_tf.losses.adversarial import patch_bce_per_example
from mtsyn_tf.losses.contour import NORMALIZATIONS, contour_loss_per_example
from mtsyn_tf.losses.depth import depth_loss_per_example
from mtsyn_tf.losses.normals import normals_loss_per_example


class PerExampleLoss(keras.losses.Loss):
    """A loss returning one value per example; the trainer reduces (global batch, λ).

    ``__call__`` is ``call``: no reduction, mask or sample weight to apply, and ``y_true``
    (the whole synthetic batch for a task loss) is left as it is rather than converted
    leaf by leaf; each loss casts what it reads to float32.
    """

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} returns per-example values and takes no sample_weight. "
                f"Received: sample_weight={sample_weight!r}"
            )
        return self.call(y_true, y_pred)


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class ContourLoss(PerExampleLoss):
    """Class-balanced contour BCE of ``y_true["contour"]`` (``contour.py``): [B]."""

    def __init__(self, normalization: str = "edges", name: str = "contour_loss", **kwargs):
        super().__init__(name=name, reduction=None, **kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}. "
                f"Received: normalization={normalization!r}"
            )
        self.normalization = normalization

    def call(self, y_true, y_pred):
        return contour_loss_per_example(y_pred, y_true["contour"], self.normalization)

    def get_config(self):
        return {"normalization": self.normalization, "name": self.name}


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class DepthLoss(PerExampleLoss):
    """Scale-invariant log-depth loss over ``y_true["valid"]`` pixels (``depth.py``): [B]."""

    def __init__(self, name: str = "depth_loss", **kwargs):
        super().__init__(name=name, reduction=None, **kwargs)

    def call(self, y_true, y_pred):
        return depth_loss_per_example(y_pred, y_true["depth"], y_true["valid"])

    def get_config(self):
        return {"name": self.name}


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class NormalsLoss(PerExampleLoss):
    """Negative mean cosine over ``y_true["valid"]`` pixels (``normals.py``): [B]."""

    def __init__(self, name: str = "normals_loss", **kwargs):
        super().__init__(name=name, reduction=None, **kwargs)

    def call(self, y_true, y_pred):
        return normals_loss_per_example(y_pred, y_true["normals"], y_true["valid"])

    def get_config(self):
        return {"name": self.name}


@keras.saving.register_keras_serializable(package="mtsyn_tf")
class PatchBCE(PerExampleLoss):
    """Adversarial BCE of D's patch logits against one domain label (``adversarial.py``): [B].

    ``y_true`` is the label every patch should get: ``SYNTHETIC`` (1) or ``REAL`` (0).
    """

    def __init__(self, name: str = "patch_bce", **kwargs):
        super().__init__(name=name, reduction=None, **kwargs)

    def call(self, y_true, y_pred):
        return patch_bce_per_example(y_pred, y_true)

    def get_config(self):
        return {"name": self.name}


def task_losses(tasks, contour_normalization: str = "edges") -> dict:
    """The paper's loss of each task in ``tasks``: ``{task: Loss}``."""
    make = {
        "contour": lambda: ContourLoss(contour_normalization),
        "depth": DepthLoss,
        "normals": NormalsLoss,
    }
    unknown = [t for t in tasks if t not in make]
    if unknown:
        raise ValueError(f"No loss for tasks {unknown}; known: {sorted(make)}. Received: {tasks}")
    return {task: make[task]() for task in tasks}


def check_task_losses(task_losses: dict, tasks) -> None:
    """One loss per trained task, no more, no less (a clear error before tracing)."""
    if set(task_losses) != set(tasks):
        raise ValueError(
            f"task_losses needs one loss per trained task {tuple(tasks)}. "
            f"Received: task_losses keys={sorted(task_losses)}"
        )
