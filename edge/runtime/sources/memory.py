"""Frames held in memory: read once from any source, then played back as often as needed.

What the replay backend needs (``crackseg run --backend replay``): the frames it has recorded maps
for, delivered again and again, with no decoding or rendering cost, as a camera's frames cost the host
nothing to produce.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from crackseg.edge.runtime.sources.base import BaseSource, FrameSource, PlaybackItem, PlaybackSource, SourceError

__all__ = ["MemoryPlayback", "read_frames"]


def read_frames(source: FrameSource, count: int, timeout_s: float = 60.0) -> list[np.ndarray]:
    """Up to ``count`` frame images of ``source`` (opened and closed here); fewer if it ends or ``timeout_s`` passes.

    Raises:
        SourceError: the source delivered no frame at all.
    """
    frames: list[np.ndarray] = []
    deadline = time.monotonic() + timeout_s
    with source:
        while len(frames) < count and source.is_streaming and time.monotonic() < deadline:
            frame = source.read(0.5)
            if frame is not None:
                frames.append(frame.image)
    if not frames:
        raise SourceError(f"no frames from {source.source_id}")
    return frames


class MemoryPlayback(PlaybackSource):
    """``frames`` in a loop, each delivered as a fresh copy, as fast as they are read (or at ``fps``).

    Args:
        frames: ``HxWx3`` uint8 RGB images.
        source: the source they came from (its URI and id are kept).
        fps: playback rate (0: unpaced).
    """

    def __init__(self, frames: Sequence[np.ndarray], source: BaseSource, fps: float = 0.0) -> None:
        super().__init__(source.uri, fps=fps, loop=True, source_id=source.source_id)
        if not frames:
            raise SourceError("memory playback needs at least one frame")
        self.frames = list(frames)
        self._index = 0

    def _open_impl(self) -> None:
        self._index = 0

    def _next_item(self) -> PlaybackItem | None:
        if self._index >= len(self.frames):
            return None
        self._index += 1
        return PlaybackItem(self.frames[self._index - 1].copy())

    def _rewind(self) -> None:
        self._index = 0

    def _close_impl(self) -> None:
        pass
