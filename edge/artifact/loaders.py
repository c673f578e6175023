"""Loaders that live in a higher layer, registered here by name and imported only when first called.

The torch runner sits in the contract layer, but the checkpoint format (rebuilding a network from its
spec) belongs to the training layer above it: the runner looks the loader up by file suffix instead of
importing upward, so a machine without torch never imports the training package.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crackseg.edge.artifact.spec import ModelSpec, SpecError

__all__ = ["NETWORK_LOADERS", "network_loader"]

NetworkLoader = Callable[[Path], tuple[Any, ModelSpec]]

NETWORK_LOADERS: dict[str, str] = {".safetensors": "crackseg.train.checkpoint:load_checkpoint"}
"""Model file suffix -> ``module:function`` returning ``(network, spec)`` for a file of that kind."""


def network_loader(path: str | Path) -> NetworkLoader:
    """The registered loader for ``path``'s suffix, imported now; raises :class:`SpecError` for other suffixes."""
    target = NETWORK_LOADERS.get(Path(path).suffix.lower())
    if target is None:
        raise SpecError(f"no network loader for {Path(path).name!r}: expected one of {', '.join(NETWORK_LOADERS)}")
    loader: NetworkLoader = pkgutil.resolve_name(target)
    return loader
