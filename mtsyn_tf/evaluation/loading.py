"""Restores the model of a training run for evaluation, and feeds it the way it was trained.

Two config.json layouts exist: the trainer's (``scripts/train.py`` writes ``"preset":
"<name>"`` plus ``"resolved_preset": {...}``) and a bare ``{"preset": {...}}``. The
export loader (``mtsyn_tf.export.load_model_from_checkpoint``) reads the second and
checks every weight; for the trainer's layout we rebuild from ``resolved_preset`` and
require, through ``assert_existing_objects_matched``, that every model variable was
found in the checkpoint (``expect_partial`` alone would silently keep random weights).
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from mtsyn_tf.export.checkpoint import load_model_from_checkpoint, resolve_checkpoint
from mtsyn_tf.models import build_multitask_model, get_preset


def _read_config(config_path: str) -> dict:
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Unreadable config.json ({err}). Received: {config_path}") from err
    if not isinstance(config, dict):
        raise ValueError(f"config.json must hold a JSON object. Received: {config_path}")
    return config


def load_run_model(path: str, expected_preset: str | dict | None = None):
    """Rebuilds a run's MultiTaskNet and restores its newest (or the named) checkpoint.

    Args:
        path: a training workdir, its ``checkpoints/`` directory or a checkpoint prefix.
        expected_preset: optional preset the caller needs (e.g. ``"paper_vgg16"`` for NYUD);
            a different recorded preset raises ``ValueError``.

    Returns:
        ``(model, info)``; info holds ``checkpoint``, ``config``, ``preset`` and
        ``grayscale`` (whether the run trained on grey inputs, see ``prepare_images``).
    """
    prefix, config_path = resolve_checkpoint(path)
    config = _read_config(config_path)
    grayscale = bool(config.get("trainer", {}).get("grayscale", False))
    if isinstance(config.get("preset"), dict):
        model, info = load_model_from_checkpoint(path, expected_preset=expected_preset)
        return model, {**info, "grayscale": grayscale}
    recorded = config.get("resolved_preset")
    if not isinstance(recorded, dict):
        raise ValueError(
            'config.json records no model: expected "resolved_preset": {...} (trainer runs) '
            f'or "preset": {{...}}. Received: {config_path} with keys {sorted(config)}'
        )
    preset = get_preset(recorded)
    if expected_preset is not None:
        expected = get_preset(expected_preset)
        differing = sorted(
            k
            for k in set(expected) | set(preset)
            if k != "name"
            and json.dumps(expected.get(k), default=list) != json.dumps(preset.get(k), default=list)
        )
        if differing:
            raise ValueError(
                f"Preset mismatch: {config_path} records another model (fields {differing} "
                f"differ). Received: expected_preset={expected_preset!r}"
            )
    model = build_multitask_model(preset)
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, AssertionError) as err:
        raise ValueError(
            "The checkpoint does not match the model built from config.json (preset mismatch "
            f"or another run's checkpoint): {str(err)[:400]}. Received: {prefix}"
        ) from err
    return model, {
        "checkpoint": prefix,
        "config": config_path,
        "preset": preset,
        "grayscale": grayscale,
    }


def prepare_images(images, grayscale: bool) -> np.ndarray:
    """float32 [N, S, S, 3] in [0, 1] as the model saw them at evaluation time.

    A run trained on grey inputs (one random channel repeated) is evaluated, like the
    trainer's ``test_step``, on the mean of the three channels repeated three times.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be [N, S, S, 3]. Received shape: {x.shape}")
    if grayscale:
        x = np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1)
    return x
