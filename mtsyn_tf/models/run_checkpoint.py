"""Rebuilds a MultiTaskNet from a training workdir and restores its weights only.

``MultiTaskNet.from_preset(workdir)`` and ``mtsyn_tf.export.load_model_from_checkpoint``
come here; the model class is passed in (``model_cls``), so this module does not import it.

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
from types import MappingProxyType

import tensorflow as tf

from mtsyn_tf.cli import tf_error_reason
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.models.presets import ModelConfig, get_preset

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


def read_run_config(config_path: str) -> dict:
    """The JSON object of a run's config.json; an unreadable file raises naming it."""
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"Unreadable config.json ({err}). Received: {config_path}") from err
    if not isinstance(config, dict):
        raise ValueError(
            f"config.json must hold a JSON object. Received: {config_path} holding a "
            f"{type(config).__name__}"
        )
    return config


def read_preset(config_path: str) -> ModelConfig:
    """Reads and validates the model preset of a run's config.json.

    Training runs record the fully resolved preset under ``resolved_preset`` (and the
    preset's name under ``preset``); a bare ``{"preset": {...}}`` is accepted too.
    """
    config = read_run_config(config_path)
    recorded = config.get("resolved_preset", config.get("preset"))
    if not isinstance(recorded, dict):
        raise ValueError(
            'config.json must hold {"resolved_preset": {...}} (written by training). '
            f"Received: {config_path} with keys {sorted(config)}"
        )
    try:
        return ModelConfig.from_dict(recorded, source=f"preset of {config_path}")
    except ValueError as err:
        raise ValueError(f"{config_path}: {err}") from None


# What a saved preset's metadata.json keeps of the run it was converted from.
RUN_RECORD_KEYS = (
    "preset",
    "preset_overrides",
    "trainer",
    "batch_size",
    "epochs",
    "steps_per_epoch",
    "seed",
    "dtype_policy",
    "num_replicas",
    "git_commit",
    "versions",
)


def check_expected(config: ModelConfig, source: str, expected_preset=None, architecture=None):
    """Raises (one line, naming ``source``) unless ``config`` is the expected model."""
    if architecture is not None and config.arch != architecture:
        raise ValueError(
            f"Architecture mismatch: {source} holds a model of architecture {config.arch!r}, "
            f"expected {architecture!r}. Received: architecture={config.arch!r}"
        )
    if expected_preset is None:
        return
    expected, recorded = get_preset(expected_preset), config.to_dict()
    differing = sorted(
        k
        for k in set(expected) | set(recorded)
        if k != "name"
        and json.dumps(expected.get(k), default=list) != json.dumps(recorded.get(k), default=list)
    )
    if differing:
        raise ValueError(
            f"Preset mismatch: {source} records a different preset (fields {differing} "
            f"differ). Received: expected_preset={expected_preset!r}, "
            f"recorded={config.name or recorded!r}"
        )


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


def build_model(model_cls, config: ModelConfig):
    """A built ``model_cls`` (MultiTaskNet) of ``config``, named as the trainer names it."""
    return model_cls(config, name=f"mtsyn_{config.arch}").build_for_size()


def restore_run(
    model_cls,
    workdir_or_ckpt: str,
    expected_preset: str | dict | None = None,
    architecture: str | None = None,
    load_weights: bool = True,
):
    """Rebuilds the model of a training run and restores its weights.

    Args:
        model_cls: the model class (``MultiTaskNet``).
        workdir_or_ckpt: a training workdir (newest checkpoint under ``checkpoints/``), a
            checkpoints directory, or a checkpoint prefix (``.../checkpoints/ckpt-3``).
        expected_preset: optional preset name or dict the caller expects; a different preset
            in config.json raises instead of exporting the wrong architecture.
        architecture: optional arch name the caller expects (``"alexnet"``, ``"vgg16"``).
        load_weights: False builds the run's model at initialisation (nothing restored).

    Returns:
        ``(model, info)`` where info holds ``checkpoint`` (prefix), ``config`` (path),
        ``preset`` (dict view), ``input_contract`` (the run's ``InputContract``: every
        caller feeds the model through it), ``grayscale`` (``input_contract.grayscale``)
        and ``run`` (the run's settings kept in a saved preset's metadata); the model
        carries it as ``model.load_info`` (and ``model.input_contract``).
    """
    prefix, config_path = resolve_checkpoint(workdir_or_ckpt)
    config = read_preset(config_path)
    check_expected(config, config_path, expected_preset, architecture)
    model = build_model(model_cls, config)
    missing = untracked_weights(model)
    if missing:
        raise ValueError(
            f"These model weights cannot be saved or restored by tf.train.Checkpoint: {missing[:5]}"
            f" ({len(missing)} in all). Received: {prefix}"
        )
    if load_weights:
        _restore(model, prefix)
    run_config = read_run_config(config_path)
    contract = InputContract.from_run_config(run_config, source=config_path)
    run = {k: run_config[k] for k in RUN_RECORD_KEYS if k in run_config}
    run.update(workdir=os.path.dirname(os.path.dirname(prefix)), checkpoint=prefix)
    info = {
        "checkpoint": prefix,
        "config": config_path,
        "preset": config.to_dict(),
        "input_contract": contract,
        "grayscale": contract.grayscale,
        "run": run,
    }
    model._load_info = MappingProxyType(info)  # model.input_contract, model.load_info
    return model, info


def _restore(model, prefix: str) -> None:
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
