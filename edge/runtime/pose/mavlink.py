"""A drone's pose from its autopilot over MAVLink (``crackseg run --mavlink udpin:0.0.0.0:14550``).

Reads, with ``pymavlink`` on its own thread:

- ``GLOBAL_POSITION_INT``: latitude and longitude (degE7), altitude above mean sea level and above
  home (mm) -> the ``position`` part;
- ``ATTITUDE``: roll, pitch, yaw (rad) -> ``attitude``;
- the camera gimbal, if one reports: ``GIMBAL_DEVICE_ATTITUDE_STATUS`` (gimbal protocol v2, a
  quaternion) or ``MOUNT_STATUS`` (ArduPilot's older mount message, centidegrees) -> ``gimbal``;
- a downward rangefinder, if one reports: ``DISTANCE_SENSOR`` with orientation
  ``MAV_SENSOR_ROTATION_PITCH_270`` (25, facing down) and ``current_distance`` (cm) inside its
  ``min_distance``..``max_distance`` -> ``range`` in metres. Other orientations (obstacle sensors) and
  readings outside the sensor's span (ArduPilot reports ``max_distance + 1`` cm for no return) are ignored.
  The inventory prefers it to the altitude above home for the height above ground (corrected for tilt).

Samples are stamped with the time they are received on this computer, the clock frames are stamped
with: on a serial or local UDP link the transport adds about a millisecond, well inside the track's
staleness limit, and no mapping from the autopilot's boot clock is needed. The connection string is
pymavlink's: ``udpin:HOST:PORT`` (listen), ``udpout:HOST:PORT``, ``tcp:HOST:PORT``, or a serial device
(``/dev/ttyACM0``, with ``baud``). MAVSDK's ``udp://:14540`` form is refused with the pymavlink spelling
(:func:`mavsdk_hint`). ``pymavlink`` is imported only when a MAVLink input opens.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from typing import Any

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.runtime.pose import PoseParts
from crackseg.edge.runtime.pose.track import PoseTrack
from crackseg.edge.runtime.worker import Worker

__all__ = ["MAVLINK_MESSAGES", "MavlinkError", "MavlinkInput", "mavsdk_hint"]

log = logging.getLogger(__name__)

MAVLINK_MESSAGES = (
    "GLOBAL_POSITION_INT", "ATTITUDE", "GIMBAL_DEVICE_ATTITUDE_STATUS", "MOUNT_STATUS", "DISTANCE_SENSOR",
)  # fmt: skip
DOWNWARD = 25
"""``MAV_SENSOR_ROTATION_PITCH_270``: a distance sensor facing down, the only one that measures height."""
_RECV_TIMEOUT_S = 0.1


class MavlinkError(CracksegError):
    """pymavlink is missing or the MAVLink connection cannot be opened."""


def _import_mavutil() -> Any:
    try:
        from pymavlink import mavutil
    except ImportError as exc:
        raise MavlinkError("--mavlink needs pymavlink: pip install 'crackseg[pose]'") from exc
    return mavutil


def pose_sample(message: Any) -> tuple[PoseParts, tuple[float, ...]] | None:
    """The pose part and values (degrees, metres) a MAVLink message carries, or ``None`` for other messages."""
    kind = message.get_type()
    if kind == "GLOBAL_POSITION_INT":
        return PoseParts.POSITION, (message.lat / 1e7, message.lon / 1e7, message.alt / 1e3, message.relative_alt / 1e3)
    if kind == "ATTITUDE":
        return PoseParts.ATTITUDE, tuple(math.degrees(a) for a in (message.roll, message.pitch, message.yaw))
    if kind == "GIMBAL_DEVICE_ATTITUDE_STATUS":
        from pymavlink.quaternion import Quaternion

        return PoseParts.GIMBAL, tuple(math.degrees(a) for a in Quaternion(list(message.q)).euler)
    if kind == "MOUNT_STATUS":  # pointing_a/b/c: pitch, roll, yaw in centidegrees
        return PoseParts.GIMBAL, (message.pointing_b / 100, message.pointing_a / 100, message.pointing_c / 100)
    if kind == "DISTANCE_SENSOR":
        if (
            message.orientation != DOWNWARD
            or not message.min_distance <= message.current_distance <= message.max_distance
        ):
            return None
        return PoseParts.RANGE, (message.current_distance / 100,)
    return None


_MAVSDK_SCHEMES = {
    "udp": "udpin",
    "udpin": "udpin",
    "udpout": "udpout",
    "tcp": "tcp",
    "tcpin": "tcpin",
    "tcpout": "tcp",
}


def mavsdk_hint(url: str) -> str | None:
    """For a MAVSDK-style URL (``udp://:14540``, ``udpin://0.0.0.0:14540``, ``serial:///dev/ttyACM0:57600``), the
    pymavlink spelling to use instead; ``None`` for anything else. pymavlink would read ``udp://host`` as a
    host name and fail with a DNS error."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if scheme == "serial":
        device, _, baud = rest.rpartition(":") if rest.count(":") else (rest, "", "")
        return f"that is MAVSDK's form; pymavlink takes the device alone: --mavlink {device or rest}" + (
            f" --mavlink-baud {baud}" if baud.isdigit() else ""
        )
    if scheme not in _MAVSDK_SCHEMES:
        return None
    host, _, port = rest.rpartition(":")
    host = host or "0.0.0.0"
    listen = " (listen for the autopilot)" if _MAVSDK_SCHEMES[scheme] == "udpin" else ""
    return f"that is MAVSDK's form; pymavlink's is {_MAVSDK_SCHEMES[scheme]}:{host}:{port}{listen}"


class MavlinkInput(Worker):
    """Feeds a :class:`PoseTrack` from a MAVLink connection, on its own thread, from :meth:`open` to :meth:`close`.

    Args:
        url: pymavlink connection string (see the module docstring).
        track: where samples go.
        baud: serial baud rate (ignored for network links).

    Attributes:
        received: samples recorded, by MAVLink message type.
        last_sample_s: ``time.monotonic()`` of the last sample recorded (``None`` before the first).
    """

    thread_name = "crackseg-mavlink"

    def __init__(self, url: str, track: PoseTrack, baud: int = 57600) -> None:
        super().__init__()
        self.url = url
        self.track = track
        self.baud = baud
        self.received: Counter[str] = Counter()
        self.last_sample_s: float | None = None
        self._connection: Any = None

    @property
    def feed_name(self) -> str:
        return f"MAVLink {self.url}"

    def _open_impl(self) -> None:
        hint = mavsdk_hint(self.url)
        if hint:
            raise MavlinkError(f"cannot open MAVLink connection {self.url!r}: {hint}")
        mavutil = _import_mavutil()
        try:
            self._connection = mavutil.mavlink_connection(self.url, baud=self.baud, source_system=255)
        except (OSError, ValueError, OverflowError) as exc:  # bad devices and addresses; a port over 65535
            raise MavlinkError(f"cannot open MAVLink connection {self.url!r}: {exc}") from None
        log.info("pose from MAVLink %s", self.url)

    def _close_impl(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            log.info("MAVLink pose samples: %s", dict(self.received) or "none received")

    def _run(self) -> None:
        wanted = list(MAVLINK_MESSAGES)  # recv_match takes a list or set; it would wrap a tuple as one name
        while not self._stop.is_set():
            message = self._connection.recv_match(type=wanted, blocking=True, timeout=_RECV_TIMEOUT_S)
            if message is None:
                continue
            sample = pose_sample(message)
            if sample is not None:
                self.track.add(sample[0], time.time_ns(), sample[1])
                self.received[message.get_type()] += 1
                self.last_sample_s = time.monotonic()
