"""From pixels to the ground: the camera's orientation, the ground plane, and lon/lat on it.

Frames (all right-handed): the camera's is OpenCV's (x right, y down, z along the optical axis); the
gimbal's and the body's are aerospace (x forward, y right, z down); the world's is local NED (north,
east, down). Angles are MAVLink's Euler angles in degrees, applied yaw, then pitch, then roll.

Where the camera points:

* a gimbal reported its attitude: roll and pitch are in the world frame (a stabilized gimbal) and yaw
  is relative to the vehicle's heading (follow mode, the default of gimbal protocol v2 and of ArduPilot
  mounts), so the camera's yaw is the vehicle's yaw plus the gimbal's;
* no gimbal: the camera is fixed to the body at the camera model's mount (default: nadir).

The ground is a horizontal plane at the take-off altitude (flat terrain), ``height`` metres below the
camera: the autopilot's altitude above home, or a downward rangefinder's range corrected for tilt.
Positions on it are north/east metres in a local tangent plane at an origin; :class:`TangentPlane`
converts them to and from WGS84 lon/lat with the ellipsoid's radii of curvature at the origin (an
equirectangular approximation: its error grows with the square of the distance, under 1 cm within
1 km; no projection library is needed for an inspection site).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.runtime.inventory.camera import CameraModel
from crackseg.edge.runtime.pose import Pose, PoseParts

__all__ = ["CameraPose", "TangentPlane", "camera_pose", "euler_matrix", "ground_points", "height_above_ground"]

_WGS84_A = 6378137.0
_WGS84_E2 = 6.69437999014e-3
_CAMERA_TO_GIMBAL = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""Camera axes (right, down, forward) expressed in gimbal axes (forward, right, down)."""


def euler_matrix(roll_deg: float, pitch_deg: float, yaw_deg: float) -> NDArray[np.float64]:
    """Rotation from a body frame to NED for aerospace Euler angles: ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    r, p, y = (math.radians(a) for a in (roll_deg, pitch_deg, yaw_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    rotation: NDArray[np.float64] = rz @ ry @ rx
    return rotation


@dataclass(frozen=True)
class TangentPlane:
    """North/east metres around an origin on the WGS84 ellipsoid (see the module docstring)."""

    lat_deg: float
    lon_deg: float

    @property
    def _radii(self) -> tuple[float, float]:
        """Metres per radian of latitude (meridian) and of longitude (parallel) at the origin."""
        s = math.sin(math.radians(self.lat_deg))
        w = math.sqrt(1 - _WGS84_E2 * s * s)
        meridian = _WGS84_A * (1 - _WGS84_E2) / w**3
        parallel = _WGS84_A / w * math.cos(math.radians(self.lat_deg))
        return meridian, parallel

    def to_ne(self, lat_deg: NDArray[np.float64] | float, lon_deg: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """``Nx2`` (north, east) metres of points given in degrees."""
        meridian, parallel = self._radii
        north = np.radians(np.asarray(lat_deg, np.float64) - self.lat_deg) * meridian
        east = np.radians(np.asarray(lon_deg, np.float64) - self.lon_deg) * parallel
        return np.column_stack([np.atleast_1d(north), np.atleast_1d(east)])

    def to_lonlat(self, ne: NDArray[np.float64]) -> NDArray[np.float64]:
        """``Nx2`` (lon, lat) degrees, GeoJSON's order, of ``Nx2`` (north, east) metres."""
        meridian, parallel = self._radii
        ne = np.asarray(ne, np.float64).reshape(-1, 2)
        lon = self.lon_deg + np.degrees(ne[:, 1] / parallel)
        return np.column_stack([lon, self.lat_deg + np.degrees(ne[:, 0] / meridian)])


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is and how it points: NED position (metres, the ground at down = 0) and rotation.

    Attributes:
        north_m: camera position north of the plane's origin.
        east_m: camera position east of the plane's origin.
        height_m: camera height above the ground plane.
        rotation: 3x3 rotation from camera axes to NED.
    """

    north_m: float
    east_m: float
    height_m: float
    rotation: NDArray[np.float64]

    def surface_points(self, camera: CameraModel, pixels: NDArray[np.float64]) -> NDArray[np.float64]:
        """:func:`ground_points`: the surface a crack is measured on is the ground."""
        return ground_points(camera, self, pixels)


def height_above_ground(pose: Pose, rangefinder_m: float | None = None) -> float | None:
    """Camera height over flat ground: a downward rangefinder's range times cos(roll) cos(pitch) when there
    is one (it measures along the body's z axis): ``rangefinder_m``, else the pose's current (not stale)
    ``range_m``; else the altitude above home; ``None`` without either."""
    if rangefinder_m is None and pose.range_m is not None and not pose.stale & PoseParts.RANGE:
        rangefinder_m = pose.range_m
    if rangefinder_m is not None and pose.attitude is not None:
        tilt = math.cos(math.radians(pose.attitude.roll_deg)) * math.cos(math.radians(pose.attitude.pitch_deg))
        return rangefinder_m * tilt
    return None if pose.position is None else pose.position.rel_alt_m


def camera_pose(
    pose: Pose, camera: CameraModel, plane: TangentPlane, rangefinder_m: float | None = None
) -> CameraPose | None:
    """The camera's pose for projection, or ``None`` when the pose lacks position, attitude or height."""
    height = height_above_ground(pose, rangefinder_m)
    if pose.position is None or pose.attitude is None or height is None or height <= 0:
        return None
    a = pose.attitude
    if pose.gimbal is not None:
        g = pose.gimbal
        mount_to_ned = euler_matrix(g.roll_deg, g.pitch_deg, a.yaw_deg + g.yaw_deg)
    else:
        mount_to_ned = euler_matrix(a.roll_deg, a.pitch_deg, a.yaw_deg) @ euler_matrix(*camera.mount)
    north, east = plane.to_ne(pose.position.lat_deg, pose.position.lon_deg)[0]
    return CameraPose(float(north), float(east), float(height), mount_to_ned @ _CAMERA_TO_GIMBAL)


def ground_points(camera: CameraModel, where: CameraPose, pixels: NDArray[np.float64]) -> NDArray[np.float64]:
    """``Nx2`` (north, east) metres where rays through ``Nx2`` pixels meet the ground; NaN at or above the horizon."""
    rays = camera.rays(pixels) @ where.rotation.T  # NED directions
    down = rays[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(down > 1e-9, where.height_m / down, np.nan)
    return np.column_stack([where.north_m + scale * rays[:, 0], where.east_m + scale * rays[:, 1]])
