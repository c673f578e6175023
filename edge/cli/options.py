"""Options the runtime commands share (``run`` and ``bench``).

Sizes are spelled in :mod:`crackseg.edge.artifact.size_options`, which every stage's command uses.
"""

from __future__ import annotations

import argparse

from crackseg.edge.runtime.stats import STATS_MODES

__all__ = ["add_stats_mode"]


def add_stats_mode(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--stats exact|fast`` (into ``args.stats``): how the crack statistics are measured."""
    parser.add_argument(
        "--stats", choices=STATS_MODES, default=STATS_MODES[0],
        help="crack statistics: exact, or fast: skeleton length and width estimated at a fraction of the cost "
        "(errors measured in edge/runtime/stats.py) (default: %(default)s)",
    )  # fmt: skip
