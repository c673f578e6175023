"""``crackseg run --overlay URI``: the published frames, with their masks drawn, to a video file or stream.

======================================  ==============================================================
``URI``                                 output
======================================  ==============================================================
``out.mp4`` (``.m4v``, ``.mov``)        MPEG-4 Part 2 video file (OpenCV's FFmpeg backend)
``out.avi``, ``out.mkv``                Motion-JPEG video file
``rtp://HOST:PORT``                     H.264 over RTP/UDP (GStreamer: ``x264enc ! rtph264pay ! udpsink``)
``udp://HOST:PORT``                     H.264 in MPEG-TS over UDP (GStreamer)
``gst://appsrc ! ...`` or `` ! `` text  a raw GStreamer pipeline that starts with ``appsrc`` (BGR frames)
======================================  ==============================================================

Streams need an OpenCV built with GStreamer (Jetson images have one; the ``opencv-python`` wheels do
not): without it ``open`` says so in one line. The video's size is the first frame's (later frames of
another size are scaled to it).

The overlay is paced by capture time: of the published frames it draws at most ``fps`` per second of
capture, evenly spread (:class:`FramePacer`), and skips the rest (counted, ``overlay_skipped``). Its cost
then follows the video's frame rate, not the pipeline's, and the video plays in real time: a 30 fps
overlay of a 120 fps pipeline draws one frame in four. By default (``fps=None``) the video's rate follows
the source: at most :data:`DEFAULT_FPS` frames a second are drawn, and the video's rate is the drawn
frames' own, measured from the capture times of the first :data:`RATE_FRAMES` (the median interval), so
a 10 fps source gives a 10 fps video of the same length. A rate given explicitly is used as is (a source
slower than it then plays faster than real time). ``every_frame`` draws every published frame instead
(reviewing a folder offline), at a cost that grows with the pipeline's rate.

Containers: an ``.mkv`` or ``.avi`` overlay stays playable up to its last written frame when the process
is killed (``kill -9``, power loss); an ``.mp4`` (``.m4v``, ``.mov``) does not, its index being written
only when the run ends normally: prefer ``.mkv`` on a vehicle.

The publish stage only queues a reference to the frame (``send_frame`` never blocks); drawing and
encoding run on this sink's own thread. When that thread falls ``queue_size`` frames behind, new frames
are dropped from the overlay and counted (``overlay_dropped``), so a slow encoder never slows publishing.
"""

from __future__ import annotations

import itertools
import logging
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.runtime.overlay import caption, draw_overlay
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.wire import MaskMessage
from crackseg.edge.runtime.worker import Worker
from crackseg.edge.runtime.writer_flush import flush_writer

__all__ = [
    "DEFAULT_FPS",
    "FILE_CODECS",
    "RATE_FRAMES",
    "FramePacer",
    "OverlayError",
    "OverlayOutput",
    "OverlayTarget",
    "measured_fps",
    "parse_overlay_target",
]

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
"""The most frames a second the overlay draws unless ``--overlay-fps`` says otherwise."""
RATE_FRAMES = 5
"""Frames (drawn and held, a bounded few) whose capture times measure the video's rate when it follows the source."""

FILE_CODECS = {"mp4": "mp4v", "m4v": "mp4v", "mov": "mp4v", "avi": "MJPG", "mkv": "MJPG"}
"""Video file extension -> FourCC of the codec OpenCV writes it with."""

_STREAM_PIPELINES = {
    "rtp": "rtph264pay config-interval=1 pt=96 ! udpsink host={host} port={port} sync=false",
    "udp": "mpegtsmux ! udpsink host={host} port={port} sync=false",
}
_H264 = "appsrc ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! "
_HOST_PORT = re.compile(r"^(?P<host>[^:/]+):(?P<port>\d{1,5})/?$")
_END = None


class OverlayError(CracksegError):
    """The overlay output cannot be opened (bad URI, missing folder, no GStreamer in OpenCV)."""


@dataclass(frozen=True)
class OverlayTarget:
    """Where overlay frames go: ``kind`` is ``file`` (``location`` a path, ``fourcc``) or ``gstreamer`` (a pipeline)."""

    kind: str
    location: str
    fourcc: str = ""


def parse_overlay_target(text: str) -> OverlayTarget:
    """Parse ``--overlay`` (see the module table); a malformed URI raises :class:`OverlayError`."""
    scheme, sep, rest = text.partition("://")
    if sep and scheme in _STREAM_PIPELINES:
        match = _HOST_PORT.match(rest)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise OverlayError(f"--overlay {text}: expected {scheme}://HOST:PORT, e.g. {scheme}://192.168.1.10:5600")
        pipeline = _H264 + _STREAM_PIPELINES[scheme].format(host=match["host"], port=int(match["port"]))
        return OverlayTarget("gstreamer", pipeline)
    if sep and scheme == "gst":
        return OverlayTarget("gstreamer", rest)
    if " ! " in text:
        return OverlayTarget("gstreamer", text)
    if sep and scheme != "file":
        raise OverlayError(f"--overlay {text}: unknown scheme {scheme!r}; use a video file, rtp://, udp:// or gst://")
    path = Path(rest if sep else text).expanduser()
    fourcc = FILE_CODECS.get(path.suffix.lower().lstrip("."))
    if fourcc is None:
        raise OverlayError(f"--overlay {text}: a video file must end in one of {', '.join(sorted(FILE_CODECS))}")
    return OverlayTarget("file", str(path.absolute()), fourcc)


def opencv_has_gstreamer(cv2: Any) -> bool:
    return re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None


class FramePacer:
    """Admits at most ``fps`` frames per second of capture time, one per slot of a regular grid.

    A frame is admitted when it was captured at least half a period after the last admitted slot, and
    the next slot is a period later (or, after a gap, half a period before this frame). So a source at
    exactly ``fps`` keeps every frame despite timing jitter, a faster one keeps ``fps`` frames a second
    on average, and a slower one keeps every frame.
    """

    def __init__(self, fps: float) -> None:
        self._period_ns = round(1e9 / fps)
        self._slot_ns: int | None = None

    def admit(self, capture_ns: int) -> bool:
        """Whether the frame captured at ``capture_ns`` (non-decreasing from call to call) is drawn."""
        half_ns = self._period_ns // 2
        if self._slot_ns is not None and capture_ns < self._slot_ns + half_ns:
            return False
        slot_ns = capture_ns if self._slot_ns is None else self._slot_ns + self._period_ns
        self._slot_ns = max(slot_ns, capture_ns - half_ns)
        return True


def measured_fps(capture_ns: list[int]) -> float:
    """Frames per second from capture times: one over the median interval, at most :data:`DEFAULT_FPS` and at
    least 1 (:data:`DEFAULT_FPS` with fewer than two distinct times)."""
    intervals = sorted(b - a for a, b in itertools.pairwise(capture_ns) if b > a)
    if not intervals:
        return DEFAULT_FPS
    middle = len(intervals) // 2
    median_ns = intervals[middle] if len(intervals) % 2 else (intervals[middle - 1] + intervals[middle]) / 2
    return round(min(DEFAULT_FPS, max(1.0, 1e9 / median_ns)), 2)


class OverlayOutput(Worker):
    """A sink that draws the published frames (paced) and writes them to a video file or stream from its own thread.

    Args:
        target: the ``--overlay`` URI (see the module table).
        fps: frame rate of the video, and the most frames drawn per second of capture time; ``None``: the
            published frames' own rate, at most :data:`DEFAULT_FPS` (module docstring).
        queue_size: frames waiting to be drawn before new ones are dropped.
        every_frame: draw every published frame, not ``fps`` per second of capture time.

    Attributes:
        written: frames handed to the video writer.
        skipped: frames not drawn because the video's frame rate had no slot for them (the pacing).
        dropped: frames not drawn because the writer thread fell behind.
        errors: frames lost because the writer could not be opened or refused them (logged once).
    """

    join_timeout_s = 10.0
    thread_name = "crackseg-overlay"

    def __init__(self, target: str, fps: float | None = None, queue_size: int = 4, every_frame: bool = False) -> None:
        super().__init__()
        if (fps is not None and not fps > 0) or queue_size < 1:  # NaN too
            raise OverlayError(f"--overlay-fps must be positive and the queue at least 1, got {fps} and {queue_size}")
        self.target = parse_overlay_target(target)
        self.fps = fps
        """The video's frame rate; ``None`` until measured when it follows the source."""
        self._pacer = None if every_frame else FramePacer(fps or DEFAULT_FPS)
        self._pending: list[tuple[int, Any]] = []  # (capture_ns, drawn BGR) while the rate is being measured
        self._queue: queue.Queue[tuple[Frame, MaskMessage] | threading.Event | None] = queue.Queue(maxsize=queue_size)
        self._writer: Any = None
        self._size: tuple[int, int] | None = None  # OpenCV's dsize: (width, height)
        self.written = 0
        self.skipped = 0
        self.dropped = 0
        self.errors = 0

    def _open_impl(self) -> None:
        """Check that the target can be written (folder, GStreamer support); the writer thread starts next."""
        import cv2

        if self.target.kind == "gstreamer" and not opencv_has_gstreamer(cv2):
            raise OverlayError(
                "--overlay to a stream needs OpenCV built with GStreamer, and this one is not "
                "(cv2.getBuildInformation()); write a file such as out.mp4 instead"
            )
        if self.target.kind == "file" and not Path(self.target.location).parent.is_dir():
            raise OverlayError(f"--overlay {self.target.location}: the folder does not exist")
        log.info("overlay video to %s", self.target.location)

    def send(self, message: MaskMessage) -> None:
        """Heartbeats carry no frame: nothing to draw."""

    def send_frame(self, frame: Frame, message: MaskMessage) -> None:
        """Queue a published frame for drawing if its capture time has a slot; never blocks (a full queue drops it)."""
        if self._pacer is not None and not self._pacer.admit(frame.capture_ns):
            self.skipped += 1
            return
        try:
            self._queue.put_nowait((frame, message))
        except queue.Full:
            self.dropped += 1

    def counters(self) -> dict[str, int]:
        return {
            "overlay_written": self.written,
            "overlay_skipped": self.skipped,
            "overlay_dropped": self.dropped,
            "overlay_errors": self.errors,
        }

    def flush(self, timeout_s: float) -> None:
        """Wait until every frame queued so far is written (or ``timeout_s`` passed), so ``written`` counts it."""
        if self._thread is None:
            return
        if not flush_writer(self._queue, timeout_s):
            log.warning("overlay output %s still writing after %.0f s", self.target.location, timeout_s)

    def _wake(self) -> None:
        """Draw and write what is queued, then end the thread."""
        self._queue.put(_END)

    def _close_impl(self) -> None:
        """Finish the video (its index is written now)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, threading.Event):  # a flush: everything queued before it is written
                self._write_pending()
                item.set()
                continue
            frame, message = item
            assert message.mask is not None and message.stats is not None
            lines = caption(message.frame_id, message.stats, message.pose)
            bgr = draw_overlay(frame.image, message.mask, message.stats, lines)
            if self.fps is not None:
                self._write(bgr)
                continue
            self._pending.append((frame.capture_ns, bgr))
            if len(self._pending) >= RATE_FRAMES:
                self._write_pending()
        self._write_pending()

    def _write_pending(self) -> None:
        """Fix the video's rate from the frames held so far (when it follows the source), then write them."""
        if not self._pending:
            return
        if self.fps is None:
            self.fps = measured_fps([capture_ns for capture_ns, _ in self._pending])
            log.info("overlay video at %.4g fps, the rate of the frames drawn", self.fps)
        for _, bgr in self._pending:
            self._write(bgr)
        self._pending.clear()

    def _write(self, bgr: Any) -> None:
        import cv2

        height, width = bgr.shape[:2]
        if self._size is None:
            self._size = (width, height)
            self._writer = self._open_writer(cv2, width, height)
        if self._writer is None:
            self.errors += 1
            return
        if (width, height) != self._size:
            bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(bgr)
        self.written += 1

    def _open_writer(self, cv2: Any, width: int, height: int) -> Any:
        if self.target.kind == "file":
            fourcc = cv2.VideoWriter_fourcc(*self.target.fourcc)
            writer = cv2.VideoWriter(self.target.location, cv2.CAP_FFMPEG, fourcc, self.fps, (width, height))
        else:
            writer = cv2.VideoWriter(self.target.location, cv2.CAP_GSTREAMER, 0, self.fps, (width, height))
        if not writer.isOpened():
            log.error("cannot open overlay output %s for %dx%d video: no overlay", self.target.location, width, height)
            return None
        return writer
