"""One spelling of the input size on every command, --size WxH; the old spellings still work, with a warning."""

from __future__ import annotations

import argparse
import importlib

import pytest

from crackseg.edge.artifact.size import Size

CALIB = ["--model", "m.onnx", "--data", "d", "--calib-split", "train", "--val-split", "val"]
TRAIN = ["--model", "scnet-t", "--data", "d", "--train-split", "train", "--val-split", "val"]

CASES = [
    # command module, other required arguments, new spelling, old spelling, destination, parsed value
    ("crackseg.edge.cli.run", [], ["--size", "640x480"], ["--input-size", "640x480"], "input_size", Size(480, 640)),
    ("crackseg.calib.command", CALIB, ["--size", "256x256"], ["--crop", "256"], "size", Size(256, 256)),
    ("crackseg.export.command", ["onnx", "--model", "m.safetensors"], ["--size", "96x64"], ["--size", "64", "96"],
     "size", Size(64, 96)),
    ("crackseg.train.commands.train", TRAIN, ["--size", "64x64"], ["--crop-size", "64"], "crop_size", 64),
]  # fmt: skip


def _parser(module: str) -> argparse.ArgumentParser:
    if module == "crackseg.train.commands.train":
        pytest.importorskip("torch")
    parser = argparse.ArgumentParser(prog="crackseg")
    importlib.import_module(module).add_args(parser)
    return parser


@pytest.mark.parametrize(("module", "required", "new", "old", "dest", "value"), CASES)
def test_every_command_takes_size_as_width_by_height(
    module: str,
    required: list[str],
    new: list[str],
    old: list[str],
    dest: str,
    value: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = _parser(module)
    assert getattr(parser.parse_args([*required, *new]), dest) == value
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(("module", "required", "new", "old", "dest", "value"), CASES)
def test_an_old_spelling_gives_the_same_value_and_names_the_new_one(
    module: str,
    required: list[str],
    new: list[str],
    old: list[str],
    dest: str,
    value: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = _parser(module)
    assert getattr(parser.parse_args([*required, *old]), dest) == value
    spelling = "--size H W" if old[0] == "--size" else old[0]
    err = capsys.readouterr().err
    assert err.startswith("crackseg")  # the (sub)command's prog, as argparse's own messages
    assert err.endswith(f": warning: {spelling} is deprecated and goes in the next release: write --size {value}\n")


def test_old_spellings_are_hidden_from_help() -> None:
    help_text = _parser("crackseg.edge.cli.run").format_help()
    assert "--size WxH" in help_text and "--input-size" not in help_text


@pytest.mark.parametrize("value", [["64x"], ["64", "64", "3"], ["0", "64"]])
def test_a_malformed_export_size_is_a_usage_error(value: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser("crackseg.export.command").parse_args(["onnx", "--model", "m.safetensors", "--size", *value])
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err


def test_training_crops_must_be_square(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser("crackseg.train.commands.train").parse_args([*TRAIN, "--size", "64x32"])
    assert "expected a square size such as 256x256" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["crackseg.edge.cli.run", "crackseg.edge.cli.bench"])
def test_run_and_bench_measure_exact_statistics_unless_fast_is_chosen(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = _parser(module)
    assert parser.parse_args([]).stats == "exact"
    assert parser.parse_args(["--stats", "fast"]).stats == "fast"
    with pytest.raises(SystemExit):
        parser.parse_args(["--stats", "approx"])
    err = capsys.readouterr().err
    assert "argument --stats: invalid choice: 'approx' (choose from" in err and "exact" in err and "fast" in err
