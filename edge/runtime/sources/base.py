"""The frame-source contract, and the template the source kinds share.

Contract (jetson-utils style, one rule per outcome):

* ``read(timeout_s)`` returns a ``Frame``, or ``None`` when no frame came within ``timeout_s``.
* At the end of the stream (file finished, folder exhausted, ``count`` reached) ``read`` returns
  ``None`` and ``is_streaming`` turns ``False``; it stays ``False``. Loops run ``while src.is_streaming``.
* Errors raise ``SourceError`` (bad URI or options, device missing, OpenCV lacking GStreamer, a live
  source that ran out of reconnect attempts). After an error ``is_streaming`` is ``False``.

Sources are context managers: ``with open_source(uri) as src: for frame in src: ...``.
"""

from __future__ import annotations

import difflib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.sources.uri import SourceError, Uri

__all__ = [
    "BaseSource",
    "FrameClock",
    "FrameSource",
    "PlaybackItem",
    "PlaybackSource",
    "QueryOptions",
    "SourceError",
    "SourceStats",
    "import_cv2",
    "parse_bool",
    "to_rgb",
]

QueryOptions = Mapping[str, Callable[[str], Any]]
"""Query parameter name -> converter from its text (``int``, ``float``, ``parse_bool``...)."""

ITER_TIMEOUT_S = 0.1
"""How long one ``read`` waits inside ``for frame in source``; the loop retries until end of stream."""


@dataclass
class SourceStats:
    """Counters a source keeps; ``FrameSource.stats`` returns a snapshot.

    Attributes:
        delivered: frames returned by ``read``.
        dropped_stale: live frames replaced by a newer one before anyone read them.
        corrupt_skipped: images or captured frames that could not be decoded and were skipped.
        reconnects: open attempts after a live stream failed to open or dropped.
    """

    delivered: int = 0
    dropped_stale: int = 0
    corrupt_skipped: int = 0
    reconnects: int = 0


@runtime_checkable
class FrameSource(Protocol):
    """What the pipeline needs from any source (see the module docstring for the contract)."""

    source_id: str

    def open(self) -> None: ...

    def read(self, timeout_s: float) -> Frame | None: ...

    def close(self) -> None: ...

    @property
    def is_streaming(self) -> bool: ...

    @property
    def stats(self) -> SourceStats: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def parse_bool(text: str) -> bool:
    """Read a query-string flag: ``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def import_cv2() -> Any:
    """Import OpenCV on first use, so ``crackseg.edge`` imports on machines without it."""
    try:
        import cv2
    except ImportError as exc:
        raise SourceError(
            "OpenCV (cv2) is needed for this source: pip install 'crackseg[edge]' "
            "(on Jetson, use the system OpenCV, which has GStreamer)"
        ) from exc
    return cv2


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Convert an OpenCV image (BGR, BGRA or grey) to contiguous ``uint8`` RGB."""
    cv2 = import_cv2()
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class BaseSource(ABC):
    """Template for sources: public methods check state, then call the ``*_impl`` methods.

    Subclasses list the query parameters they accept in ``QUERY_OPTIONS`` (name -> converter);
    ``open_source`` turns ``uri.params`` into keyword arguments with ``options_from_query``.
    """

    QUERY_OPTIONS: ClassVar[QueryOptions] = {}

    live = True
    """A live source keeps capturing whether or not anyone reads: the pipeline drops its oldest queued frames."""

    def __init__(self, uri: Uri, *, source_id: str | None = None) -> None:
        self.uri = uri
        self.source_id = source_id or uri.display
        self._stats = SourceStats()
        self._opened = False
        self._streaming = False
        self._last_frame_id = -1

    @classmethod
    def options_from_query(cls, uri: Uri) -> dict[str, Any]:
        """Convert ``uri.params`` to keyword arguments; unknown keys and bad values raise ``SourceError``."""
        options: dict[str, Any] = {}
        for key, value in uri.params.items():
            convert = cls.QUERY_OPTIONS.get(key)
            if convert is None:
                known = sorted(cls.QUERY_OPTIONS)
                hint = difflib.get_close_matches(key, known, n=1)
                did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise SourceError(
                    f"unknown option '{key}' for {uri.kind} sources{did_you_mean}; known: {', '.join(known) or 'none'}"
                )
            try:
                options[key] = convert(value)
            except ValueError as exc:
                raise SourceError(f"bad value for option '{key}' in {uri.display}: {exc}") from exc
        return options

    def open(self) -> None:
        """Acquire the device, file or stream; a second call does nothing."""
        if self._opened:
            return
        self._open_impl()
        self._opened = True
        self._streaming = True

    def read(self, timeout_s: float) -> Frame | None:
        """Return the next frame, or ``None`` on timeout or at the end of the stream."""
        if not self._opened:
            raise SourceError(f"{self.source_id}: read() before open()")
        if not self._streaming:
            return None
        try:
            frame = self._read_impl(max(0.0, timeout_s))
        except SourceError:
            self._streaming = False
            raise
        if frame is not None:
            self._stats.delivered += 1
        return frame

    def close(self) -> None:
        """Release everything ``open`` acquired; safe to call twice."""
        if not self._opened:
            return
        try:
            self._close_impl()
        finally:
            self._opened = False
            self._streaming = False

    @property
    def is_streaming(self) -> bool:
        return self._opened and self._streaming

    @property
    def stats(self) -> SourceStats:
        return replace(self._stats)

    def __enter__(self) -> BaseSource:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        """Yield frames until the end of the stream (forever for live sources that keep running)."""
        while self.is_streaming:
            frame = self.read(ITER_TIMEOUT_S)
            if frame is not None:
                yield frame

    def _end_stream(self) -> None:
        self._streaming = False

    def _make_frame(
        self, image: np.ndarray, capture_ns: int, mask_gt: np.ndarray | None = None, name: str | None = None
    ) -> Frame:
        self._last_frame_id += 1
        return Frame(image, self._last_frame_id, capture_ns, self.source_id, mask_gt, name)

    @abstractmethod
    def _open_impl(self) -> None: ...

    @abstractmethod
    def _read_impl(self, timeout_s: float) -> Frame | None: ...

    @abstractmethod
    def _close_impl(self) -> None: ...


@dataclass(frozen=True)
class PlaybackItem:
    """What a pull source produces before pacing: RGB pixels, optional ground truth and name."""

    image: np.ndarray
    mask_gt: np.ndarray | None = None
    name: str | None = None


class PlaybackSource(BaseSource):
    """Pull sources (files, folders, synthetic): produce on demand, paced to ``fps``, optionally looped.

    Frame ``k`` is due ``k / fps`` seconds after the first; ``capture_ns`` is stamped when it is
    released. A consumer that falls more than one period behind re-anchors the schedule instead of
    getting a burst. ``fps = 0`` plays as fast as the consumer reads. Nothing is ever dropped.
    """

    live = False

    def __init__(self, uri: Uri, *, fps: float = 0.0, loop: bool = False, source_id: str | None = None) -> None:
        super().__init__(uri, source_id=source_id)
        if fps < 0:
            raise SourceError(f"fps must be >= 0 (0 = as fast as possible), got {fps}")
        self.fps = fps
        self.loop = loop
        self._pending: PlaybackItem | None = None
        self._due: float | None = None
        self._produced_this_pass = 0

    def close(self) -> None:
        super().close()
        self._pending, self._due, self._produced_this_pass = None, None, 0

    @abstractmethod
    def _next_item(self) -> PlaybackItem | None:
        """Produce the next item, or ``None`` when the pass is over."""

    def _rewind(self) -> None:
        """Start a new pass (only called when ``loop`` is set)."""
        raise SourceError(f"{type(self).__name__} cannot loop")

    def _read_impl(self, timeout_s: float) -> Frame | None:
        if self._pending is None:
            self._pending = self._fetch()
            if self._pending is None:
                self._end_stream()
                return None
        delay = self._delay_s()
        if delay > timeout_s:
            time.sleep(timeout_s)
            return None
        if delay > 0:
            time.sleep(delay)
        item, self._pending = self._pending, None
        if self._due is not None:
            self._due += 1.0 / self.fps
        return self._make_frame(item.image, time.time_ns(), item.mask_gt, item.name)

    def _fetch(self) -> PlaybackItem | None:
        item = self._next_item()
        if item is None and self.loop and self._produced_this_pass > 0:
            self._rewind()
            self._produced_this_pass = 0
            item = self._next_item()
        if item is not None:
            self._produced_this_pass += 1
        return item

    def _delay_s(self) -> float:
        if self.fps <= 0:
            return 0.0
        now = time.monotonic()
        if self._due is None or now - self._due > 1.0 / self.fps:
            self._due = now
        return max(0.0, self._due - now)


class FrameClock:
    """The capture schedule of a live source: frame ``k`` is captured ``k / fps`` after the first read.

    A camera captures whether or not anyone reads; a reader that comes late gets the newest frame, stamped
    with the time it was captured, and the frames it missed are stale (a driver that keeps only the newest
    buffer drops them).

    Args:
        fps: frames per second, positive.
    """

    def __init__(self, fps: float) -> None:
        if not fps > 0:
            raise SourceError(f"a live source needs a positive frame rate, got {fps}")
        self.fps = fps
        self._origin: tuple[float, int] | None = None  # (monotonic s, wall ns) of frame 0
        self._index = 0

    def reset(self) -> None:
        self._origin, self._index = None, 0

    def next(self, timeout_s: float, last: int | None = None) -> tuple[int, int, int] | None:
        """Wait for the next capture: ``(index, capture_ns, stale)``, or ``None`` if none is due within ``timeout_s``.

        ``stale`` frames were captured since the previous call and never read. ``last`` is the last index
        that exists (a finite source); the newest frame is never past it.
        """
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, time.time_ns())
        start, start_ns = self._origin
        due = start + self._index / self.fps
        stale = 0
        if due > now:
            if due - now > timeout_s:
                time.sleep(timeout_s)
                return None
            time.sleep(due - now)
        else:
            newest = int((now - start) * self.fps)
            if last is not None:
                newest = max(self._index, min(newest, last))
            stale, self._index = newest - self._index, newest
        index = self._index
        self._index += 1
        return index, start_ns + round(index / self.fps * 1e9), stale
