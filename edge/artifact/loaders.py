"""Loaders that live in a higher layer, found through an entry point and imported only when first called.

The torch runner sits in the runners layer, but the checkpoint format (rebuilding a network from its
spec) belongs to the training stage above it. The runner names no higher module: the training
package declares its loader in ``pyproject.toml`` under the entry-point group :data:`ENTRY_POINT_GROUP`
(the name is the model file suffix), and :func:`network_loader` looks it up with
:func:`importlib.metadata.entry_points`, so a machine without torch never imports the training package.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from crackseg.edge.artifact.spec import ModelSpec, SpecError

__all__ = ["ENTRY_POINT_GROUP", "network_loader", "network_loaders"]

ENTRY_POINT_GROUP = "crackseg.network_loaders"
"""Entry points in this group map a model file suffix (``.safetensors``) to a function returning ``(network, spec)``."""

NetworkLoader = Callable[[Path], tuple[Any, ModelSpec]]


def network_loaders() -> dict[str, EntryPoint]:
    """Model file suffix -> the installed entry point that loads files of that kind."""
    return {entry.name.lower(): entry for entry in entry_points(group=ENTRY_POINT_GROUP)}


def network_loader(path: str | Path) -> NetworkLoader:
    """The registered loader for ``path``'s suffix, imported now; raises :class:`SpecError` for other suffixes."""
    loaders = network_loaders()
    entry = loaders.get(Path(path).suffix.lower())
    if entry is None:
        expected = ", ".join(sorted(loaders)) or "none: install crackseg with its training extra"
        raise SpecError(f"no network loader for {Path(path).name!r}: expected one of {expected}")
    loader: NetworkLoader = entry.load()
    return loader
