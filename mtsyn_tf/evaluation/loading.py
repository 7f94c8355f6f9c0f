"""Restores the model of a training run (or saved preset) for evaluation, and feeds it the
way it was trained.

Loading is ``MultiTaskNet.from_preset``'s; ``prepare_images`` feeds a model the way the
trainer's ``test_step`` does.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.models import load_preset
from mtsyn_tf.models.preprocessor import as_input_contract


def load_run_model(path: str, expected_preset: str | dict | None = None):
    """``(model, info)`` of a training run (newest or the named checkpoint) or saved preset.

    ``mtsyn_tf.models.load_preset``, i.e. ``MultiTaskNet.from_preset`` with its info
    (every model weight is checked to come from the checkpoint or weights file);
    ``info["grayscale"]`` says whether the run trained on grey inputs (see
    ``prepare_images``), ``info["checkpoint"]`` names the weights.
    """
    return load_preset(path, expected_preset=expected_preset)


def prepare_images(images, grayscale) -> np.ndarray:
    """float32 [N, S, S, 3] in [0, 1] as the model saw them at evaluation time.

    ``grayscale``: the run's ``InputContract`` (``info["input_contract"]``) or its
    grayscale flag. A run trained on grey inputs is evaluated, like the trainer's
    ``test_step``, on the mean of the three channels repeated three times.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be [N, S, S, 3]. Received shape: {x.shape}")
    return np.asarray(as_input_contract(grayscale)(x))
