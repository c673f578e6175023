"""Live cameras and streams through ``cv2.VideoCapture``: V4L2, network streams, Jetson CSI, GStreamer.

All live kinds share one behaviour, implemented once in ``CaptureSource``:

* A background grabber thread reads the device as fast as it delivers and keeps **only the newest
  frame**: a frame replaced before anyone read it is counted in ``stats.dropped_stale`` (its id is
  skipped, so downstream sees the gap). A slow consumer therefore always gets the latest view,
  never a backlog.
* ``capture_ns`` is stamped right after ``grab()`` returns, before decoding/colour conversion.
* When the stream fails to open or drops, the grabber reconnects with exponential backoff
  (``ReconnectPolicy``: 0.5 s doubling to 8 s by default, capped at 1 s for network streams so that
  frames resume within about a second of the server coming back; reset as soon as a frame arrives).
  An outage is logged as one warning when it starts and one line when frames are back (how long, how
  many attempts); the attempts in between are debug lines. FFmpeg's and OpenCV's own messages about
  the outage ("Connection refused", "Stream ends prematurely") are silenced unless debug logging is on
  (``-v``), since these lines say the same once. Live sources never reach end of stream on their own;
  with ``max_retries`` set, running out of attempts makes the next ``read`` raise ``SourceError``.

Kinds differ only in how they open the capture:

=========  ======================================================  ===============================
kind       opened as                                               query options
=========  ======================================================  ===============================
v4l2       ``VideoCapture(N or path, CAP_V4L2)``                   width, height, fps, fourcc
stream     ``VideoCapture(url, CAP_FFMPEG)``, 1-frame buffer,       none (the query is the server's)
           ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` (TCP for RTSP, low
           delay), open/read timeouts
csi        ``nvarguscamerasrc sensor-id=N ! ... ! appsink``        width, height, fps, flip
gst        the pipeline as given (``appsink`` appended if absent)  none
=========  ======================================================  ===============================

GStreamer kinds check ``cv2.getBuildInformation()`` first: PyPI's OpenCV wheels lack GStreamer, JetPack's
system OpenCV has it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from crackseg.edge.runtime.sources.base import BaseSource, QueryOptions, SourceError, import_cv2, to_rgb
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.sources.uri import Uri

__all__ = [
    "STREAM_RECONNECT",
    "CaptureLike",
    "CaptureSource",
    "CsiSource",
    "GstSource",
    "ReconnectPolicy",
    "StreamSource",
    "V4l2Source",
    "has_backend",
]

log = logging.getLogger(__name__)

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
RTSP_FFMPEG_OPTIONS = "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay|max_delay;100000"
"""TCP survives lossy radio links without smeared frames; nobuffer/low_delay/max_delay keep FFmpeg's
own buffering (and so latency) to about 0.1 s."""
STREAM_FFMPEG_OPTIONS = "fflags;nobuffer|flags;low_delay"
FFMPEG_LOGLEVEL_ENV = "OPENCV_FFMPEG_LOGLEVEL"
FFMPEG_QUIET = "-8"
"""``AV_LOG_QUIET``: OpenCV reads the variable once, when FFmpeg is first used in the process."""
_ENV_LOCK = threading.Lock()
"""Serialises opens that set the process-wide FFmpeg options variable, which OpenCV reads at open."""

APPSINK = "appsink drop=1 max-buffers=1 sync=false"
"""Newest-wins at the GStreamer level too: the sink holds one buffer and drops older ones."""


class CaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` the grabber uses (tests inject fakes)."""

    def isOpened(self) -> bool: ...  # noqa: N802 (OpenCV's name)

    def grab(self) -> bool: ...

    def retrieve(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff between open attempts.

    Attributes:
        initial_s: wait after the first failure.
        max_s: cap on the wait.
        factor: growth per consecutive failure.
        max_retries: consecutive failed attempts before giving up (``None`` = retry forever).
    """

    initial_s: float = 0.5
    max_s: float = 8.0
    factor: float = 2.0
    max_retries: int | None = None

    def delays(self) -> Iterator[float]:
        """Waits after consecutive failures: ``initial_s * factor**k`` capped at ``max_s``."""
        delay = self.initial_s
        while True:
            yield min(delay, self.max_s)
            delay *= self.factor


STREAM_RECONNECT = ReconnectPolicy(initial_s=0.25, max_s=1.0)
"""Network streams: a server that comes back is found within a second (an attempt costs one connect)."""


@dataclass(frozen=True)
class _Grabbed:
    bgr: np.ndarray
    frame_id: int
    capture_ns: int


def has_backend(cv2: Any, name: str) -> bool:
    """Whether this OpenCV build lists video I/O backend ``name`` (``GStreamer``, ``FFMPEG``) as YES."""
    pattern = rf"^\s*{re.escape(name)}:\s*YES"
    return re.search(pattern, cv2.getBuildInformation(), re.MULTILINE | re.IGNORECASE) is not None


class CaptureSource(BaseSource):
    """Template for live captures: grabber thread, newest frame wins, reconnect with backoff.

    Args:
        uri: the parsed source URI.
        reconnect: backoff and retry limit (default: 0.5 s doubling to 8 s, forever).
        capture_factory: opens a capture instead of ``_create_capture`` (for tests and custom devices).
        source_id: overrides the id stamped on frames (default: the URI, password masked).
    """

    join_timeout_s = 2.0

    def __init__(
        self,
        uri: Uri,
        *,
        reconnect: ReconnectPolicy | None = None,
        capture_factory: Callable[[], CaptureLike] | None = None,
        source_id: str | None = None,
    ) -> None:
        super().__init__(uri, source_id=source_id)
        self.reconnect = reconnect or ReconnectPolicy()
        self._factory = capture_factory
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._slot: _Grabbed | None = None
        self._fatal: str | None = None
        self._thread: threading.Thread | None = None
        self._failures = 0  # consecutive failed attempts of the current outage
        self._delays = self.reconnect.delays()
        self._outage_since: float | None = None

    @abstractmethod
    def _create_capture(self) -> CaptureLike:
        """Open the device with OpenCV; may return a capture that is not opened."""

    def _check_support(self) -> None:
        """Fail fast in ``open()`` when this OpenCV build cannot serve the kind."""
        import_cv2()

    def _open_impl(self) -> None:
        if self._factory is None:
            self._check_support()
        self._stop = threading.Event()  # a new one: a grabber stuck in a driver call never sees it cleared
        self._slot, self._fatal = None, None
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name=f"grab:{self.source_id}", daemon=True
        )
        self._thread.start()

    def _close_impl(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.join_timeout_s)
            if self._thread.is_alive():
                log.warning("%s: grabber still blocked in the driver after %.1f s", self.source_id, self.join_timeout_s)
            self._thread = None
        self._slot = None

    def _read_impl(self, timeout_s: float) -> Frame | None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._slot is None and self._fatal is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(remaining)
            grabbed, self._slot = self._slot, None
            if grabbed is None:
                raise SourceError(f"{self.source_id}: {self._fatal}")
        # Colour conversion happens here, on the consumer's thread, only for frames actually delivered.
        return Frame(to_rgb(grabbed.bgr), grabbed.frame_id, grabbed.capture_ns, self.source_id)

    def _run(self, stop: threading.Event) -> None:
        try:
            self._grab_loop(stop)
        except SourceError as exc:
            self._set_fatal(str(exc))
        except Exception as exc:  # a bug or driver error must reach read(), not die with the thread
            log.exception("%s: grabber failed", self.source_id)
            self._set_fatal(f"grabber failed: {exc}")

    def _grab_loop(self, stop: threading.Event) -> None:
        self._failures, self._delays, self._outage_since = 0, self.reconnect.delays(), None
        attempts = 0
        while not stop.is_set():
            if attempts:
                self._stats.reconnects += 1
            attempts += 1
            capture = self._connect()
            if capture is not None:
                try:
                    self._pump(capture, stop)
                finally:
                    capture.release()
                if stop.is_set():
                    return
                reason = "stream dropped"
            else:
                reason = "cannot open"
            self._failures += 1
            limit = self.reconnect.max_retries
            if limit is not None and self._failures > limit:
                self._set_fatal(f"{reason}; gave up after {self._failures} consecutive failed attempts")
                return
            delay = next(self._delays)
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                log.warning("%s: %s; reconnecting (every %.2f s at most)", self.source_id, reason, self.reconnect.max_s)
            log.debug("%s: %s; reconnecting in %.2f s", self.source_id, reason, delay)
            stop.wait(delay)

    def _on_frames_back(self) -> None:
        """The first frame of a session: reset the backoff, and end the outage's log with one line."""
        if self._outage_since is not None:
            log.info(
                "%s: frames back after a %.1f s outage (%d attempt(s))",
                self.source_id, time.monotonic() - self._outage_since, self._failures,
            )  # fmt: skip
        self._failures, self._delays, self._outage_since = 0, self.reconnect.delays(), None

    def _connect(self) -> CaptureLike | None:
        capture = self._factory() if self._factory is not None else self._create_capture()
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _pump(self, capture: CaptureLike, stop: threading.Event) -> None:
        """Grab until the stream fails or ``close()``."""
        delivered = False
        while not stop.is_set():
            if not capture.grab():
                return
            capture_ns = time.time_ns()
            ok, bgr = capture.retrieve()
            if not ok or bgr is None:
                self._stats.corrupt_skipped += 1
                continue
            if not delivered:
                delivered = True
                self._on_frames_back()
            with self._cond:
                if self._slot is not None:
                    self._stats.dropped_stale += 1
                self._last_frame_id += 1
                self._slot = _Grabbed(bgr, self._last_frame_id, capture_ns)
                self._cond.notify_all()

    def _set_fatal(self, message: str) -> None:
        with self._cond:
            self._fatal = message
            self._cond.notify_all()


class V4l2Source(CaptureSource):
    """A V4L2 camera (USB, MIPI through V4L2) by ``/dev/videoN``, index or stable path.

    Args:
        width, height, fps: requested capture mode (the driver may pick the nearest).
        fourcc: pixel format, e.g. ``MJPG`` to get high frame rates from USB cameras.
        **kwargs: ``CaptureSource`` arguments (``reconnect``, ``capture_factory``, ``source_id``).
    """

    QUERY_OPTIONS: ClassVar[QueryOptions] = {"width": int, "height": int, "fps": float, "fourcc": str}

    def __init__(
        self,
        uri: Uri,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(uri, **kwargs)
        if fourcc is not None and len(fourcc) != 4:
            raise SourceError(f"fourcc must be 4 characters, e.g. MJPG (got {fourcc!r})")
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc

    def _create_capture(self) -> CaptureLike:
        cv2 = import_cv2()
        index = re.fullmatch(r"/dev/video(\d+)", self.uri.location)
        target: int | str = int(index.group(1)) if index else self.uri.location
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        capture = cv2.VideoCapture(target, api)
        if capture.isOpened():
            if self.fourcc is not None:
                capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
            for prop, value in (
                (cv2.CAP_PROP_FRAME_WIDTH, self.width),
                (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                (cv2.CAP_PROP_FPS, self.fps),
            ):
                if value is not None:
                    capture.set(prop, value)
        return capture


class StreamSource(CaptureSource):
    """A network stream (RTSP, RTMP, HTTP) decoded by OpenCV's FFmpeg backend with minimal buffering.

    Args:
        open_timeout_s: give up one open attempt after this long (then back off and retry).
        read_timeout_s: a stream silent this long counts as dropped.
        ffmpeg_options: ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` for this stream (``key;value|key;value``);
            default: the variable if already set in the environment, else low-delay options (+TCP for RTSP).
        **kwargs: ``CaptureSource`` arguments (``reconnect``: default :data:`STREAM_RECONNECT`,
            ``capture_factory``, ``source_id``).
    """

    def __init__(
        self,
        uri: Uri,
        *,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        ffmpeg_options: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(uri, **{"reconnect": STREAM_RECONNECT, **kwargs})
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.ffmpeg_options = ffmpeg_options
        self.join_timeout_s = max(open_timeout_s, read_timeout_s) + 1.0

    @classmethod
    def options_from_query(cls, uri: Uri) -> dict[str, Any]:
        return {}  # the query string belongs to the server (tokens, channel numbers)

    def _ffmpeg_options(self) -> str | None:
        if self.ffmpeg_options is not None:
            return self.ffmpeg_options
        if FFMPEG_OPTIONS_ENV in os.environ:
            return None
        return RTSP_FFMPEG_OPTIONS if self.uri.scheme.startswith("rtsp") else STREAM_FFMPEG_OPTIONS

    def _create_capture(self) -> CaptureLike:
        cv2 = import_cv2()
        use_ffmpeg = has_backend(cv2, "FFMPEG")
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]
        options = self._ffmpeg_options() if use_ffmpeg else None
        quiet = not log.isEnabledFor(logging.DEBUG)
        with _ENV_LOCK:
            previous = os.environ.get(FFMPEG_OPTIONS_ENV)
            if options is not None:
                os.environ[FFMPEG_OPTIONS_ENV] = options
            if quiet:
                os.environ.setdefault(FFMPEG_LOGLEVEL_ENV, FFMPEG_QUIET)  # kept: FFmpeg reads it once
            opencv_level = cv2.utils.logging.getLogLevel()
            if quiet:
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # "can't be used to capture"
            try:
                capture = cv2.VideoCapture(self.uri.url, cv2.CAP_FFMPEG if use_ffmpeg else cv2.CAP_ANY, timeouts)
            finally:
                cv2.utils.logging.setLogLevel(opencv_level)
                if options is not None:
                    if previous is None:
                        del os.environ[FFMPEG_OPTIONS_ENV]
                    else:
                        os.environ[FFMPEG_OPTIONS_ENV] = previous
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # honoured by some backends only; the grabber drains anyway
        return capture


class GstSource(CaptureSource):
    """A raw GStreamer pipeline; ``appsink drop=1 max-buffers=1`` is appended when it has no appsink."""

    def pipeline(self) -> str:
        pipeline = self.uri.location
        if "appsink" in pipeline:
            return pipeline
        return f"{pipeline} ! videoconvert ! video/x-raw, format=BGR ! {APPSINK}"

    def _check_support(self) -> None:
        cv2 = import_cv2()
        if not has_backend(cv2, "GStreamer"):
            raise SourceError(
                f"{self.uri.kind} sources need OpenCV built with GStreamer, and this cv2 {cv2.__version__} has none "
                "(cv2.getBuildInformation() says 'GStreamer: NO'). PyPI's opencv-python wheels lack it; on Jetson use "
                "JetPack's system OpenCV (python3-opencv) in place of the pip wheel, elsewhere build OpenCV with "
                "-DWITH_GSTREAMER=ON."
            )

    def _create_capture(self) -> CaptureLike:
        cv2 = import_cv2()
        return cv2.VideoCapture(self.pipeline(), cv2.CAP_GSTREAMER)


class CsiSource(GstSource):
    """A Jetson CSI camera through ``nvarguscamerasrc`` (ISP, hardware colour conversion).

    Args:
        width, height, fps: sensor mode to request.
        flip: ``nvvidconv flip-method`` (0 none, 2 rotate 180, 4 horizontal, 6 vertical...).
        **kwargs: ``CaptureSource`` arguments (``reconnect``, ``capture_factory``, ``source_id``).
    """

    QUERY_OPTIONS: ClassVar[QueryOptions] = {"width": int, "height": int, "fps": int, "flip": int}

    def __init__(
        self, uri: Uri, *, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(uri, **kwargs)
        self.width, self.height, self.fps, self.flip = width, height, fps, flip

    def pipeline(self) -> str:
        return (
            f"nvarguscamerasrc sensor-id={self.uri.location} ! "
            f"video/x-raw(memory:NVMM), width={self.width}, height={self.height}, framerate={self.fps}/1, "
            f"format=NV12 ! nvvidconv flip-method={self.flip} ! video/x-raw, format=BGRx ! "
            f"videoconvert ! video/x-raw, format=BGR ! {APPSINK}"
        )
