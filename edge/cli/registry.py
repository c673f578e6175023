"""The table of ``crackseg`` subcommands, and how each is loaded.

Each command lives in the stage that owns it and is imported only when it is the one being run, so
``crackseg run`` on a machine with torch installed does not pay for importing torch. A command whose
dependencies are missing (its extra is not installed, e.g. no torch on a Jetson image) is still
listed; its help and its use say which extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

__all__ = ["COMMANDS", "Command", "load_command"]


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, the module implementing it, and the extra that provides its dependencies."""

    name: str
    summary: str
    module: str
    extra: str
    requires: tuple[str, ...]
    """Top-level modules the command imports; listed as unavailable in ``--help`` when one is missing."""

    @property
    def available(self) -> bool:
        return all(_importable(name) for name in self.requires)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ValueError, AttributeError):  # blocked with sys.modules[name] = None
        return False


COMMANDS: tuple[Command, ...] = (
    Command(
        "run",
        "segment a camera, video or synthetic stream and publish masks",
        "crackseg.edge.cli.run",
        "edge",
        ("cv2", "zmq"),
    ),
    Command(
        "listen",
        "subscribe to a mask stream and print per-frame statistics",
        "crackseg.edge.cli.listen",
        "edge",
        ("zmq",),
    ),
    Command("bench", "measure raw, end-to-end and naive-loop speed", "crackseg.edge.cli.bench", "edge", ("zmq",)),
    Command(
        "report",
        "turn a recording into an HTML inspection report and GeoJSON",
        "crackseg.edge.cli.report",
        "edge",
        ("cv2",),
    ),
    Command(
        "models",
        "list the model variants with parameters and GFLOPs",
        "crackseg.train.commands.models",
        "train",
        ("torch",),
    ),
    Command("train", "train a variant on a crack dataset", "crackseg.train.commands.train", "train", ("torch",)),
    Command(
        "compare",
        "train several variants under one budget and tabulate their scores",
        "crackseg.train.commands.compare",
        "train",
        ("torch",),
    ),
    Command("eval", "score a model with the reference protocol", "crackseg.train.commands.eval", "edge", ("cv2",)),
    Command("export", "checkpoint to ONNX, ONNX to TensorRT engine", "crackseg.export.command", "export", ("onnx",)),
    Command(
        "calib",
        "INT8 Q/DQ calibration with an accuracy gate",
        "crackseg.calib.command",
        "export",
        ("onnx", "onnxruntime"),
    ),
)


@dataclass(frozen=True)
class LoadedCommand:
    """A command ready for argparse: help text, argument setup and entry point (or the import error)."""

    command: Command
    module: ModuleType | None
    import_error: str = ""

    @property
    def description(self) -> str:
        if self.module is None:
            return (
                f"This command needs the '{self.command.extra}' extra, which is not installed "
                f"({self.import_error}). Install it with: pip install 'crackseg[{self.command.extra}]'"
            )
        return (self.module.__doc__ or "").strip()

    def add_args(self, parser: argparse.ArgumentParser) -> None:
        if self.module is not None:
            self.module.add_args(parser)

    def run(self, args: argparse.Namespace) -> int:
        if self.module is None:
            raise SystemExit(f"crackseg {self.command.name}: error: {self.description}")
        result: int = self.module.run(args)
        return result


def load_command(command: Command) -> LoadedCommand:
    try:
        return LoadedCommand(command, importlib.import_module(command.module))
    except ImportError as exc:
        if (exc.name or "").startswith("crackseg"):
            raise  # a broken crackseg module is a bug, not a missing extra
        return LoadedCommand(command, None, str(exc))
