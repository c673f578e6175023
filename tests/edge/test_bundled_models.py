"""Bundled models are reachable by name wherever a model file is accepted."""

from __future__ import annotations

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
