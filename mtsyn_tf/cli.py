"""Shared plumbing of the absl scripts in scripts/: bad input ends a script with one line.

Every script ends with ``cli.run(main, "name.py")``. A bad flag (absl's parser), a
``ValueError`` from the library (which names the file/flag and what was expected), an
``OSError`` (unwritable output, disk full, a path below a file) or one of the script's own
error types then ends the program with exit status 1 and exactly one line on stderr,
``name.py: error: <message>``, never a traceback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from absl import app, flags


def tf_error_reason(err: BaseException) -> str:
    """The informative first line of a TensorFlow error, without its graph-function prefix
    (``{{function_node __wrapped__SaveV2...}}``) and op suffix (``[Op:IteratorGetNext]``)."""
    message = getattr(err, "message", None) or str(err)
    lines = message.strip().splitlines()
    line = re.sub(r"\{\{[^}]*\}\}\s*", "", lines[0] if lines else "")
    line = re.sub(r"\s*\[Op:[^\]]*\].*$", "", line).strip()
    return line or type(err).__name__


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def describe_error(err: BaseException) -> str:
    """One line for ``err``: an OSError names its file and what was expected of it."""
    if isinstance(err, OSError) and not _is_tf_error(err):
        files = [f for f in (err.filename, err.filename2) if f is not None]
        where = " -> ".join(str(f) for f in files) or "an output path"
        reason = err.strerror or _one_line(err) or type(err).__name__
        return (
            f"Could not write or read {where}: {reason}. Expected a writable path on a "
            "file system with free space (and existing parent directories, not files)."
        )
    if _is_tf_error(err):
        # TF's messages carry graph/op context on later lines; the first says what failed.
        return f"{type(err).__name__}: {tf_error_reason(err)}"
    return _one_line(err) or type(err).__name__


def _is_tf_error(err: BaseException) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(err, tf.errors.OpError)


def _tf_errors() -> tuple:
    tf = sys.modules.get("tensorflow")
    return (tf.errors.OpError,) if tf is not None else ()


def one_line_errors(main: Callable, prog: str, errors: tuple = ()) -> Callable:
    """Wraps an absl ``main`` so bad input ends the program with one line, not a traceback.

    ``ValueError``, ``OSError`` and TensorFlow's ``OpError`` are always caught, plus the
    script's own ``errors``; the message (one line, see ``describe_error``) is prefixed
    with ``prog`` and the program exits with status 1.
    """

    def run(argv):
        try:
            return main(argv)
        except (ValueError, OSError, *_tf_errors(), *errors) as err:
            sys.exit(f"{prog}: error: {describe_error(err)}")

    return run


def flags_parser(prog: str) -> Callable:
    """An ``app.run`` flags parser that reports a bad or missing flag in one line."""

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            sys.exit(f"{prog}: error: {_one_line(err)} (see --helpfull for every flag)")

    return parse


def run(main: Callable, prog: str, errors: tuple = ()) -> None:
    """``app.run(main)`` with one-line errors for bad flags and bad input."""
    app.run(one_line_errors(main, prog, errors), flags_parser=flags_parser(prog))
