"""Every float option of every command reads one type that refuses NaN and infinities (issue 28, items 12-13)."""

from __future__ import annotations

import argparse
import importlib

import pytest

from crackseg.edge.artifact.number_options import FloatRange, float_in

COMMAND_MODULES = [
    "crackseg.edge.cli.run",
    "crackseg.edge.cli.listen",
    "crackseg.edge.cli.bench",
    "crackseg.edge.cli.report",
    "crackseg.export.command",
    "crackseg.calib.command",
    "crackseg.train.commands.train",
    "crackseg.train.commands.compare",
    "crackseg.train.commands.eval",
    "crackseg.train.commands.models",
]


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    found: list[argparse.Action] = []
    for action in parser._actions:
        found.append(action)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_actions(sub))
    return found


def _parser(module: str) -> argparse.ArgumentParser:
    try:
        command = importlib.import_module(module)
    except ImportError as exc:  # the train extra (torch) is absent
        pytest.skip(f"{module} needs an extra that is not installed: {exc}")
    parser = argparse.ArgumentParser(prog="crackseg")
    command.add_args(parser)
    return parser


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_no_command_reads_a_bare_float(module: str) -> None:
    bare = [a.option_strings for a in _actions(_parser(module)) if a.type is float]
    assert not bare, f"{module}: use crackseg.edge.artifact.number_options.float_in for {bare}"


@pytest.mark.parametrize("module", COMMAND_MODULES)
@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_every_float_option_refuses_non_finite_values(module: str, text: str) -> None:
    for action in _actions(_parser(module)):
        if isinstance(action.type, FloatRange):
            with pytest.raises(argparse.ArgumentTypeError, match="expected a finite number"):
                action.type(text)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--duration", "nan"], "argument --duration: expected a finite number > 0, got 'nan'"),
        (["--log-every", "nan"], "argument --log-every: expected a finite number >= 0, got 'nan'"),
        (["--serial-rate", "nan"], "argument --serial-rate: expected a finite number > 0, got 'nan'"),
        (["--replay-ms", "nan"], "argument --replay-ms: expected a finite number >= 0, got 'nan'"),
        (["--reconnect-max", "nan"], "argument --reconnect-max: expected a finite number > 0, got 'nan'"),
        (["--overlay-fps", "nan"], "argument --overlay-fps: expected a finite number > 0, got 'nan'"),
        (["--threshold", "1.5"], "argument --threshold: expected a finite number >= 0 and <= 1, got '1.5'"),
        (["--duration", "abc"], "argument --duration: expected a finite number > 0, got 'abc'"),
    ],
)
def test_run_names_the_option_and_its_range_in_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from crackseg.edge.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_listen_timeout_refuses_nan(capsys: pytest.CaptureFixture[str]) -> None:
    from crackseg.edge.cli.main import main

    with pytest.raises(SystemExit):
        main(["listen", "--timeout", "nan"])
    assert "argument --timeout: expected a finite number >= 0, got 'nan'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("bounds", "good", "bad"),
    [
        ({}, ["0", "-3.5", "1e300"], ["nan", "inf", "x", ""]),
        ({"above": 0}, ["1e-9", "5"], ["0", "-1"]),
        ({"at_least": 0}, ["0", "2"], ["-0.1"]),
        ({"at_least": 0, "at_most": 1}, ["0", "1", "0.5"], ["1.0001", "-1"]),
        ({"above": 0, "below": 1}, ["0.5"], ["0", "1"]),
    ],
)
def test_float_in_bounds(bounds: dict[str, float], good: list[str], bad: list[str]) -> None:
    kind = float_in(**bounds)
    for text in good:
        assert kind(text) == float(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            kind(text)
