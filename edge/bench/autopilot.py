"""A simulated drone autopilot on loopback: the pose source of the bench's inspection run and of the pose tests.

:class:`LoopbackAutopilot` sends MAVLink with ``pymavlink`` from its own thread, as a flight controller
streams telemetry: ``GLOBAL_POSITION_INT`` and ``ATTITUDE`` (and, given a range, a downward
rangefinder's ``DISTANCE_SENSOR``) at ``rate_hz`` each, over UDP to a free port
on 127.0.0.1, where ``crackseg run --mavlink`` (a :class:`~crackseg.edge.runtime.pose.mavlink.MavlinkInput` on
:attr:`LoopbackAutopilot.url`) listens. The simulated drone flies due north at a constant speed, so the
position a frame should carry is known from its capture time (:meth:`LoopbackAutopilot.latitude_at`).
``pymavlink`` (``crackseg[pose]``) is imported when the autopilot opens.
"""

from __future__ import annotations

import math
import socket
import time
from typing import Any

from crackseg.edge.runtime.worker import Worker

__all__ = ["LoopbackAutopilot"]

_NS_PER_S = 1_000_000_000


def _free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackAutopilot(Worker):
    """Streams a simulated flight's position and attitude over MAVLink, from :meth:`open` to :meth:`close`.

    Args:
        rate_hz: messages per second of each type (autopilots stream these at 10-50 Hz).
        range_m: a downward rangefinder's reading, metres (sent as ``DISTANCE_SENSOR`` in cm), or ``None``.

    Attributes:
        url: the pymavlink connection string a receiver listens on (``udpin:127.0.0.1:PORT``); messages sent
            before a receiver binds it are lost, as on a real link.
        start_ns: when the flight started (wall clock, the frames' clock); set by :meth:`open`.
    """

    LAT0_DEG, LON0_DEG = 47.397742, 8.545594
    LAT_PER_S = 1e-4
    """Degrees of latitude flown per second: due north at about 11 m/s."""
    ALT_M, REL_ALT_M = 520.0, 35.0
    ROLL_DEG, PITCH_DEG, YAW_DEG = 0.0, -5.0, 30.0

    thread_name = "crackseg-autopilot"

    def __init__(self, rate_hz: float = 50.0, range_m: float | None = None) -> None:
        super().__init__()
        if rate_hz <= 0:
            raise ValueError(f"the autopilot's message rate must be positive, got {rate_hz}")
        self.rate_hz = rate_hz
        self.range_m = range_m
        self.url = f"udpin:127.0.0.1:{_free_udp_port()}"
        self.start_ns = 0
        self._connection: Any = None

    def latitude_at(self, t_ns: int) -> float:
        """The simulated drone's latitude at ``t_ns`` (ns since the Unix epoch)."""
        return self.LAT0_DEG + self.LAT_PER_S * (t_ns - self.start_ns) / _NS_PER_S

    def _open_impl(self) -> None:
        from pymavlink import mavutil

        self._connection = mavutil.mavlink_connection(self.url.replace("udpin:", "udpout:", 1), source_system=1)
        self.start_ns = time.time_ns()

    def _close_impl(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run(self) -> None:
        mav = self._connection.mav
        attitude = tuple(math.radians(a) for a in (self.ROLL_DEG, self.PITCH_DEG, self.YAW_DEG))
        while not self._stop.is_set():
            now = time.time_ns()
            boot_ms = (now - self.start_ns) // 1_000_000
            lat, lon = round(self.latitude_at(now) * 1e7), round(self.LON0_DEG * 1e7)
            alt_mm, rel_alt_mm = round(self.ALT_M * 1e3), round(self.REL_ALT_M * 1e3)
            mav.global_position_int_send(boot_ms, lat, lon, alt_mm, rel_alt_mm, 0, 0, 0, 0)
            mav.attitude_send(boot_ms, *attitude, 0, 0, 0)
            if self.range_m is not None:  # a lidar: 0.2-100 m span, laser type 0, id 0, facing down, no covariance
                mav.distance_sensor_send(boot_ms, 20, 10_000, round(self.range_m * 100), 0, 0, 25, 0)
            self._stop.wait(1 / self.rate_hz)
