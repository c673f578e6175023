"""The one base class for expected failures (bad input, missing files, unavailable devices)."""

from __future__ import annotations

__all__ = ["CracksegError"]


class CracksegError(Exception):
    """A failure the user can act on: the CLI prints the message on one line and exits 1, no traceback.

    Anything else that escapes a command is a bug and keeps its traceback.
    """
