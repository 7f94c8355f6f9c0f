"""Rebuilds a MultiTaskNet from a training workdir and restores its weights only.

A training run writes ``<workdir>/config.json`` (``{"resolved_preset": {...}, ...}``) and
``tf.train.Checkpoint(model=<MultiTaskNet>, optimizers..., epoch...)`` files under
``<workdir>/checkpoints/``. Exports need the model and nothing else, so the loader builds
the net from the recorded preset, restores ``model`` with ``expect_partial()`` (the
optimizer and discriminator slots are deliberately skipped) and then checks, variable by
variable, that every model weight was present in the checkpoint with the right shape:
``expect_partial`` alone would silently leave freshly initialised weights in place.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from mtsyn_tf.cli import tf_error_reason
from mtsyn_tf.models import build_multitask_model, get_preset
from mtsyn_tf.models.preprocessor import InputContract

_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def resolve_checkpoint(workdir_or_ckpt: str) -> tuple[str, str]:
    """Returns (checkpoint prefix, config.json path) for a workdir, checkpoints dir or prefix."""
    path = os.path.abspath(os.fspath(workdir_or_ckpt))
    if os.path.isdir(path):
        ckpt_dir = os.path.join(path, "checkpoints")
        if not os.path.isdir(ckpt_dir):
            ckpt_dir = path
        prefix = tf.train.latest_checkpoint(ckpt_dir)
        if prefix is None:
            raise ValueError(
                "No checkpoint found: expected a training workdir with checkpoints/ holding a "
                f"`checkpoint` state file, or such a checkpoints directory. Received: {path}"
            )
    elif os.path.exists(path + ".index"):
        prefix = path
    else:
        raise ValueError(
            "Checkpoint not found: expected a training workdir, its checkpoints/ directory or "
            f"a checkpoint prefix such as <workdir>/checkpoints/ckpt-3. Received: {path}"
        )
    ckpt_dir = os.path.dirname(prefix)
    candidates = [os.path.join(os.path.dirname(ckpt_dir), "config.json")]
    candidates.append(os.path.join(ckpt_dir, "config.json"))
    for config_path in candidates:
        if os.path.isfile(config_path):
            return prefix, config_path
    raise ValueError(
        f"No config.json next to the checkpoint (looked at {candidates}); it records the "
        f"preset the weights belong to. Received: {path}"
    )


def read_preset(config_path: str) -> dict:
    """Reads and validates the model preset of a run's config.json.

    Training runs record the fully resolved preset under ``resolved_preset`` (and the
    preset's name under ``preset``); a bare ``{"preset": {...}}`` is accepted too.
    """
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Unreadable config.json ({err}). Received: {config_path}") from err
    if not isinstance(config, dict) or not isinstance(
        config.get("resolved_preset", config.get("preset")), dict
    ):
        raise ValueError(
            f'config.json must hold {{"resolved_preset": {{...}}}} (written by training). Received: {config_path} with keys '
            f"{sorted(config) if isinstance(config, dict) else type(config).__name__}"
        )
    return get_preset(config.get("resolved_preset", config["preset"]))


def _tracked_paths(root) -> dict:
    """Maps id(variable) → checkpoint key for every variable tf.train.Checkpoint would save."""
    view = tf.train.TrackableView(root)
    paths, stack, seen = {}, [(root, "")], {id(root)}
    while stack:
        obj, prefix = stack.pop()
        for name, child in view.children(obj).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{prefix}/{name}" if prefix else name
            if isinstance(child, tf.Variable) or hasattr(child, "_value"):
                paths[id(child)] = path
            else:
                stack.append((child, path))
    return paths


def untracked_weights(model) -> list[str]:
    """Model weights that ``tf.train.Checkpoint(model=model)`` cannot save or restore."""
    paths = _tracked_paths(tf.train.Checkpoint(model=model))
    return [w.path for w in model.weights if id(w) not in paths]


def load_model_from_checkpoint(workdir_or_ckpt: str, expected_preset: str | dict | None = None):
    """Rebuilds the MultiTaskNet of a training run and restores its weights.

    Args:
        workdir_or_ckpt: a training workdir (newest checkpoint under ``checkpoints/``), a
            checkpoints directory, or a checkpoint prefix (``.../checkpoints/ckpt-3``).
        expected_preset: optional preset name or dict the caller expects; a different preset
            in config.json raises instead of exporting the wrong architecture.

    Returns:
        ``(model, info)`` where info holds ``checkpoint`` (prefix), ``config`` (path),
        ``preset`` (dict), ``input_contract`` (the run's ``InputContract``: every caller
        feeds the model through it) and ``grayscale`` (``input_contract.grayscale``).
    """
    prefix, config_path = resolve_checkpoint(workdir_or_ckpt)
    preset = read_preset(config_path)
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
                f"Preset mismatch: {config_path} records a different preset (fields {differing} "
                f"differ). Received: expected_preset={expected_preset!r}, "
                f"recorded={preset.get('name', preset)!r}"
            )
    model = build_multitask_model(preset)
    missing = untracked_weights(model)
    if missing:
        raise ValueError(
            f"These model weights cannot be saved or restored by tf.train.Checkpoint: {missing[:5]}"
            f" ({len(missing)} in all). Received: {prefix}"
        )
    try:
        # Matching is by object graph, not by key name: a training checkpoint also holds the
        # discriminator and optimizers (expect_partial), but every model weight must match.
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (tf.errors.OpError, IndexError, EOFError, OSError) as err:
        # A truncated .data file surfaces as IndexError("Read less bytes than requested")
        # from the restore's tensor reader, not as a TF error.
        reason = tf_error_reason(err) if isinstance(err, tf.errors.OpError) else str(err)
        raise ValueError(
            f"Corrupt or unreadable checkpoint ({type(err).__name__}: {reason}); expected the "
            f"complete ckpt-N.index and ckpt-N.data-* files of a training run. Received: {prefix}"
        ) from None
    except (ValueError, AssertionError) as err:
        raise ValueError(
            "The checkpoint does not match the model built from config.json (preset mismatch "
            f"or a checkpoint from another run): {str(err)[:400]}. Received: {prefix}"
        ) from err
    contract = InputContract.from_run_file(config_path)
    return model, {
        "checkpoint": prefix,
        "config": config_path,
        "preset": preset,
        "input_contract": contract,
        "grayscale": contract.grayscale,
    }
