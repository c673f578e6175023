"""The one suffix-to-kind table: which kind of model artifact a file is, by its suffix (never by its name)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["KIND_NAMES", "MODEL_KINDS", "MODEL_SUFFIXES", "ArtifactKind", "model_kind"]

ArtifactKind = Literal["checkpoint", "onnx", "engine"]

MODEL_KINDS: dict[str, ArtifactKind] = {
    ".safetensors": "checkpoint",
    ".onnx": "onnx",
    ".engine": "engine",
    ".plan": "engine",
}
"""Model file suffix (lower case) -> artifact kind: checkpoint, ONNX file, TensorRT engine (two spellings)."""

MODEL_SUFFIXES = tuple(MODEL_KINDS)
"""The model file suffixes crackseg reads."""

KIND_NAMES: dict[ArtifactKind, str] = {"checkpoint": "checkpoint", "onnx": "ONNX file", "engine": "engine file"}
"""How messages name each kind."""


def model_kind(path: str | Path) -> ArtifactKind | None:
    """The artifact kind of ``path`` by its suffix, or ``None`` for a suffix crackseg does not read."""
    return MODEL_KINDS.get(Path(path).suffix.lower())
