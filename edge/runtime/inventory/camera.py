"""The camera model: image size, intrinsics (K), lens distortion and how the camera is mounted.

Read from ``--camera FILE`` in either calibration form that tools write:

* ROS ``camera_info`` YAML (``camera_calibration``, ``camera_info_manager``): ``image_width``,
  ``image_height``, ``camera_matrix.data`` (row-major 3x3), ``distortion_model`` and
  ``distortion_coefficients.data``;
* OpenCV ``FileStorage`` YAML (``%YAML:1.0`` with ``!!opencv-matrix``, as ``calibrateCamera`` samples
  write it): ``image_width``, ``image_height``, ``camera_matrix``, ``distortion_coefficients``.

Or, where no calibration exists, from a horizontal field of view (a pinhole with square pixels and the
principal point at the centre, :meth:`CameraModel.from_fov`). Distortion models are OpenCV's:
``plumb_bob`` / ``rational_polynomial`` (up to 14 coefficients) and ``equidistant`` (fisheye, 4).

The mount is the camera's fixed orientation on the vehicle, used when no gimbal reports its attitude:
roll, pitch, yaw in degrees relative to the body, the gimbal convention (pitch -90 looks straight
down, image top towards the nose). The model travels with the run as :meth:`CameraModel.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.artifact.errors import CracksegError

__all__ = [
    "DISTORTION_MODELS",
    "NADIR",
    "CameraError",
    "CameraModel",
    "camera_from_record",
    "camera_record",
    "read_camera",
]

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
NADIR = (0.0, -90.0, 0.0)
"""Mount of a camera looking straight down, image top towards the vehicle's nose."""


class CameraError(CracksegError):
    """A camera file or field of view that does not describe a camera."""


@dataclass(frozen=True)
class CameraModel:
    """A calibrated camera (see the module docstring).

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        k: the 3x3 intrinsic matrix, row-major (fx, 0, cx, 0, fy, cy, 0, 0, 1).
        distortion: OpenCV distortion coefficients (empty: none).
        distortion_model: one of :data:`DISTORTION_MODELS`.
        mount: roll, pitch, yaw of the camera on the body in degrees (no gimbal reporting).
    """

    width: int
    height: int
    k: tuple[float, ...]
    distortion: tuple[float, ...] = ()
    distortion_model: str = "plumb_bob"
    mount: tuple[float, float, float] = field(default=NADIR)

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise CameraError(f"camera image size {self.width}x{self.height} (WxH) must be positive")
        if len(self.k) != 9 or self.k[0] <= 0 or self.k[4] <= 0:
            raise CameraError(f"camera matrix needs 9 values with positive fx and fy, got {self.k}")
        if self.distortion_model not in DISTORTION_MODELS:
            raise CameraError(f"distortion model {self.distortion_model!r}: expected one of {DISTORTION_MODELS}")
        allowed = (4,) if self.distortion_model == "equidistant" else (0, 4, 5, 8, 12, 14)
        if self.distortion and len(self.distortion) not in allowed:
            raise CameraError(f"{self.distortion_model} takes {allowed} coefficients, got {len(self.distortion)}")

    @classmethod
    def from_fov(
        cls, width: int, height: int, hfov_deg: float, mount: tuple[float, float, float] = NADIR
    ) -> CameraModel:
        """A distortion-free pinhole whose image spans ``hfov_deg`` horizontally (square pixels, centred)."""
        if not 0 < hfov_deg < 180:
            raise CameraError(f"horizontal field of view must lie in (0, 180) degrees, got {hfov_deg}")
        f = width / 2 / math.tan(math.radians(hfov_deg) / 2)
        return cls(width, height, (f, 0.0, width / 2, 0.0, f, height / 2, 0.0, 0.0, 1.0), mount=mount)

    @property
    def matrix(self) -> NDArray[np.float64]:
        return np.array(self.k, np.float64).reshape(3, 3)

    @property
    def coefficients(self) -> NDArray[np.float64]:
        return np.array(self.distortion, np.float64)

    def for_size(self, width: int, height: int) -> CameraModel:
        """The same camera for frames scaled to ``width`` x ``height`` (a recording at a lower resolution)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        fx, _, cx, _, fy, cy, *_ = self.k
        k = (fx * sx, 0.0, (cx + 0.5) * sx - 0.5, 0.0, fy * sy, (cy + 0.5) * sy - 0.5, 0.0, 0.0, 1.0)
        return CameraModel(width, height, k, self.distortion, self.distortion_model, self.mount)

    def rays(self, pixels: NDArray[np.float64]) -> NDArray[np.float64]:
        """Unit-free rays ``(x, y, 1)`` in the camera frame (x right, y down, z forward) through ``Nx2`` pixels."""
        import cv2

        points = np.ascontiguousarray(pixels, np.float64).reshape(-1, 1, 2)
        if not self.distortion:
            normalized = (points[:, 0] - [self.k[2], self.k[5]]) / [self.k[0], self.k[4]]
        elif self.distortion_model == "equidistant":
            normalized = np.asarray(cv2.fisheye.undistortPoints(points, self.matrix, self.coefficients), np.float64)[
                :, 0
            ]
        else:
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-9)
            found = cv2.undistortPoints(points, self.matrix, self.coefficients, None, None, None, criteria)
            normalized = np.asarray(found, np.float64)[:, 0]
        return np.column_stack([normalized, np.ones(len(normalized))])

    def project(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Pixels of ``Nx3`` points in the camera frame (in front of it): the forward model, OpenCV's."""
        import cv2

        points = np.ascontiguousarray(points, np.float64).reshape(-1, 1, 3)
        zero = np.zeros(3)
        if self.distortion_model == "equidistant":
            pixels = cv2.fisheye.projectPoints(points, zero, zero, self.matrix, self.coefficients)[0]
        else:
            pixels = cv2.projectPoints(points, zero, zero, self.matrix, self.coefficients)[0]
        return np.asarray(pixels, np.float64).reshape(-1, 2)

    def to_dict(self) -> dict[str, Any]:
        """JSON terms, recorded with the run (``runs.info["camera"]``)."""
        return {
            "image_width": self.width, "image_height": self.height, "k": list(self.k),
            "distortion_model": self.distortion_model, "distortion": list(self.distortion),
            "mount_deg": list(self.mount),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CameraModel:
        """The model :meth:`to_dict` wrote."""
        try:
            return cls(
                int(data["image_width"]), int(data["image_height"]), tuple(float(v) for v in data["k"]),
                tuple(float(v) for v in data.get("distortion", ())), str(data.get("distortion_model", "plumb_bob")),
                tuple(float(v) for v in data.get("mount_deg", NADIR)),  # type: ignore[arg-type]
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise CameraError(f"not a recorded camera model: {exc}") from None


def _ros(data: dict[str, Any], mount: tuple[float, float, float]) -> CameraModel:
    def values(key: str) -> tuple[float, ...]:
        entry = data.get(key)
        if isinstance(entry, dict):
            entry = entry.get("data")
        return tuple(float(v) for v in entry or ())

    try:
        return CameraModel(
            int(data["image_width"]), int(data["image_height"]), values("camera_matrix"),
            values("distortion_coefficients"), str(data.get("distortion_model") or "plumb_bob"), mount,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise CameraError(f"not a camera_info file: {exc}") from None


def _opencv(path: Path, mount: tuple[float, float, float]) -> CameraModel:
    import cv2

    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        k, d = storage.getNode("camera_matrix").mat(), storage.getNode("distortion_coefficients").mat()
        width, height = storage.getNode("image_width").real(), storage.getNode("image_height").real()
    finally:
        storage.release()
    if k is None or not width or not height:
        raise CameraError(f"{path}: an OpenCV calibration needs image_width, image_height and camera_matrix")
    distortion = () if d is None else tuple(float(v) for v in d.ravel())
    return CameraModel(int(width), int(height), tuple(float(v) for v in k.ravel()), distortion, "plumb_bob", mount)


def read_camera(path: str | Path, mount: tuple[float, float, float] = NADIR) -> CameraModel:
    """The camera in a ROS ``camera_info`` or OpenCV calibration YAML file (see the module docstring)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CameraError(f"cannot read camera file {path}: {exc}") from None
    if text.startswith("%YAML:1.0") or "!!opencv-matrix" in text:
        return _opencv(path, mount)
    try:
        import yaml
    except ImportError as exc:
        raise CameraError("--camera needs PyYAML: pip install 'crackseg[edge]'") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CameraError(f"{path} is not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CameraError(f"{path} is not a camera_info file (expected a mapping)")
    return _ros(data, mount)


def camera_record(path: str | Path | None, hfov_deg: float | None) -> dict[str, Any] | None:
    """What a run records of its camera (``runs.info["camera"]``): the file's model, or the field of view alone
    (the frame size is known only when frames arrive); ``None`` without either."""
    if path is not None and hfov_deg is not None:
        raise CameraError("give either a camera file or a field of view, not both")
    if path is not None:
        return read_camera(path).to_dict()
    if hfov_deg is not None:
        CameraModel.from_fov(2, 2, hfov_deg)  # checks the angle now, not when the report is made
        return {"hfov_deg": float(hfov_deg)}
    return None


def camera_from_record(record: dict[str, Any], width: int, height: int) -> CameraModel:
    """The camera for ``width`` x ``height`` frames from what :func:`camera_record` wrote."""
    if "hfov_deg" in record:
        return CameraModel.from_fov(width, height, float(record["hfov_deg"]))
    return CameraModel.from_dict(record).for_size(width, height)
