"""The command-line spelling of a :class:`Size`: ``--size WxH``, and the old spellings it replaces.

Every stage's command takes sizes through these, so they live with the size contract, below both branches.

The old spellings (``--input-size``, ``--crop``, ``--crop-size``, ``--size H W``) stay for one release as
hidden aliases: they store the same value where ``--size`` stores it and print a warning that names the
new spelling, so a script that used them keeps working.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from crackseg.edge.artifact.size import Size, parse_size

__all__ = ["SizeOrOldHeightWidth", "add_old_size_spelling", "square_side"]


def square_side(text: str) -> int:
    """A square ``NxN`` (or ``N``) size as its side in pixels; training crops are square."""
    size = parse_size(text)
    if size.height != size.width:
        raise argparse.ArgumentTypeError(f"expected a square size such as 256x256, got {text!r}")
    return size.width


def _warn(parser: argparse.ArgumentParser, old: str, new: object) -> None:
    print(
        f"{parser.prog}: warning: {old} is deprecated and goes in the next release: write --size {new}", file=sys.stderr
    )


class _OldSpelling(argparse.Action):
    """Stores the (already converted) value like ``--size`` does, and warns."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        _warn(parser, str(option_string), values)
        setattr(namespace, self.dest, values)


def add_old_size_spelling(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flags: Sequence[str],
    dest: str,
    kind: Callable[[str], Any] = parse_size,
) -> None:
    """Adds ``flags`` as hidden aliases of ``--size``: parsed by ``kind``, stored into ``dest``, with a warning."""
    parser.add_argument(*flags, dest=dest, type=kind, action=_OldSpelling, help=argparse.SUPPRESS)


class SizeOrOldHeightWidth(argparse.Action):
    """``--size WxH`` that still takes the old ``--size H W`` (two numbers, height first), with a warning."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if len(values) == 1:
            try:
                size = parse_size(values[0])
            except argparse.ArgumentTypeError as exc:
                parser.error(f"argument {option_string}: {exc}")
        elif len(values) == 2 and all(value.isdigit() and int(value) > 0 for value in values):
            size = Size(height=int(values[0]), width=int(values[1]))
            _warn(parser, f"{option_string} H W", size)
        else:
            parser.error(f"argument {option_string}: expected WIDTHxHEIGHT such as 512x512, got {' '.join(values)!r}")
        setattr(namespace, self.dest, size)
