"""The table of ``crackseg`` subcommands, and how each is loaded.

Each command lives in the stage that owns it and is imported only when the CLI starts. A command
whose module cannot be imported (its extra is not installed, e.g. no torch on a Jetson image) is
still listed; its help and its use say which extra to install.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["COMMANDS", "Command", "load_command"]


@dataclass(frozen=True)
class Command:
    """A subcommand: the module implementing it and the extra that provides its dependencies."""

    name: str
    module: str
    extra: str


COMMANDS: tuple[Command, ...] = (
    Command("models", "crackseg.train.commands.models", "train"),
    Command("train", "crackseg.train.commands.train", "train"),
    Command("eval", "crackseg.train.commands.eval", "edge"),
    Command("export", "crackseg.export.command", "export"),
    Command("calib", "crackseg.calib.command", "export"),
    Command("run", "crackseg.edge.cli.run", "edge"),
    Command("listen", "crackseg.edge.cli.listen", "edge"),
)


@dataclass(frozen=True)
class LoadedCommand:
    """A command ready for argparse: help text, argument setup and entry point (or the import error)."""

    command: Command
    module: ModuleType | None
    import_error: str = ""

    @property
    def help(self) -> str:
        if self.module is None:
            return f"(unavailable: pip install 'crackseg[{self.command.extra}]')"
        return (self.module.__doc__ or "").strip().splitlines()[0]

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
