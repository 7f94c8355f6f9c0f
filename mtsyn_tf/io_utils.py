"""Atomic writes: every file and directory the package produces appears whole or not at all.

A writer works on a hidden temporary sibling (same directory, hence same filesystem) and
``os.replace`` moves it onto the final name only after it succeeded, so a reader, TF
Serving or a crashed-and-restarted job never sees half a file. On failure the temporary
is removed and whatever was at the final name before is left untouched.

Temporary names start with a dot (TF Serving loads numeric version directories only, and
``ls`` hides them) and are never created with ``mkstemp``/``mkdtemp``, whose 0600/0700
modes would otherwise end up on the published file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid

import cv2
import numpy as np

from mtsyn_tf.visualize import to_uint8_rgb


def _temporary_sibling(path: str, tag: str = "tmp") -> str:
    """A unique hidden name next to ``path`` that keeps its extension (for format sniffing)."""
    directory, name = os.path.split(path)
    suffix = os.path.splitext(name)[1]
    return os.path.join(directory, f".{name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _prepare(path: str, overwrite: bool, kind: str) -> tuple[str, list[str]]:
    """Absolute ``path`` with its parent created; refuses an existing one unless overwriting.

    Returns the path and the directories created for it (deepest last), which
    ``_remove_created`` deletes again (if still empty) when the write fails.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        raise ValueError(
            f"{kind} already exists; pass overwrite=True (--overwrite) to replace it. "
            f"Received: {path}"
        )
    if os.path.exists(path) and (kind == "File") == os.path.isdir(path):
        expected = "a file" if kind == "File" else "a directory"
        raise ValueError(f"Expected {expected} at the output path. Received: {path}")
    created, parent = [], os.path.dirname(path)
    while not os.path.exists(parent):
        created.insert(0, parent)
        parent = os.path.dirname(parent)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError:
        _remove_created(created)
        raise
    return path, created


def _remove_created(created: list[str]) -> None:
    """Removes directories made by ``_prepare`` (deepest first) that are still empty."""
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except OSError:
            return


@contextlib.contextmanager
def atomic_file(path: str, overwrite: bool = True):
    """Yields a temporary path in ``path``'s directory; renamed onto ``path`` on success.

    The caller creates the file at the yielded path (any writer: ``open``, ``np.save``,
    ``cv2.imwrite``; the extension is kept). Parent directories are created (and removed
    again if the write fails).

    Raises:
        ValueError: ``path`` exists and ``overwrite`` is False (checked before writing), or
            is a directory.
    """
    path, created = _prepare(path, overwrite, "File")
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        if not os.path.isfile(tmp):
            raise ValueError(f"The writer created no file at the temporary path for {path}.")
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        _remove_created(created)
        raise


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False):
    """Yields an empty temporary directory that replaces ``path`` on success.

    An existing ``path`` (with ``overwrite=True``) is moved aside just before the new
    directory is renamed in and deleted after, so a reader finds the old complete
    directory, the new one, or (for an instant between two renames) none; never a mix.
    Parent directories created for it are removed again if the write fails.

    Raises:
        ValueError: ``path`` exists and ``overwrite`` is False (checked before writing), or
            is a file.
    """
    path, created = _prepare(path, overwrite, "Directory")
    tmp = _temporary_sibling(path)
    try:
        os.mkdir(tmp)
    except OSError:
        _remove_created(created)
        raise
    try:
        yield tmp
        if os.path.exists(path):
            old = _temporary_sibling(path, tag="old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        _remove_created(created)
        raise


def check_output_dir(path: str, flag: str) -> None:
    """Fails fast unless ``path`` is, or can be created as, a directory this process can
    write into; nothing is created. ``flag`` names the input in the message.

    Raises:
        ValueError: ``path`` is a file, lies below a file, or its nearest existing
            ancestor is not writable (probed by creating and removing a hidden file, since
            ``os.access`` says yes to root on a read-only mount).
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} exists and is not a directory. Received: {path}")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(
            f"{flag} cannot be created: {parent} is a file, not a directory. Received: {path}"
        )
    probe = os.path.join(parent, f".write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.remove(probe)
    except OSError as err:
        raise ValueError(
            f"{flag} is not writable ({err.strerror}: {parent}); expected a directory this "
            f"user can write to. Received: {path}"
        ) from None


def write_text_atomic(path: str, text: str) -> str:
    """Writes UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return path


def write_json_atomic(path: str, payload) -> str:
    """Writes ``payload`` as indented, key-sorted JSON atomically; returns ``path``.

    Values JSON does not know (paths, dtypes, dataclass reprs) are written as ``str``, so a
    run record never fails on an exotic config value. The text is built before the file
    is opened, so an unserialisable payload leaves nothing behind.
    """
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)
    return write_text_atomic(path, text)


def write_png(path: str, image) -> str:
    """Writes an RGB image (uint8, or float in [0, 1]) as PNG atomically; returns ``path``.

    Accepts [H, W], [H, W, 1] or [H, W, 3] arrays or tensors (see
    ``mtsyn_tf.visualize.to_uint8_rgb``). The PNG is encoded in memory first, so an
    encoding error never touches the file system.
    """
    if not os.fspath(path).lower().endswith(".png"):
        raise ValueError(f"PNG path must end in .png. Received: path={path!r}")
    rgb = to_uint8_rgb(image)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError(f"PNG encoding failed for {path!r}. Received: image of shape {rgb.shape}")
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(encoded.tobytes())
    return path
