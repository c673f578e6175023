"""Video files, decoded with OpenCV: a recorded flight replayed like a camera, or as fast as possible.

Query options: ``realtime`` (bool, default true: pace at the file's frame rate), ``fps`` (float, pace
at this rate instead; only with ``realtime``), ``loop`` (bool, default false).

A file that ends before the frame count its header announces (a copy cut short, a recording whose
writer died) says so in a warning naming the file and both counts, not just "source ended".
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, ClassVar

from crackseg.edge.runtime.sources.base import (
    PlaybackItem,
    PlaybackSource,
    QueryOptions,
    SourceError,
    import_cv2,
    parse_bool,
    to_rgb,
)
from crackseg.edge.runtime.sources.uri import Uri

__all__ = ["VideoFileSource"]

log = logging.getLogger(__name__)


class VideoFileSource(PlaybackSource):
    """Decode a video file frame by frame; never drops frames (a slow consumer slows playback).

    Args:
        uri: a ``file://`` URI with a video extension.
        realtime: pace frames at the video's frame rate (or ``fps``); ``False`` = as fast as read.
        fps: pace at this rate instead of the file's; ignored when ``realtime`` is ``False``.
        loop: restart at the first frame after the last; frame ids keep increasing.
        source_id: overrides the id stamped on frames (default: the URI).
    """

    QUERY_OPTIONS: ClassVar[QueryOptions] = {"realtime": parse_bool, "fps": float, "loop": parse_bool}

    def __init__(
        self,
        uri: Uri,
        *,
        realtime: bool = True,
        fps: float | None = None,
        loop: bool = False,
        source_id: str | None = None,
    ) -> None:
        super().__init__(uri, loop=loop, source_id=source_id)
        self.realtime = realtime
        self.native_fps = 0.0
        self._fps_override = fps
        self._capture: Any = None
        self._index = 0
        self.announced_frames = 0

    def _open_impl(self) -> None:
        path = Path(self.uri.path)
        if not path.is_file():
            raise SourceError(f"no such video file: {path}")
        cv2 = import_cv2()
        self._capture = self._open_capture(path)
        self._index = 0
        announced = float(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.announced_frames = int(announced) if math.isfinite(announced) and announced > 0 else 0
        native = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.native_fps = native if math.isfinite(native) and native > 0 else 0.0
        if self.realtime:
            self.fps = self._fps_override if self._fps_override is not None else self.native_fps
            if self.fps <= 0:
                log.warning("%s reports no frame rate; playing as fast as possible (pass fps=...)", path)

    def _open_capture(self, path: Path) -> Any:
        cv2 = import_cv2()
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"OpenCV cannot decode video {path} (unsupported codec or corrupt file)")
        return capture

    def _next_item(self) -> PlaybackItem | None:
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            if self._index < self.announced_frames:
                log.warning(
                    "%s ended after %d of the %d frames its header announces: the file is truncated or corrupt",
                    self.uri.path, self._index, self.announced_frames,
                )  # fmt: skip
            return None
        self._index += 1
        return PlaybackItem(to_rgb(bgr), name=f"{Path(self.uri.path).stem}#{self._index - 1}")

    def _rewind(self) -> None:
        # Reopening is reliable for every container; seeking to frame 0 is not (e.g. some MJPG avi).
        self._capture.release()
        self._capture = self._open_capture(Path(self.uri.path))
        self._index = 0

    def _close_impl(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
