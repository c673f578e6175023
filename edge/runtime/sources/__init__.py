"""Frame sources chosen by URI: ``open_source("rtsp://...")`` imports only the module that serves it.

The URI table lives in ``crackseg.edge.runtime.sources.uri``; the frame contract in
``crackseg.edge.runtime.sources.base``.
"""

from __future__ import annotations

import importlib
from typing import Any

from crackseg.edge.runtime.sources.base import BaseSource, FrameSource, SourceError, SourceStats
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.sources.uri import Uri, parse_uri

__all__ = ["LIVE_KINDS", "SOURCES", "BaseSource", "Frame", "FrameSource", "SourceError", "SourceStats", "open_source"]

SOURCES: dict[str, str] = {
    "video": "file:VideoFileSource",
    "images": "folder:ImageFolderSource",
    "v4l2": "capture:V4l2Source",
    "stream": "capture:StreamSource",
    "csi": "capture:CsiSource",
    "gst": "capture:GstSource",
    "synthetic": "synthetic:SyntheticSource",
}
"""``Uri.kind`` -> ``"module:Class"`` inside this package."""

LIVE_KINDS = frozenset(kind for kind, target in SOURCES.items() if target.startswith("capture:"))
"""Kinds served by a live capture (newest frame wins, reconnect with backoff)."""


def open_source(uri: str | Uri, **options: Any) -> BaseSource:
    """Create (not yet open) the source a URI names.

    Query parameters in the URI become options; keyword ``options`` override them.

    Args:
        uri: a source string (see ``crackseg.edge.runtime.sources.uri``) or an already parsed ``Uri``.
        **options: keyword arguments of the chosen source class (``loop=True``, ``masks_dir=...``).

    Raises:
        SourceError: the URI is malformed or names an unknown scheme, or a query option is unknown.
    """
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    module_name, _, class_name = SOURCES[parsed.kind].partition(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    cls: type[BaseSource] = getattr(module, class_name)
    return cls(parsed, **{**cls.options_from_query(parsed), **options})
