"""The one input-size type and its one command-line spelling, ``WIDTHxHEIGHT``."""

from __future__ import annotations

import argparse
from typing import NamedTuple

__all__ = ["DEFAULT_INPUT_SIZE", "Size", "parse_size"]


class Size(NamedTuple):
    """An image or network input size. A tuple in array order, ``(height, width)``, printed as ``WxH``."""

    height: int
    width: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


DEFAULT_INPUT_SIZE = Size(512, 512)
"""The input size of a variant whose config names none: the papers' and the bundled model's training crop."""


def parse_size(text: str) -> Size:
    """``WIDTHxHEIGHT`` (or one number for a square) as a :class:`Size`; an argparse type.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not two positive integers joined by ``x``.
    """
    try:
        parts = [int(part) for part in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 512x512, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 512x512, got {text!r}")
    return Size(height=parts[1], width=parts[0])
