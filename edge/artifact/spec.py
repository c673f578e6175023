"""The model spec: the one description of a trained model that every artifact carries.

Training writes it once; the checkpoint (safetensors metadata), the ONNX file (`metadata_props`) and
the engine manifest carry it unchanged, and the runtime reads it instead of guessing preprocessing.
Torch-free on purpose: the edge runtime reads specs on machines without a training stack.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from crackseg.edge.artifact.errors import ArtifactError
from crackseg.edge.artifact.size import DEFAULT_INPUT_SIZE, Size

__all__ = [
    "IMAGENET",
    "INPUT_NAME",
    "MASK_NAME",
    "MAX_INPUT_SIDE",
    "MAX_SIZE_MULTIPLE",
    "OUTPUT_NAME",
    "SPEC_KEY",
    "SPEC_VERSION",
    "SYMMETRIC",
    "THRESHOLD_NAME",
    "ModelSpec",
    "SpecError",
    "VariantConfig",
    "check_fields",
    "spec_from_metadata",
]

SPEC_VERSION = 1
SPEC_KEY = "crackseg_spec"
"""Key under which the JSON spec is stored in safetensors metadata and ONNX metadata_props."""

INPUT_NAME = "image"
"""Name of the network input: ``Nx3xHxW`` float32 RGB normalized per the spec."""
OUTPUT_NAME = "prob"
"""Name of the network output: ``Nx1xHxW`` crack probability."""
THRESHOLD_NAME = "threshold"
"""A TensorRT engine's second input: the operating threshold, float32, shape ``1x1x1x1``."""
MASK_NAME = "mask"
"""A TensorRT engine's second output: ``prob > threshold``, bool ``Nx1xHxW``, made on the GPU."""


class SpecError(ArtifactError, ValueError):
    """An artifact (checkpoint, ONNX file, engine or its manifest) is missing, unreadable or carries no valid spec.

    The one error type of the artifact contract: the message names the file and the reason.
    """


@dataclass(frozen=True)
class VariantConfig:
    """A variant's input contract, declared next to its model; every spec of the variant starts from it.

    Attributes:
        pixel_mean: per-channel value subtracted from 0-255 RGB pixels.
        pixel_std: per-channel divisor after subtracting the mean.
        input_size: the training crop and the default network input size.
    """

    pixel_mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    pixel_std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    input_size: Size = DEFAULT_INPUT_SIZE


SYMMETRIC = VariantConfig()
"""RGB mapped to [-1, 1], as SCNet's paper feeds its network (and every network trained from scratch here)."""
IMAGENET = VariantConfig(pixel_mean=(123.675, 116.28, 103.53), pixel_std=(58.395, 57.12, 57.375))
"""torchvision's ImageNet statistics: what a backbone that can take ImageNet weights was trained on."""


@dataclass(frozen=True)
class ModelSpec:
    """What a caller must know to run a crackseg model and read its output.

    Attributes:
        arch: registered variant name (e.g. ``scnet-t``); rebuilds the network by name.
        model_args: keyword overrides passed to the variant's builder.
        input_channels: channels the caller supplies (RGB); priors are computed inside the graph.
        pixel_mean: per-channel value subtracted from 0-255 RGB pixels.
        pixel_std: per-channel divisor after subtracting the mean (127.5/127.5 maps RGB to [-1, 1]).
        size_multiple: input height and width must be multiples of this.
        input_size: the training crop, the default network input (specs written before it existed: 512x512).
        output: meaning of the single output tensor.
        threshold: operating threshold on the probability, chosen on validation data (ODS).
        min_component_px: predicted crack components (8-connected) smaller than this many pixels are
            dropped from the mask: texture specks an operator would see as false alarms. Chosen on
            validation data with the threshold; 0 keeps every component.
        training: provenance (dataset, split, recipe, seed, epochs).
        metrics: measured figures with the protocol that produced them.
    """

    arch: str
    model_args: dict[str, Any] = field(default_factory=dict)
    input_channels: int = 3
    color_order: str = "RGB"
    pixel_mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    pixel_std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    size_multiple: int = 32
    input_size: Size = DEFAULT_INPUT_SIZE
    output: str = "crack probability, 1 channel, input resolution"
    threshold: float = 0.5
    min_component_px: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: int = SPEC_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"model spec is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or "arch" not in raw:
            raise SpecError("model spec has no 'arch' field")
        if raw.get("version") != SPEC_VERSION:
            raise SpecError(f"model spec version {raw.get('version')!r} is not supported (expected {SPEC_VERSION})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SpecError(f"model spec has unknown fields {unknown}")
        check_fields(raw)
        for key in ("pixel_mean", "pixel_std"):
            if key in raw:
                raw[key] = tuple(float(v) for v in raw[key])
        if "input_size" in raw:
            raw["input_size"] = Size(*raw["input_size"])
        return cls(**raw)


MAX_SIZE_MULTIPLE = 1024
"""Largest size multiple a spec may ask for: frames are padded up to it, so it bounds the padding."""
MAX_INPUT_SIDE = 16384
"""Largest network input side a spec may name."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


_FIELD_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "arch": ("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip())),
    "model_args": ("an object", lambda v: isinstance(v, dict)),
    "input_channels": ("3 (RGB)", lambda v: _is_count(v) and v == 3),
    "color_order": ("'RGB'", lambda v: v == "RGB"),
    "pixel_mean": (
        "3 finite numbers",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_number(x) for x in v),
    ),
    "pixel_std": (
        "3 finite numbers > 0",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_number(x) and x > 0 for x in v),
    ),
    "size_multiple": (f"an integer in [1, {MAX_SIZE_MULTIPLE}]", lambda v: _is_count(v) and v <= MAX_SIZE_MULTIPLE),
    "input_size": (
        f"[height, width], two integers in [1, {MAX_INPUT_SIDE}]",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_count(x) and x <= MAX_INPUT_SIDE for x in v),
    ),
    "output": ("a string", lambda v: isinstance(v, str)),
    "threshold": ("a number in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
    "min_component_px": (
        "an integer >= 0",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    ),
    "training": ("an object", lambda v: isinstance(v, dict)),
    "metrics": ("an object", lambda v: isinstance(v, dict)),
    "version": (f"{SPEC_VERSION}", lambda v: _is_count(v) and v == SPEC_VERSION),
}
"""Each field's type and range, checked once when a spec is read: a bad value is one :class:`SpecError`."""


def check_fields(raw: Mapping[str, Any]) -> None:
    """Raises :class:`SpecError` naming the first field of ``raw`` (a parsed spec) whose value is out of contract."""
    for name, (expected, valid) in _FIELD_RULES.items():
        if name in raw and not valid(raw[name]):
            shown = json.dumps(raw[name], default=repr)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise SpecError(f"model spec field '{name}' must be {expected}, got {shown}")


def spec_from_metadata(metadata: Mapping[str, str], source: object) -> ModelSpec:
    """The spec stored under :data:`SPEC_KEY` in an artifact's metadata; ``source`` names the file in errors."""
    if SPEC_KEY not in metadata:
        raise SpecError(f"{source} is not a crackseg model: its metadata has no '{SPEC_KEY}' entry")
    try:
        return ModelSpec.from_json(metadata[SPEC_KEY])
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from exc
