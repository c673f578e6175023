"""The models bundled with crackseg, reachable by name; one of them is every command's default.

- ``scnet-t-deepcrack`` (the default): ``scnet-t`` trained on DeepCrack alone (270 training images);
  the model of the paper comparison.
- ``scnet-t-general``: the same network fine-tuned on the training splits of six crack datasets
  (roads and concrete from drones and close up, masonry walls); for imagery that is not DeepCrack's.
  It is not the default because it scores 3.2 points lower on DeepCrack test (README model card).
- ``scnet-t-wide-general``: ``scnet-t-wide`` (1.5x the widths, about twice the compute) grown from
  ``scnet-t-general`` and trained further on the same data; chosen over it on validation, for
  imagery that is not DeepCrack's where the extra compute is affordable.
- ``scnet-t-wide2-general``: ``scnet-t-wide2`` (2x the widths) grown from ``scnet-t-wide-general``
  the same way; the most accurate general model, at about 1.7x the wide one's compute.

Each is shipped as ONNX for the torch-free runtime and as a safetensors checkpoint for training-side
tools. The training data's licences differ per model: see the README's model card before using
these weights commercially.
"""

from __future__ import annotations

from pathlib import Path

from crackseg.edge.artifact.errors import CracksegError

__all__ = ["BUNDLED_MODELS", "DEFAULT_MODEL_NAME", "bundled_model", "model_path"]

BUNDLED_MODELS = ("scnet-t-deepcrack", "scnet-t-general", "scnet-t-wide-general", "scnet-t-wide2-general")
DEFAULT_MODEL_NAME = "scnet-t-deepcrack"


def bundled_model(suffix: str = ".onnx", name: str = DEFAULT_MODEL_NAME) -> Path:
    """Path of a bundled model (the default one unless named) in the given format (``.onnx`` or ``.safetensors``)."""
    if name not in BUNDLED_MODELS:
        raise CracksegError(f"no bundled model {name!r} (bundled: {', '.join(BUNDLED_MODELS)})")
    path = Path(__file__).with_name(name + suffix)
    if not path.is_file():
        raise CracksegError(f"the bundled model {path.name} is missing from this installation")
    return path


def model_path(text: str) -> Path:
    """A ``--model`` value: a bundled model's name (its ONNX file) or a path to a model file."""
    return bundled_model(".onnx", text) if text in BUNDLED_MODELS else Path(text)
