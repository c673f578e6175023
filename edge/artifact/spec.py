"""The model spec: the one description of a trained model that every artifact carries.

Training writes it once; the checkpoint (safetensors metadata), the ONNX file (`metadata_props`) and
the engine manifest carry it unchanged, and the runtime reads it instead of guessing preprocessing.
Torch-free on purpose: the edge runtime reads specs on machines without a training stack.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from crackseg.edge.errors import CracksegError

__all__ = ["SPEC_KEY", "SPEC_VERSION", "ModelSpec", "SpecError"]

SPEC_VERSION = 1
SPEC_KEY = "crackseg_spec"
"""Key under which the JSON spec is stored in safetensors metadata and ONNX metadata_props."""


class SpecError(CracksegError, ValueError):
    """A spec is missing, malformed or of an unsupported version."""


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
        output: meaning of the single output tensor.
        threshold: operating threshold on the probability, chosen on validation data (ODS).
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
    output: str = "crack probability, 1 channel, input resolution"
    threshold: float = 0.5
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
        for key in ("pixel_mean", "pixel_std"):
            if key in raw:
                raw[key] = tuple(raw[key])
        return cls(**raw)
