"""What a run directory records so a result can be traced and reproduced, and its cleanup.

``record_run`` writes ``<workdir>/config.json`` (settings, resolved preset, input contract,
versions, data manifests); ``delete_run`` removes a run for ``restart=True``;
``remove_partial_run`` removes what a failed run wrote before its first checkpoint.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

from mtsyn_tf.io_utils import write_json_atomic as write_json_atomic  # re-exported
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.trainer import precision as mp
from mtsyn_tf.trainer.checkpointing import RunCheckpointer

_PACKAGES = (
    "tensorflow",
    "keras",
    "tensorflow-datasets",
    "numpy",
    "opencv-python-headless",
    "absl-py",
    "mitsuba",
)


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: str | None = None) -> str | None:
    """The commit of the source tree (with '+dirty' if modified), or None outside git."""
    path = path or os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def data_manifest(directory: str) -> dict | None:
    """The dataset's manifest.json (shard list, counts, hashes), if it has one."""
    path = os.path.join(directory, "manifest.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def data_manifests(cfg) -> dict:
    return {
        "synthetic": data_manifest(cfg.synthetic_dir),
        # A photo folder has no manifest: its path stands for it.
        "real": (data_manifest(cfg.real_source) if os.path.isdir(cfg.real_source) else None)
        or cfg.real_source,
    }


def record_run(cfg, preset: dict, strategy) -> None:
    write_json_atomic(
        os.path.join(cfg.workdir, "config.json"),
        {
            **cfg.to_dict(),
            "resolved_preset": preset,
            # What the model must be fed at test time; every loader reads this back.
            "input_contract": InputContract.for_grayscale(cfg.trainer.grayscale).record(),
            "num_replicas": strategy.num_replicas_in_sync,
            "dtype_policy": mp.resolve_policy(cfg.precision),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "data_manifests": data_manifests(cfg),
        },
    )


# What a run writes into its workdir (deleted by restart=True; nothing else is touched).
RUN_ARTIFACTS = (
    "checkpoints",
    "config.json",
    "history.csv",
    "eval.json",
    "tensorboard",
    "profile",
    "saved_model_base",
)


def delete_run(workdir: str) -> None:
    for name in RUN_ARTIFACTS:
        path = os.path.join(workdir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def remove_partial_run(workdir: str, before: list | None) -> None:
    """After a failure with no checkpoint to resume from, removes what this call wrote.

    A run that checkpointed stays (re-running resumes it); otherwise nothing half-written
    is left: the workdir if this call created it, else the entries it added.
    """
    if RunCheckpointer.has_checkpoint(os.path.join(workdir, "checkpoints")):
        return
    if before is None:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    for name in set(os.listdir(workdir)) - set(before) if os.path.isdir(workdir) else ():
        path = os.path.join(workdir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
