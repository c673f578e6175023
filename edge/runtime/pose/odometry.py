"""A crawler's pose from its odometry (``crackseg run --odometry URI``): chainage and orientation.

Each sample is one JSON object, on one ZeroMQ message or one line of a serial stream::

    {"chainage_m": 12.35, "roll_deg": 0.4, "pitch_deg": -1.2, "yaw_deg": 87.0, "t_ns": 1700000000000000000}

``chainage_m`` (distance along the pipe or tunnel) is required; the three angles are optional but go
together (the ``attitude`` part); ``t_ns`` is when the odometry was measured, in ns since the Unix
epoch, if the crawler's clock is synchronised with this computer's (else leave it out: the receive
time is used). A malformed sample is skipped and counted, with one warning.

``URI`` is a ZeroMQ endpoint to connect a ``SUB`` socket to (``tcp://``, ``ipc://``) or a serial port (a
device path or a pyserial URL). Framing:

- ZeroMQ, either of the two usual framings, subscribed by the topic (``crackseg/odometry`` by default):
  a two-part message ``[topic, json]`` (what ``socket.send_multipart`` and ROS-style bridges send), or a
  single frame ``topic + json`` (the topic as a prefix, no separator). The JSON is UTF-8, one object.
- Serial: one JSON object per line (``\n``-terminated, UTF-8).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.runtime.pose import PoseParts
from crackseg.edge.runtime.pose.track import PoseTrack
from crackseg.edge.runtime.worker import Worker

__all__ = ["DEFAULT_ODOMETRY_TOPIC", "OdometryError", "OdometryInput", "parse_odometry"]

log = logging.getLogger(__name__)

DEFAULT_ODOMETRY_TOPIC = b"crackseg/odometry"
_ZMQ_SCHEMES = ("tcp://", "ipc://", "inproc://")
_POLL_S = 0.1
_ANGLES = ("roll_deg", "pitch_deg", "yaw_deg")


class OdometryError(CracksegError):
    """The odometry input cannot be opened, or a sample cannot be parsed."""


def parse_odometry(text: str | bytes) -> tuple[int | None, float, tuple[float, float, float] | None]:
    """``(t_ns or None, chainage_m, (roll, pitch, yaw) or None)`` from one sample; raises :class:`OdometryError`."""
    try:
        sample = json.loads(text)
        chainage = float(sample["chainage_m"])
        present = [key for key in _ANGLES if key in sample]
        if present and len(present) != len(_ANGLES):
            raise OdometryError(f"odometry angles come as a set of {', '.join(_ANGLES)}; got only {present}")
        angles = (float(sample["roll_deg"]), float(sample["pitch_deg"]), float(sample["yaw_deg"])) if present else None
        t_ns = int(sample["t_ns"]) if "t_ns" in sample else None
    except (ValueError, TypeError, KeyError) as exc:
        raise OdometryError(f"malformed odometry sample {text[:80]!r}: {exc!r}") from None
    return t_ns, chainage, angles


class OdometryInput(Worker):
    """Feeds a :class:`PoseTrack` from a ZeroMQ topic or a serial line, on its own thread.

    Args:
        uri: ZeroMQ endpoint or serial port (see the module docstring).
        track: where samples go.
        topic: ZeroMQ topic prefix (ignored on serial).
        baud: serial baud rate (ignored on ZeroMQ).

    Attributes:
        received: samples recorded.
        malformed: samples skipped because they did not parse.
        last_sample_s: ``time.monotonic()`` of the last sample recorded (``None`` before the first).
    """

    thread_name = "crackseg-odometry"

    def __init__(self, uri: str, track: PoseTrack, topic: bytes = DEFAULT_ODOMETRY_TOPIC, baud: int = 115200) -> None:
        super().__init__()
        self.uri = uri
        self.track = track
        self.topic = topic
        self.baud = baud
        self.received = 0
        self.malformed = 0
        self.last_sample_s: float | None = None
        self._transport: Any = None
        self._context: Any = None
        self._read: Callable[[], bytes | None] = self._read_serial

    @property
    def feed_name(self) -> str:
        return f"odometry {self.uri}"

    @property
    def is_zmq(self) -> bool:
        return self.uri.startswith(_ZMQ_SCHEMES)

    def _open_impl(self) -> None:
        if self.is_zmq:
            self._open_zmq()
            self._read = self._read_zmq
        else:
            self._open_serial()
            self._read = self._read_serial
        log.info("pose from odometry %s", self.uri)

    def _open_zmq(self) -> None:
        try:  # imported here, not through the sinks: pose sits below them (the wire carries poses)
            import zmq
        except ImportError as exc:
            raise OdometryError("pyzmq is needed to read odometry over ZeroMQ: pip install 'crackseg[edge]'") from exc
        self._context = zmq.Context()
        socket = self._context.socket(zmq.SUB)
        socket.setsockopt(zmq.SUBSCRIBE, self.topic)
        socket.setsockopt(zmq.RCVTIMEO, int(_POLL_S * 1000))
        try:
            socket.connect(self.uri)
        except zmq.ZMQError as exc:
            socket.close(linger=0)
            raise OdometryError(f"cannot connect to odometry {self.uri}: {exc}") from None
        self._transport = socket

    def _open_serial(self) -> None:
        import serial

        try:
            self._transport = serial.serial_for_url(self.uri, baudrate=self.baud, timeout=_POLL_S)
        except (serial.SerialException, ValueError) as exc:
            raise OdometryError(f"cannot open odometry port {self.uri}: {exc}") from None

    def _read_zmq(self) -> bytes | None:
        import zmq

        try:
            parts: list[bytes] = self._transport.recv_multipart()
        except zmq.Again:
            return None
        if len(parts) > 1:  # [topic, json]: the topic frame matched the subscription, the last frame is the sample
            return parts[-1]
        return parts[0][len(self.topic) :]  # topic + json in one frame

    def _read_serial(self) -> bytes | None:
        line: bytes = self._transport.readline()
        return line.strip() or None

    def _close_impl(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            log.info("odometry samples: %d received, %d malformed", self.received, self.malformed)
        if self._context is not None:
            self._context.term()
            self._context = None

    def _run(self) -> None:
        while not self._stop.is_set():
            text = self._read()
            if text is None:
                continue
            received_ns = time.time_ns()
            try:
                t_ns, chainage, angles = parse_odometry(text)
            except OdometryError as exc:
                if not self.malformed:
                    log.warning("%s; skipping such samples", exc)
                self.malformed += 1
                continue
            t_ns = received_ns if t_ns is None else t_ns
            self.track.add(PoseParts.CHAINAGE, t_ns, (chainage,))
            if angles is not None:
                self.track.add(PoseParts.ATTITUDE, t_ns, angles)
            self.received += 1
            self.last_sample_s = time.monotonic()
