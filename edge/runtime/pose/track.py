"""Timestamped pose samples, and the pose at a frame's capture time.

Pose sources (``mavlink``, ``odometry``) add samples from their own threads as they arrive, each part
at its own rate; the publish stage asks :meth:`PoseTrack.at` for the capture time of each frame, one
inference after capture, when the samples around that moment have usually arrived.

For each part, ``at(t)`` takes the samples just before and just after ``t``: with both, it interpolates
linearly (angles along the shorter arc); with one, it holds that sample's value. The part's age is the
distance from ``t`` to the nearer of the samples used; a part older than ``max_age_s`` is stale. Stale
parts keep their (held or interpolated) value, flagged, and a part never sampled stays ``None``: the
track never invents a value it has no sample for.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

from crackseg.edge.runtime.pose import NO_PARTS, Attitude, GeoPosition, Pose, PoseParts

__all__ = ["PoseTrack"]

_ANGLE_PARTS = PoseParts.ATTITUDE | PoseParts.GIMBAL
_SIZES = {PoseParts.POSITION: 4, PoseParts.ATTITUDE: 3, PoseParts.GIMBAL: 3, PoseParts.CHAINAGE: 1, PoseParts.RANGE: 1}


def _wrap_deg(angle: float) -> float:
    """``angle`` in [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def _lerp(a: tuple[float, ...], b: tuple[float, ...], f: float, angles: bool) -> tuple[float, ...]:
    if angles:
        return tuple(_wrap_deg(x + f * _wrap_deg(y - x)) for x, y in zip(a, b, strict=True))
    return tuple(x + f * (y - x) for x, y in zip(a, b, strict=True))


class _Series:
    """One part's samples in time order, the last ``history_ns`` of them."""

    def __init__(self, history_ns: int) -> None:
        self.times: list[int] = []
        self.values: list[tuple[float, ...]] = []
        self._history_ns = history_ns

    def add(self, t_ns: int, values: tuple[float, ...]) -> None:
        i = bisect.bisect_right(self.times, t_ns)  # samples normally arrive in order: i is the end
        self.times.insert(i, t_ns)
        self.values.insert(i, values)
        cut = bisect.bisect_left(self.times, self.times[-1] - self._history_ns)
        if cut:
            del self.times[:cut], self.values[:cut]

    def at(self, t_ns: int, angles: bool) -> tuple[tuple[float, ...], int]:
        """The value at ``t_ns`` and its age in ns (distance to the nearer sample used); needs one sample."""
        i = bisect.bisect_right(self.times, t_ns)
        if i == 0:
            return self.values[0], self.times[0] - t_ns
        if i == len(self.times):
            return self.values[-1], t_ns - self.times[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        fraction = (t_ns - t0) / (t1 - t0)
        return _lerp(self.values[i - 1], self.values[i], fraction, angles), min(t_ns - t0, t1 - t_ns)


class PoseTrack:
    """Pose samples from any number of source threads, and the pose at a capture time (see the module docstring).

    Args:
        max_age_s: a part whose nearest sample is further than this from the capture time is stale.
        history_s: samples older than this (relative to a part's newest) are forgotten.
    """

    def __init__(self, max_age_s: float = 0.5, history_s: float = 30.0) -> None:
        if max_age_s <= 0 or history_s <= 0:
            raise ValueError(f"pose ages must be positive, got max age {max_age_s} s and history {history_s} s")
        self.max_age_ns = int(max_age_s * 1e9)
        self._series = {part: _Series(int(history_s * 1e9)) for part in _SIZES}
        self._lock = threading.Lock()

    def add(self, part: PoseParts, t_ns: int, values: Sequence[float]) -> None:
        """Record one sample of ``part`` (:class:`~crackseg.edge.runtime.pose.Pose` lists values and units)."""
        if len(values) != _SIZES[part]:
            raise ValueError(f"a {part.name} sample has {_SIZES[part]} values, got {len(values)}")
        with self._lock:
            self._series[part].add(t_ns, tuple(float(v) for v in values))

    def at(self, t_ns: int) -> Pose:
        """The pose at ``t_ns`` (ns since the Unix epoch); parts never sampled are ``None``."""
        found: dict[PoseParts, tuple[float, ...]] = {}
        stale, oldest_ns = NO_PARTS, 0
        with self._lock:
            for part, series in self._series.items():
                if not series.times:
                    continue
                found[part], age_ns = series.at(t_ns, angles=part in _ANGLE_PARTS)
                oldest_ns = max(oldest_ns, age_ns)
                if age_ns > self.max_age_ns:
                    stale |= part
        chainage, distance = found.get(PoseParts.CHAINAGE), found.get(PoseParts.RANGE)
        return Pose(
            position=GeoPosition(*found[PoseParts.POSITION]) if PoseParts.POSITION in found else None,
            attitude=Attitude(*found[PoseParts.ATTITUDE]) if PoseParts.ATTITUDE in found else None,
            gimbal=Attitude(*found[PoseParts.GIMBAL]) if PoseParts.GIMBAL in found else None,
            chainage_m=chainage[0] if chainage is not None else None,
            range_m=distance[0] if distance is not None else None,
            stale=stale,
            age_ms=round(oldest_ns / 1e6),
        )
