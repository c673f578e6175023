"""The one way a command reads a number: a finite float within a stated range.

``float("nan")`` and ``float("inf")`` are valid Python floats, so ``type=float`` lets them through, and each
option then misbehaves in its own way (a duration that never ends, a rate limit that spins). Every float
option of every stage's command uses :func:`float_in` instead, so it lives below both branches, next to the
size spellings; a test fails on any ``type=float`` left in a parser.

  parser.add_argument("--duration", type=float_in(above=0), metavar="SECONDS")
  # crackseg run: error: argument --duration: expected a finite number > 0, got 'nan'
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

__all__ = ["FloatRange", "float_in"]


@dataclass(frozen=True)
class FloatRange:
    """An argparse ``type``: parses a finite float and checks it against the bounds that are set.

    Attributes:
        at_least: smallest allowed value (inclusive).
        above: the value must be greater than this.
        at_most: largest allowed value (inclusive).
        below: the value must be less than this.
    """

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None

    @property
    def range_text(self) -> str:
        """The range in words, e.g. ``>= 0 and <= 1``; ``finite`` when unbounded."""
        parts = [
            f"{op} {bound:g}"
            for op, bound in ((">=", self.at_least), (">", self.above), ("<=", self.at_most), ("<", self.below))
            if bound is not None
        ]
        return " and ".join(parts)

    def __call__(self, text: str) -> float:
        expected = f"expected a finite number{' ' + self.range_text if self.range_text else ''}, got {text!r}"
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(expected) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(expected)
        if (
            (self.at_least is not None and value < self.at_least)
            or (self.above is not None and value <= self.above)
            or (self.at_most is not None and value > self.at_most)
            or (self.below is not None and value >= self.below)
        ):
            raise argparse.ArgumentTypeError(expected)
        return value


def float_in(
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
) -> FloatRange:
    """An argparse ``type`` for a finite float in the given range (no bound: any finite float)."""
    return FloatRange(at_least, above, at_most, below)
