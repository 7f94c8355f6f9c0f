"""Restores the model of a training run for evaluation, and feeds it the way it was trained.

Loading is the export loader's; ``prepare_images`` feeds a model the way the trainer's
``test_step`` does.
"""

from __future__ import annotations

import numpy as np

from mtsyn_tf.export.checkpoint import load_model_from_checkpoint
from mtsyn_tf.models.preprocessor import as_input_contract


def load_run_model(path: str, expected_preset: str | dict | None = None):
    """Rebuilds a run's MultiTaskNet and restores its newest (or the named) checkpoint.

    Thin alias of :func:`mtsyn_tf.export.checkpoint.load_model_from_checkpoint` (which
    checks that every model weight is matched); ``info["grayscale"]`` says whether the run
    trained on grey inputs (see ``prepare_images``).
    """
    return load_model_from_checkpoint(path, expected_preset=expected_preset)


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
