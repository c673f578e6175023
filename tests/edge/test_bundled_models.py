"""Bundled models are reachable by name wherever a model file is accepted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.models import BUNDLED_MODELS, DEFAULT_MODEL_NAME, bundled_model, model_path


def test_the_default_is_one_of_the_bundled_models_and_every_one_is_installed() -> None:
    assert DEFAULT_MODEL_NAME in BUNDLED_MODELS
    for name in BUNDLED_MODELS:
        assert bundled_model(".onnx", name).is_file() and bundled_model(".safetensors", name).is_file()


def test_a_bundled_name_resolves_to_its_onnx_file_and_a_path_stays_a_path(tmp_path: Path) -> None:
    assert model_path("scnet-t-deepcrack") == bundled_model(".onnx", "scnet-t-deepcrack")
    assert model_path(str(tmp_path / "mine.onnx")) == tmp_path / "mine.onnx"


def test_an_unknown_bundled_name_lists_the_bundled_ones() -> None:
    with pytest.raises(CracksegError, match=r"no bundled model 'scnet-x'.*scnet-t-deepcrack"):
        bundled_model(".onnx", "scnet-x")


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def _metadata(path: Path) -> dict[str, str]:
    if path.suffix == ".onnx":
        onnx = pytest.importorskip("onnx")
        return {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    safetensors = pytest.importorskip("safetensors")
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        return dict(handle.metadata() or {})


@pytest.mark.parametrize("name", BUNDLED_MODELS)
@pytest.mark.parametrize("suffix", [".onnx", ".safetensors"])
def test_no_bundled_artifact_carries_a_machine_path(name: str, suffix: str) -> None:
    """Shipped files name what they came from by file name and sha256, never by a path of the build machine."""
    strings: list[str] = []
    for value in _metadata(bundled_model(suffix, name)).values():
        try:
            strings += _strings(json.loads(value))
        except ValueError:
            strings.append(value)
    absolute = [text for text in strings if text.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", text)]
    assert not absolute, f"{name}{suffix} carries machine paths: {absolute}"
