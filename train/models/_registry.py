"""Model registry: variants register by decorator at import time, with their input config; lookup is by name only."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar, overload

from crackseg.edge.artifact.spec import SYMMETRIC, ModelSpec, VariantConfig
from crackseg.train.models.base import CrackModel

__all__ = ["create_model", "create_spec", "describe_model", "is_model", "list_models", "register_model"]

_Builder = TypeVar("_Builder", bound=Callable[..., CrackModel])
_model_entrypoints: dict[str, Callable[..., CrackModel]] = {}
_variant_configs: dict[str, VariantConfig] = {}


@overload
def register_model(fn: _Builder) -> _Builder: ...
@overload
def register_model(*, config: VariantConfig) -> Callable[[_Builder], _Builder]: ...
def register_model(
    fn: _Builder | None = None, *, config: VariantConfig = SYMMETRIC
) -> _Builder | Callable[[_Builder], _Builder]:
    """Registers a builder under its name with underscores written as hyphens (``scnet_t`` -> ``scnet-t``).

    Used bare (``@register_model``: RGB fed as [-1, 1]) or with the variant's input config
    (``@register_model(config=IMAGENET)``), which every spec of the variant starts from.
    """

    def register(builder: _Builder) -> _Builder:
        name = builder.__name__.replace("_", "-")
        _model_entrypoints[name] = builder
        _variant_configs[name] = config
        return builder

    return register if fn is None else register(fn)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style ``pattern``, sorted."""
    return sorted(name for name in _model_entrypoints if fnmatch.fnmatch(name, pattern))


def is_model(name: str) -> bool:
    return name in _model_entrypoints


def describe_model(name: str) -> str:
    """The first line of a variant's docstring."""
    return (_model_entrypoints[name].__doc__ or "").strip().splitlines()[0]


def create_model(name: str, **kwargs: Any) -> CrackModel:
    """Builds the registered variant ``name``; raises ``ValueError`` with a suggestion for unknown names."""
    if name not in _model_entrypoints:
        close = difflib.get_close_matches(name, _model_entrypoints, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} Known models: {', '.join(list_models())}")
    return _model_entrypoints[name](**kwargs)


def create_spec(name: str, model: CrackModel, **fields: Any) -> ModelSpec:
    """The spec of a network of variant ``name``: the one place specs are built.

    Normalization and input size come from the variant's registered config, the size multiple from the
    network itself; ``fields`` adds the rest (``model_args``, ``training``, ``threshold`` ...).
    """
    config = _variant_configs[name]
    return ModelSpec(
        arch=name,
        pixel_mean=config.pixel_mean,
        pixel_std=config.pixel_std,
        input_size=config.input_size,
        size_multiple=model.size_multiple,
        **fields,
    )
