"""Entry point of the ``crackseg`` command: one subcommand per stage of the product."""

from __future__ import annotations

import argparse
import logging
import sys

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.cli.registry import COMMANDS, load_command

__all__ = ["build_parser", "main"]

EPILOG = """\
typical flow:
  crackseg run --frames 100 --listen      segment synthetic cracks with the bundled model
  crackseg models                         list the model variants
  crackseg train --model scnet-t --data DeepCrack --train-split deepcrack_train --val-split deepcrack_val
  crackseg eval --model runs/scnet-t-seed0/best.safetensors --data DeepCrack --split test
  crackseg export onnx --model runs/scnet-t-seed0/best.safetensors --out scnet-t.onnx
run 'crackseg COMMAND --help' for the options of each command.
"""


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; only the ``chosen`` command's module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="crackseg",
        description="Real-time crack segmentation: train, evaluate, export and run SCNet models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        unavailable = "" if command.available else f" (unavailable: pip install 'crackseg[{command.extra}]')"
        sub = subparsers.add_parser(
            command.name, help=command.summary + unavailable, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        if command.name == chosen:
            loaded = load_command(command)
            sub.description = loaded.description
            loaded.add_args(sub)
            sub.set_defaults(handler=loaded.run, missing_extra=loaded.module is None)
    return parser


def _chosen_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Runs one subcommand; expected errors print one line and return 1, bugs keep their traceback."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_chosen_command(argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "missing_extra", False):  # a missing extra is the error to report
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.handler(args)
    except (CracksegError, FileNotFoundError) as exc:
        print(f"crackseg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"crackseg {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
