"""A synthetic survey flight with known truth: cracks at known places on the ground, seen from the air.

Cracks are ribbons (a centre line in north/east metres around a site origin, and a width) on flat
ground. A vehicle flies a straight track at a fixed height, with a slow wobble of roll, pitch and yaw,
and optionally a gimbal; frame ``i`` is rendered through the camera model at the pose of that moment
and comes with that pose, as a MAVLink autopilot would report it.

The renderer uses only the camera's forward model (world -> pixel, OpenCV's ``projectPoints``): each
ribbon's outline is densified on the ground, projected, and filled with sub-pixel precision, so
lens distortion and perspective shape the crack as a real lens would. The inventory measures with the
inverse model (pixel -> ray -> ground); the two meet only in the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.runtime.inventory.camera import CameraModel
from crackseg.edge.runtime.inventory.ground import TangentPlane, camera_pose
from crackseg.edge.runtime.inventory.measure import densify
from crackseg.edge.runtime.pose import Attitude, GeoPosition, Pose

__all__ = ["FlightFrame", "GroundCrack", "SyntheticFlight", "default_cracks"]

_SHIFT = 4
_OUTLINE_STEP_M = 0.1


@dataclass(frozen=True)
class GroundCrack:
    """A crack on the ground: its centre line (``Nx2`` north, east metres from the site origin) and width."""

    line_ne: tuple[tuple[float, float], ...]
    width_m: float

    @property
    def length_m(self) -> float:
        """Centre line length plus the width (a ribbon with square ends, as rendered)."""
        points = np.array(self.line_ne)
        return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()) + self.width_m

    def outline(self) -> NDArray[np.float64]:
        """The ribbon's outline on the ground, densified every ``_OUTLINE_STEP_M``; ends squared off."""
        line = np.array(self.line_ne, np.float64)
        tangents = np.diff(line, axis=0)
        tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
        line = line.copy()
        line[0] -= tangents[0] * self.width_m / 2  # square ends half a width beyond the centre line
        line[-1] += tangents[-1] * self.width_m / 2
        normals = np.column_stack([-tangents[:, 1], tangents[:, 0]])
        vertex = np.vstack([normals[:1], normals[:-1] + normals[1:], normals[-1:]])
        vertex /= np.linalg.norm(vertex, axis=1, keepdims=True)
        cos_half = np.vstack([[1.0], (normals[:-1] * vertex[1:-1]).sum(axis=1, keepdims=True), [1.0]])
        offset = vertex * (self.width_m / 2 / cos_half)  # mitred joins keep the width constant
        ring = np.vstack([line + offset, (line - offset)[::-1], line[:1] + offset[:1]])
        return densify(ring, _OUTLINE_STEP_M)


def default_cracks() -> tuple[GroundCrack, ...]:
    """Four cracks of 3 to 13 m along a 60 m strip: straight, bent, curved and short, 10-20 cm wide."""
    return (
        GroundCrack(((5.0, -6.0), (12.0, 2.0)), 0.12),
        GroundCrack(((20.0, 4.0), (24.0, 6.0), (30.0, 5.0)), 0.15),
        GroundCrack(((38.0, -8.0), (40.0, -4.0), (41.0, 0.0), (44.0, 3.0)), 0.2),
        GroundCrack(((52.0, 6.0), (53.0, 9.0)), 0.15),
    )


@dataclass(frozen=True)
class FlightFrame:
    """One rendered frame: RGB image, crack mask, the pose at capture, and the capture time."""

    frame_id: int
    capture_ns: int
    image: NDArray[np.uint8]
    mask: NDArray[np.bool_]
    pose: Pose


def fill_outline(canvas: NDArray[np.uint8], pixels: NDArray[np.float64]) -> None:
    """Fills one crack's projected outline into ``canvas`` with sub-pixel precision (pixel centres at .0)."""
    import cv2

    fixed = np.round((pixels + 0.5) * (1 << _SHIFT) - 0.5).astype(np.int32)
    cv2.fillPoly(canvas, [fixed.reshape(-1, 1, 2)], 1, cv2.LINE_8, _SHIFT)


def textured_frame(
    index: int, capture_ns: int, mask: NDArray[np.bool_], pose: Pose, surface: tuple[float, float, float]
) -> FlightFrame:
    """Frame ``index`` of a synthetic survey: a grey surface speckled around ``surface`` = (mean, spread), its
    cracks at grey level ``surface[2]``."""
    mean, spread, crack_level = surface
    texture = np.random.default_rng(index).normal(mean, spread, mask.shape).clip(0, 255)
    texture[mask] = crack_level
    image = np.repeat(texture.astype(np.uint8)[..., None], 3, axis=2)
    return FlightFrame(index, capture_ns, image, mask, pose)


@dataclass(frozen=True)
class SyntheticFlight:
    """A straight survey track over :func:`default_cracks` (or ``cracks``).

    Args:
        camera: the camera that renders the frames.
        height_m: flight height above the ground.
        frames: frames along the track.
        start_ne: where the track starts (north, east metres from the site origin).
        step_m: distance flown between frames, along ``heading_deg``.
        heading_deg: course and nominal yaw.
        wobble_deg: amplitude of the roll, pitch and yaw wobble (yaw twice as large).
        gimbal: a stabilized gimbal's attitude (roll, pitch world frame; yaw relative), or ``None``.
        origin: site origin (lat, lon) in degrees and the ground's altitude above mean sea level.
        start_ns: capture time of frame 0; frames follow at ``period_ns``.
    """

    camera: CameraModel
    height_m: float = 30.0
    frames: int = 40
    start_ne: tuple[float, float] = (-15.0, 0.0)
    step_m: float = 2.0
    heading_deg: float = 0.0
    wobble_deg: float = 3.0
    gimbal: Attitude | None = None
    cracks: tuple[GroundCrack, ...] = field(default_factory=default_cracks)
    origin: tuple[float, float, float] = (47.397742, 8.545594, 488.0)
    start_ns: int = 1_700_000_000_000_000_000
    period_ns: int = 500_000_000

    @property
    def site(self) -> TangentPlane:
        return TangentPlane(self.origin[0], self.origin[1])

    def pose(self, index: int) -> Pose:
        """The vehicle's pose at frame ``index``, as the autopilot reports it."""
        course = math.radians(self.heading_deg)
        north = self.start_ne[0] + index * self.step_m * math.cos(course)
        east = self.start_ne[1] + index * self.step_m * math.sin(course)
        lon, lat = self.site.to_lonlat(np.array([[north, east]]))[0]
        phase = index * 0.37
        attitude = Attitude(
            self.wobble_deg * math.sin(phase),
            self.wobble_deg * math.cos(1.3 * phase),
            (self.heading_deg + 2 * self.wobble_deg * math.sin(0.7 * phase) + 180) % 360 - 180,
        )
        position = GeoPosition(float(lat), float(lon), self.origin[2] + self.height_m, self.height_m)
        return Pose(position=position, attitude=attitude, gimbal=self.gimbal)

    def mask(self, pose: Pose) -> NDArray[np.bool_]:
        """The cracks as the camera at ``pose`` sees them (True = crack)."""
        where = camera_pose(pose, self.camera, self.site)
        assert where is not None, "a synthetic pose has position, attitude and height"
        canvas = np.zeros((self.camera.height, self.camera.width), np.uint8)
        for crack in self.cracks:
            ground = crack.outline()
            ned = np.column_stack([ground[:, 0] - where.north_m, ground[:, 1] - where.east_m])
            ned = np.column_stack([ned, np.full(len(ned), where.height_m)])
            in_camera = ned @ where.rotation  # rows: rotation.T @ p, NED -> camera axes
            if np.any(in_camera[:, 2] <= 0.1):
                continue  # part of it behind the camera: not in a downward view
            pixels = self.camera.project(in_camera)
            if np.all((pixels < -1000) | (pixels > 1000 + max(self.camera.width, self.camera.height))):
                continue
            fill_outline(canvas, pixels)
        return canvas.astype(bool)

    def render(self, index: int) -> FlightFrame:
        """Frame ``index``: a grey, speckled ground with dark cracks, its mask and its pose."""
        pose = self.pose(index)
        return textured_frame(index, self.start_ns + index * self.period_ns, self.mask(pose), pose, (140, 12, 45))

    def __iter__(self) -> Iterator[FlightFrame]:
        return (self.render(i) for i in range(self.frames))
