"""A crawler in a pipe: cracks on the pipe wall by chainage and clock position, not on flat ground.

The model (``crackseg run --pipe-diameter M``): the pipe is a straight **cylinder of diameter M**, and
the camera sits **on its axis looking along it**, in the direction of travel (chainage growing), image
top towards the crown when the crawler is level. The crawler's roll (odometry ``roll_deg``, when it
sends its attitude) turns the image about the axis; pitch and yaw in the pipe, the camera's offset from
the axis and the camera model's mount are not modelled. Flat-ground projection does not apply.

A pixel's ray ``(x, y, 1)`` (normalized camera coordinates) meets the wall, radius ``R``, at the axial
distance ``R / sqrt(x^2 + y^2)`` ahead of the camera: at chainage ``c + R / r`` when the camera is at
chainage ``c`` (the odometry's). Around the wall the position is an angle clockwise from the crown,
looking in the direction of travel, as sewer-inspection codes give it (EN 13508-2 and PACP clock
references: 12 o'clock is the crown, 3 the right-hand side, 6 the invert): the pixel's angle from image
up, clockwise, plus the crawler's roll.

Cracks are measured on the **unrolled wall**: ``(chainage, arc)`` metres, the arc along the wall from the
crown, clockwise, in ``[-pi R, pi R)`` (the seam at the invert). A cylinder unrolls without stretching,
so lengths, widths and areas on the unrolled wall are those on the wall, and association works there as
on the ground. A crack across the invert is split at the seam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.runtime.inventory.camera import CameraModel
from crackseg.edge.runtime.pose import Pose, PoseParts

__all__ = ["MAX_AXIAL_DIAMETERS", "PipePose", "clock_hour", "pipe_pose"]

MAX_AXIAL_DIAMETERS = 4.0
"""Pixels whose ray meets the wall further ahead than this many diameters are not placed: towards the vanishing
point a pixel spans ever more pipe (at 4 diameters, 16 diameters over the focal length in pixels: 3.6 cm of a
0.6 m pipe with a 268-pixel focal length). A crack further ahead is measured when the crawler comes closer."""


@dataclass(frozen=True)
class PipePose:
    """The camera on the pipe's axis: its chainage, the crawler's roll and the pipe's radius.

    Attributes:
        chainage_m: the camera's chainage.
        roll_deg: the crawler's roll (positive: right side down), turning the image about the axis.
        radius_m: half the pipe's diameter.
    """

    chainage_m: float
    roll_deg: float
    radius_m: float

    def surface_points(self, camera: CameraModel, pixels: NDArray[np.float64]) -> NDArray[np.float64]:
        """``Nx2`` (chainage, arc) metres where rays through ``Nx2`` pixels meet the wall; NaN near the
        vanishing point (further ahead than :data:`MAX_AXIAL_DIAMETERS` diameters)."""
        rays = camera.rays(pixels)
        r = np.hypot(rays[:, 0], rays[:, 1])
        with np.errstate(divide="ignore"):
            ahead = np.where(r > 0, self.radius_m / r, np.inf)
        ahead = np.where(ahead <= MAX_AXIAL_DIAMETERS * 2 * self.radius_m, ahead, np.nan)
        angle = np.arctan2(rays[:, 0], -rays[:, 1]) + math.radians(self.roll_deg)  # clockwise from the crown
        angle = (angle + math.pi) % (2 * math.pi) - math.pi
        return np.column_stack([self.chainage_m + ahead, angle * self.radius_m])

    def wall_to_camera(self, wall: NDArray[np.float64]) -> NDArray[np.float64]:
        """``Nx3`` camera-frame points (x right, y down, z forward) of ``Nx2`` (chainage, arc) wall points: the
        forward model the synthetic pipe renders with."""
        angle = wall[:, 1] / self.radius_m - math.radians(self.roll_deg)
        return np.column_stack(
            [self.radius_m * np.sin(angle), -self.radius_m * np.cos(angle), wall[:, 0] - self.chainage_m]
        )


def clock_hour(arc_m: float, radius_m: float) -> int:
    """The clock position, 1 to 12 (12: the crown, 3: the right-hand side looking downstream), of an arc."""
    hour = round(arc_m / radius_m / (2 * math.pi) * 12) % 12
    return 12 if hour == 0 else hour


def pipe_pose(pose: Pose, diameter_m: float) -> PipePose | None:
    """The camera's pose in a pipe of ``diameter_m``, or ``None`` without a current chainage. The roll is the
    odometry's when its attitude is present and current, else level."""
    if pose.chainage_m is None or pose.stale & PoseParts.CHAINAGE:
        return None
    level = pose.attitude is None or bool(pose.stale & PoseParts.ATTITUDE)
    roll = 0.0 if level or pose.attitude is None else pose.attitude.roll_deg
    return PipePose(pose.chainage_m, roll, diameter_m / 2)
