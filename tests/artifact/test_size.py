"""One size type, in array order, spelled WIDTHxHEIGHT on the command line."""

from __future__ import annotations

import argparse

import pytest

from crackseg.edge.artifact.size import Size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("640x480", Size(height=480, width=640)), ("512", Size(512, 512)), ("1920X1080", Size(1080, 1920))],
)
def test_sizes_parse_as_width_by_height(text: str, expected: Size) -> None:
    size = parse_size(text)
    assert size == expected
    assert tuple(size) == (expected.height, expected.width)  # array order: numpy shapes and (h, w) APIs take it


def test_a_size_prints_as_it_is_typed() -> None:
    assert str(parse_size("640x480")) == "640x480"


@pytest.mark.parametrize("text", ["", "x", "640x", "640x480x3", "0x480", "-1x5", "axb"])
def test_malformed_sizes_are_refused_with_the_expected_spelling(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected WIDTHxHEIGHT such as 512x512"):
        parse_size(text)
