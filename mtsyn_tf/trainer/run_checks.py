"""Checks before a run trains: settings, data, output directory, and an existing run's config.

``check_run_inputs`` fails fast, before any model is built, on anything that would fail
later (preset, tap, loss weights, data paths, an existing run recorded with other settings),
with a one-line error naming the flag. ``name_corrupt_shard`` turns the ``DataLossError``
of a corrupt record met mid-run into an error naming the shard.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

from mtsyn_tf.data import shards
from mtsyn_tf.io_utils import check_output_dir
from mtsyn_tf.models import get_preset
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer import profiling
from mtsyn_tf.trainer.config import DISC_OPTIMIZERS, NONFINITE_POLICIES, OPTIMIZERS, RunConfig
from mtsyn_tf.trainer.run_record import data_manifests


def check_run_inputs(cfg: RunConfig) -> dict:
    """Fails fast, before any model is built, on anything that would fail later."""
    preset = get_preset(cfg.preset, **cfg.preset_overrides)
    cfg.trainer.validate(preset["arch"], preset["tasks"])
    for name in ("batch_size", "epochs", "steps_per_epoch", "grad_accum_steps"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be > 0. Received: {name}={getattr(cfg, name)}")
    mp.resolve_policy(cfg.precision)
    profiling.parse_profile_steps(cfg.profile_steps)
    if cfg.nonfinite_policy not in NONFINITE_POLICIES:
        raise ValueError(
            f"nonfinite_policy must be one of {NONFINITE_POLICIES}. "
            f"Received: nonfinite_policy={cfg.nonfinite_policy!r}"
        )
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}. Received: {cfg.optimizer!r}")
    if cfg.disc_optimizer not in DISC_OPTIMIZERS:
        raise ValueError(
            f"disc_optimizer must be one of {DISC_OPTIMIZERS}. Received: {cfg.disc_optimizer!r}"
        )
    if not 0 <= cfg.disc_momentum < 1 or not cfg.disc_weight_decay >= 0:
        raise ValueError(
            "disc_momentum must be in [0, 1) and disc_weight_decay >= 0. Received: "
            f"disc_momentum={cfg.disc_momentum}, disc_weight_decay={cfg.disc_weight_decay}"
        )
    for name in ("min_scale", "real_min_scale"):
        value = getattr(cfg, name)
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1]. Received: {name}={value}")
    if not cfg.data_cache_mb >= 0:  # also refuses NaN
        raise ValueError(
            f"data_cache_mb must be >= 0 (0: no cache). Received: data_cache_mb={cfg.data_cache_mb}"
        )
    _check_training_data(cfg)
    check_output_dir(cfg.workdir, "--workdir")
    if not cfg.restart:
        check_resume_config(cfg, preset)
    return preset


# Shards up to this size are hashed before training (about a second per GiB): a wrong or
# stale sha256 is caught before the first step. Larger sets get the free size check only;
# a corrupt record then stops training with the shard named (see name_corrupt_shard).
VERIFY_SHA256_MAX_BYTES = 1 << 30


def _check_training_data(cfg: RunConfig) -> None:
    try:
        manifest = shards.read_manifest(cfg.synthetic_dir)
        shards.list_shards(cfg.synthetic_dir, "train")
    except ValueError as err:
        raise ValueError(
            f"--synthetic_dir has no training shards: {err} Render a set with "
            "scripts/render.py or convert one with scripts/make_tfrecords.py."
        ) from None
    if manifest.get("kind") != "synthetic":
        raise ValueError(
            f"--synthetic_dir holds {manifest.get('kind')!r} shards; expected 'synthetic' "
            f"(rendered or converted with labels). Received: {cfg.synthetic_dir!r}"
        )
    _verify(cfg.synthetic_dir, "train")
    real = cfg.real_source
    if os.path.isfile(os.path.join(real, shards.MANIFEST_NAME)):
        if shards.read_manifest(real).get("kind") != "real":
            raise ValueError(
                f"--real_source holds {shards.read_manifest(real).get('kind')!r} shards; "
                f"expected 'real' (photos). Received: {real!r}"
            )
        _verify(real, "train")
    elif real not in ("embedded", "places365") and not os.path.isdir(real):
        raise ValueError(
            "--real_source must be 'embedded', 'places365', a photo folder or a directory of "
            f"real shards. Received: {real!r}"
        )


def _verify(data_dir: str, split: str) -> None:
    large = shards.total_bytes(data_dir, split) > VERIFY_SHA256_MAX_BYTES
    if large:
        logging.info(
            "%s is large: checking shard sizes only (not sha256) before training.", data_dir
        )
    shards.verify_shards(data_dir, split, level="size" if large else "sha256")


# Settings that may change between a run and its resumption: they do not change what is
# trained (paths are compared through the data manifests instead).
RESUMABLE_FIELDS = frozenset(
    {
        "workdir",
        "verbose",
        "image_summaries",
        "eval_batches",
        "eval_split",
        "profile_steps",
        "places365_data_dir",
        "synthetic_dir",
        "real_source",
        "restart",
        "data_cache_mb",  # the batches are the same with or without the cache
    }
)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and key != "preset_overrides":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_resume_config(cfg: RunConfig, preset: dict) -> None:
    """Refuses to resume a run whose recorded settings differ from the requested ones.

    Resuming skips ``epoch × steps_per_epoch`` batches of a stream seeded by ``seed`` and
    continues a learning-rate schedule sized by ``epochs × steps_per_epoch``: with another
    batch size, seed, step count, data or loss setting the result would be neither run.
    """
    existing = os.path.join(cfg.workdir, "config.json")
    if not os.path.exists(existing):
        return
    try:
        with open(existing, encoding="utf-8") as f:
            previous = json.load(f)
        if not isinstance(previous, dict):
            raise ValueError(f"a JSON object, not {type(previous).__name__}")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f"Cannot resume: {existing} is unreadable ({err}). Pass --restart to delete the "
            "run and start over, or use another --workdir."
        ) from None
    prev_preset = previous.get("resolved_preset")
    if prev_preset is not None and prev_preset != json.loads(json.dumps(preset)):
        raise ValueError(
            f"{cfg.workdir} holds a run of a different model (preset "
            f"{previous.get('preset')!r} with different settings) than requested "
            f"({cfg.preset!r}). Use another --workdir, the same preset to resume, or "
            "--restart to start over."
        )
    requested = _flatten(json.loads(json.dumps(cfg.to_dict(), default=str)))
    recorded = _flatten({k: v for k, v in previous.items() if k in cfg.to_dict()})
    differing = [
        f"{key} ({recorded[key]!r} -> {requested[key]!r})"
        for key in sorted(requested)
        if key.split(".")[0] not in RESUMABLE_FIELDS
        and key in recorded
        and recorded[key] != requested[key]
    ]
    manifests = previous.get("data_manifests") or {}
    current = data_manifests(cfg)
    for name, flag in (("synthetic", "synthetic_dir"), ("real", "real_source")):
        if name in manifests and manifests[name] != current[name]:
            differing.append(f"{flag} (other data than recorded)")
    if differing:
        raise ValueError(
            f"Cannot resume {cfg.workdir}: its config.json records other settings: "
            f"{', '.join(differing)}. Pass the recorded values to resume, --restart to delete "
            "the run and start over, or use another --workdir."
        )


def name_corrupt_shard(cfg: RunConfig, err: tf.errors.DataLossError) -> None:
    """A ``DataLossError`` names no file: re-reads the shards to find and name the bad one."""
    dirs = [cfg.synthetic_dir]
    if os.path.isfile(os.path.join(cfg.real_source, shards.MANIFEST_NAME)):
        dirs.append(cfg.real_source)
    for data_dir in dirs:
        shards.find_corrupt_shard(data_dir)  # raises ValueError naming the shard
    first = (err.message or "").strip().splitlines()[:1]
    raise ValueError(
        f"Corrupt training data ({first[0] if first else 'DataLossError'}), but every shard "
        f"of {dirs} reads back cleanly now. Received: {dirs}"
    ) from err
