"""Options the runtime commands share (``run`` and ``bench``).

Sizes are spelled in :mod:`crackseg.edge.artifact.size_options`, which every stage's command uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crackseg.edge.runtime.stats import STATS_MODES

__all__ = ["add_stats_mode", "database_path", "nonblank"]


def nonblank(text: str) -> str:
    """An argparse ``type`` for a port, URL or URI: an empty value is an error, never "option off"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a value, got an empty string (leave the option out to turn it off)")
    return text


def database_path(text: str) -> Path:
    """An argparse ``type`` for a database file to create or append to: not empty, not a folder."""
    path = Path(nonblank(text)).expanduser()
    if text.endswith(("/", "\\")) or path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a database file, got the folder {text!r}")
    return path


def add_stats_mode(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--stats exact|fast`` (into ``args.stats``): how the crack statistics are measured."""
    parser.add_argument(
        "--stats", choices=STATS_MODES, default=STATS_MODES[0],
        help="crack statistics: exact, or fast: skeleton length and width estimated at a fraction of the cost "
        "(errors measured in edge/runtime/stats.py) (default: %(default)s)",
    )  # fmt: skip
