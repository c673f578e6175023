"""The bundled default model that every command uses when no model is named.

``scnet-t`` trained on DeepCrack (270 training images; the validation split chose the checkpoint and
the operating threshold). Shipped as ONNX for the torch-free runtime and as a safetensors checkpoint
for training-side tools. The training data's licence is research / non-commercial: see the README's
model card before using these weights commercially.
"""

from __future__ import annotations

from pathlib import Path

from crackseg.edge.errors import CracksegError

__all__ = ["DEFAULT_MODEL_NAME", "bundled_model"]

DEFAULT_MODEL_NAME = "scnet-t-deepcrack"


def bundled_model(suffix: str = ".onnx") -> Path:
    """Path of the bundled default model in the given format (``.onnx`` or ``.safetensors``)."""
    path = Path(__file__).with_name(DEFAULT_MODEL_NAME + suffix)
    if not path.is_file():
        raise CracksegError(f"the bundled default model {path.name} is missing from this installation")
    return path
