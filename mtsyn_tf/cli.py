"""Shared plumbing of the absl scripts in scripts/."""

from __future__ import annotations

import sys
from collections.abc import Callable


def one_line_errors(main: Callable, prog: str, errors: tuple = (ValueError,)) -> Callable:
    """Wraps an absl ``main`` so bad input ends the program with one line, not a traceback.

    Library code raises ``ValueError`` naming the file/flag and what was expected; the
    script shows exactly that message, prefixed with its name, and exits with status 1.
    """

    def run(argv):
        try:
            return main(argv)
        except errors as err:
            sys.exit(f"{prog}: error: {err}")

    return run
