"""The vehicle's pose at a frame's capture time, so that a crack can be found again after the run.

A pose has up to five parts, each from whatever source the vehicle has: a geographic ``position``
and the vehicle's ``attitude`` (MAVLink GLOBAL_POSITION_INT and ATTITUDE from a drone's autopilot), the
camera ``gimbal`` attitude (MAVLink, when a gimbal reports it), ``chainage``, the distance travelled
along a pipe or tunnel (a crawler's odometry, which may also send its attitude), and ``range``, a
downward rangefinder's distance to the ground (MAVLink DISTANCE_SENSOR). A part that no source
delivered is ``None``: never zeros. A part whose nearest sample lies too far from the capture time is
still reported (it is the best knowledge there is) but flagged in ``stale``; ``age_ms`` says how far.

:class:`~crackseg.edge.runtime.pose.track.PoseTrack` turns timestamped samples into a :class:`Pose` per frame;
``mavlink`` and ``odometry`` feed it from their own threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Any, NamedTuple

__all__ = ["NO_PARTS", "Attitude", "GeoPosition", "Pose", "PoseParts"]


class PoseParts(IntFlag):
    """Bit flags naming pose parts; the wire and the recording carry them as one byte."""

    POSITION = 1
    ATTITUDE = 2
    GIMBAL = 4
    CHAINAGE = 8
    RANGE = 16


NO_PARTS = PoseParts(0)


class GeoPosition(NamedTuple):
    """WGS84 position: degrees, altitude above mean sea level and above the home (take-off) point in metres."""

    lat_deg: float
    lon_deg: float
    alt_m: float
    rel_alt_m: float


class Attitude(NamedTuple):
    """Euler angles in degrees (aerospace convention, as MAVLink ATTITUDE: roll, pitch, yaw from north)."""

    roll_deg: float
    pitch_deg: float
    yaw_deg: float


@dataclass(frozen=True)
class Pose:
    """The pose at one capture time; ``None`` parts had no source or no sample yet.

    Attributes:
        position: where the vehicle was.
        attitude: how the vehicle was oriented.
        gimbal: how the camera gimbal was oriented.
        chainage_m: distance along the pipe or tunnel, metres.
        range_m: a downward rangefinder's distance to the ground along the body's down axis, metres.
        stale: parts whose nearest sample is more than the track's ``max_age_s`` from the capture time.
        age_ms: the largest distance in time, over the present parts, between the capture time and the
            nearest sample of that part.
    """

    position: GeoPosition | None = None
    attitude: Attitude | None = None
    gimbal: Attitude | None = None
    chainage_m: float | None = None
    range_m: float | None = None
    stale: PoseParts = NO_PARTS
    age_ms: int = 0

    @property
    def present(self) -> PoseParts:
        parts = NO_PARTS
        for part, value in (
            (PoseParts.POSITION, self.position),
            (PoseParts.ATTITUDE, self.attitude),
            (PoseParts.GIMBAL, self.gimbal),
            (PoseParts.CHAINAGE, self.chainage_m),
            (PoseParts.RANGE, self.range_m),
        ):
            if value is not None:
                parts |= part
        return parts

    def to_dict(self) -> dict[str, Any]:
        """JSON terms: parts as objects (``None`` when absent), ``stale`` as a list of part names."""
        return {
            "position": None if self.position is None else self.position._asdict(),
            "attitude": None if self.attitude is None else self.attitude._asdict(),
            "gimbal": None if self.gimbal is None else self.gimbal._asdict(),
            "chainage_m": self.chainage_m,
            "range_m": self.range_m,
            "stale": [str(part.name).lower() for part in PoseParts if part in self.stale],
            "age_ms": self.age_ms,
        }

    def describe(self) -> str:
        """One human line, e.g. ``STALE position 900 ms old  lat 47.3977 lon 8.5456  12.0 m above home  yaw 91.0``.

        The height is above the home (take-off) point, as the autopilot reports it; the GeoJSON's ``z`` and the
        ``alt_m`` field are above mean sea level.

        A stale pose says so first, with its age, so that a line cut short still carries the warning.
        """
        words = []
        if self.stale:
            words.append(f"STALE {','.join(self.to_dict()['stale'])} {self.age_ms} ms old")
        if self.position is not None:
            p = self.position
            words += [f"lat {p.lat_deg:.6f} lon {p.lon_deg:.6f}", f"{p.rel_alt_m:.1f} m above home"]
        if self.chainage_m is not None:
            words.append(f"chainage {self.chainage_m:.2f} m")
        if self.range_m is not None:
            words.append(f"range {self.range_m:.2f} m")
        if self.attitude is not None:
            a = self.attitude
            words.append(f"roll {a.roll_deg:.1f} pitch {a.pitch_deg:.1f} yaw {a.yaw_deg:.1f}")
        if self.gimbal is not None:
            words.append(f"gimbal pitch {self.gimbal.pitch_deg:.1f}")
        return "  ".join(words) or "no pose"
