"""What a run directory records so a result can be traced and reproduced."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata

from mtsyn_tf.io_utils import write_json_atomic as write_json_atomic  # re-exported

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
