"""The models bundled with crackseg, reachable by name; one of them is every command's default.

- ``fpn-e0-general`` (the default): ``fpn-e0``, an ImageNet-pretrained EfficientNet-Lite0 trunk with a
  feature-pyramid decoder, trained on the training splits of seven crack datasets (roads and concrete
  from drones and close up, masonry walls, marble); for drones and crawlers.
- ``scnet-t-deepcrack``: ``scnet-t`` trained on DeepCrack alone (270 training images); the model of
  the paper comparison.
- ``scnet-t-general``: the same network fine-tuned on the training splits of six crack datasets.
- ``scnet-t-wide-general``: ``scnet-t-wide`` (1.5x the widths) grown from ``scnet-t-general`` and
  trained further on the same data.
- ``scnet-t-wide2-general``: ``scnet-t-wide2`` (2x the widths) grown from ``scnet-t-wide-general``
  the same way.

The default is not named here but chosen by the rule of :mod:`crackseg.edge.models.default` from the
measurements in ``default.json``. Each model is shipped as ONNX for the torch-free runtime and as a
safetensors checkpoint for training-side tools, with its model card (``<name>.md``: training data and
licences, recipe, every validation and test split, latency); the licences differ per model.
"""

from __future__ import annotations

from pathlib import Path

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.models.default import choose_default, load_rule

__all__ = ["BUNDLED_MODELS", "DEFAULT_MODEL_NAME", "bundled_model", "model_path"]

BUNDLED_MODELS = (
    "fpn-e0-general",
    "scnet-t-deepcrack",
    "scnet-t-general",
    "scnet-t-wide-general",
    "scnet-t-wide2-general",
)
DEFAULT_MODEL_NAME = choose_default(load_rule())
"""The bundled model with the best mean validation F1 at its shipped operating point, among those within
1.5x ``scnet-t``'s latency (:mod:`crackseg.edge.models.default`)."""


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
