"""A synthetic crawl through a pipe with known truth: cracks on the wall at known chainage and clock position.

Cracks are ribbons on the pipe's unrolled wall (:mod:`.pipe`: ``(chainage, arc)`` metres, the arc clockwise
from the crown, looking downstream). A crawler drives along the axis at a fixed step per frame, with a
slow roll wobble, and reports its chainage and attitude as odometry does; frame ``i`` is rendered through
the camera model from the pipe's axis, looking along it.

The renderer uses the forward model only (wall -> camera frame -> pixel, OpenCV's ``projectPoints``),
each ribbon's outline densified on the wall and filled with sub-pixel precision; the inventory measures
with the inverse model (pixel -> ray -> wall). The two meet only in the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.runtime.inventory.camera import CameraModel
from crackseg.edge.runtime.inventory.flight import FlightFrame, GroundCrack, fill_outline, textured_frame
from crackseg.edge.runtime.inventory.pipe import PipePose
from crackseg.edge.runtime.pose import Attitude, Pose

__all__ = ["SyntheticCrawl", "WallCrack", "default_wall_cracks"]


@dataclass(frozen=True)
class WallCrack:
    """A crack on the wall, given as sewer inspectors give it: from (chainage m, clock hour) to (chainage, clock),
    a straight line on the unrolled wall (a helix on the pipe), and its width in metres."""

    start: tuple[float, float]
    end: tuple[float, float]
    width_m: float

    def on_wall(self, radius_m: float) -> GroundCrack:
        """The ribbon on the unrolled wall, ``(chainage, arc)`` metres."""
        arc = 2 * math.pi * radius_m / 12  # one clock hour along the wall
        return GroundCrack(((self.start[0], self.start[1] * arc), (self.end[0], self.end[1] * arc)), self.width_m)


def default_wall_cracks() -> tuple[WallCrack, ...]:
    """Five cracks along 10 m of pipe: longitudinal (along the pipe), circumferential (around it) and oblique,
    at clock positions from 9 (left) through 12 (crown) to 4; hours above 6 are given as negative (-3 is 9)."""
    return (
        WallCrack((3.0, 2.0), (3.9, 2.0), 0.03),  # longitudinal at 2 o'clock
        WallCrack((5.0, -3.0), (5.0, -1.0), 0.03),  # circumferential, 9 to 11 o'clock
        WallCrack((6.5, 0.0), (7.3, 0.0), 0.025),  # longitudinal at the crown
        WallCrack((8.5, 3.0), (9.2, 4.2), 0.03),  # oblique, 3 to 4 o'clock
        WallCrack((10.5, 1.0), (10.5, 2.2), 0.03),  # circumferential, 1 to 2 o'clock
    )


@dataclass(frozen=True)
class SyntheticCrawl:
    """A crawler driving along the axis of a pipe over :func:`default_wall_cracks` (or ``cracks``).

    Args:
        camera: the forward-looking camera that renders the frames.
        diameter_m: the pipe's diameter.
        frames: frames along the pipe.
        start_m: chainage of the first frame.
        step_m: chainage driven between frames.
        roll_deg: amplitude of the crawler's roll wobble.
        start_ns: capture time of frame 0; frames follow at ``period_ns``.
    """

    camera: CameraModel
    diameter_m: float = 0.6
    frames: int = 50
    start_m: float = 0.0
    step_m: float = 0.2
    roll_deg: float = 4.0
    cracks: tuple[WallCrack, ...] = field(default_factory=default_wall_cracks)
    start_ns: int = 1_700_000_000_000_000_000
    period_ns: int = 200_000_000

    def pose(self, index: int) -> Pose:
        """The crawler's pose at frame ``index``, as its odometry reports it (chainage and attitude)."""
        roll = self.roll_deg * math.sin(index * 0.45)
        return Pose(attitude=Attitude(roll, 0.0, 90.0), chainage_m=self.start_m + index * self.step_m)

    def mask(self, pose: Pose) -> NDArray[np.bool_]:
        """The cracks as the camera at ``pose`` sees them (True = crack)."""
        assert pose.chainage_m is not None and pose.attitude is not None
        where = PipePose(pose.chainage_m, pose.attitude.roll_deg, self.diameter_m / 2)
        canvas = np.zeros((self.camera.height, self.camera.width), np.uint8)
        for crack in self.cracks:
            in_camera = where.wall_to_camera(crack.on_wall(where.radius_m).outline())
            if np.any(in_camera[:, 2] <= 0.05):
                continue  # part of it beside or behind the camera
            fill_outline(canvas, self.camera.project(in_camera))
        return canvas.astype(bool)

    def render(self, index: int) -> FlightFrame:
        """Frame ``index``: a grey, speckled wall with dark cracks, its mask and its pose."""
        pose = self.pose(index)
        return textured_frame(index, self.start_ns + index * self.period_ns, self.mask(pose), pose, (120, 10, 40))

    def __iter__(self) -> Iterator[FlightFrame]:
        return (self.render(i) for i in range(self.frames))
