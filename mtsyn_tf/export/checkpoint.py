"""Restoring a training run's model for export; the loader lives in ``mtsyn_tf.models``.

``load_model_from_checkpoint`` is ``MultiTaskNet``'s run loader (``models/run_checkpoint.py``)
under the name the export library, the demo and the diagnostics have always used. To load a
saved preset directory as well, use ``MultiTaskNet.from_preset`` / ``models.load_preset``.
"""

from __future__ import annotations

from mtsyn_tf.models.multitask import MultiTaskNet
from mtsyn_tf.models.run_checkpoint import (  # noqa: F401  (re-exported)
    read_preset,
    resolve_checkpoint,
    restore_run,
    untracked_weights,
)


def load_model_from_checkpoint(workdir_or_ckpt: str, expected_preset: str | dict | None = None):
    """``(model, info)`` of a training workdir, checkpoints dir or checkpoint prefix.

    See ``mtsyn_tf.models.run_checkpoint.restore_run`` for ``info``'s keys; every model
    weight is checked to come from the checkpoint.
    """
    return restore_run(MultiTaskNet, workdir_or_ckpt, expected_preset=expected_preset)
