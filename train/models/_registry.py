"""Model registry: variants register by decorator at import time; lookup is by name only."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from crackseg.train.models.base import CrackModel

__all__ = ["create_model", "describe_model", "is_model", "list_models", "register_model"]

_Builder = TypeVar("_Builder", bound=Callable[..., CrackModel])
_model_entrypoints: dict[str, Callable[..., CrackModel]] = {}


def register_model(fn: _Builder) -> _Builder:
    """Registers ``fn`` under its name with underscores written as hyphens (``scnet_t`` -> ``scnet-t``)."""
    _model_entrypoints[fn.__name__.replace("_", "-")] = fn
    return fn


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
