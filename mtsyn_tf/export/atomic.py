"""Write-then-rename for export directories, so no reader ever sees half an artifact."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(target: str, overwrite: bool = False):
    """Yields a temporary sibling directory that replaces ``target`` on success.

    The temporary name starts with a dot, so TF Serving (which loads numeric version
    directories only) never picks up a partial export. On error the temporary directory is
    removed and ``target`` is left as it was.
    """
    target = os.path.abspath(target)
    if os.path.exists(target) and not overwrite:
        raise ValueError(
            f"Export directory already exists; pass overwrite=True (--overwrite) to replace it. "
            f"Received: {target}"
        )
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    try:
        yield tmp
        if os.path.exists(target):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=parent)
            os.replace(target, os.path.join(old, "x"))
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str, overwrite: bool = True):
    """Yields a temporary path in the target's directory that is renamed onto ``target``."""
    target = os.path.abspath(target)
    if os.path.exists(target) and not overwrite:
        raise ValueError(f"File already exists; pass overwrite=True. Received: {target}")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.tmp-",
        suffix=os.path.splitext(target)[1],
        dir=os.path.dirname(target),
    )
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
