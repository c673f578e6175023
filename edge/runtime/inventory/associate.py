"""One crack, one entry: views of the same physical crack, from many frames, joined on the ground.

Each frame's cracks are projected (:mod:`.measure`) and compared with the entries so far, on the
ground. A view joins the entry whose centre line it overlaps: at least half of the points of one
line, sampled every :data:`SAMPLE_M`, lie within ``tolerance_m`` (plus half the crack's width) of the
other. Either direction counts, so a crack entering the frame (a part of it) joins the entry of the
whole. An entry is compared through its best view and its latest view, so a crack that drifts across
the frame stays one entry. Distinct cracks that cross overlap at one point only and stay apart. Only
the entries whose bounding box (grown by the tolerance) meets the view's are compared, so a long survey
costs in proportion to its views, not to views times cracks.

Best view: one whose camera thumbnail the recording kept (the report shows it, and the recorder keeps only a
few a second), then a view of the whole crack (not cut by the frame's edge) before a partial one, then the
finest ground sample distance. Measurements are the median over the entry's complete views (over all
views where none is complete, and then a lower bound): a crack half out of the frame is not half as
long.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.artifact.size import Size
from crackseg.edge.runtime.inventory.camera import CameraModel
from crackseg.edge.runtime.inventory.ground import TangentPlane, camera_pose
from crackseg.edge.runtime.inventory.measure import (
    MIN_CRACK_PIXELS,
    CrackTrace,
    CrackView,
    Placement,
    densify,
    measure_view,
    trace_cracks,
)
from crackseg.edge.runtime.inventory.pipe import pipe_pose
from crackseg.edge.runtime.pose import Pose, PoseParts

__all__ = ["SAMPLE_M", "CrackEntry", "Inventory", "overlap"]

_PLACING = PoseParts.POSITION | PoseParts.ATTITUDE | PoseParts.GIMBAL
"""Pose parts a projection uses: when one is stale the frame's cracks are not placed."""
SAMPLE_M = 0.1
"""Spacing of the points at which two centre lines are compared, metres."""


def _near_fraction(points: NDArray[np.float64], line: NDArray[np.float64], tolerance_m: float) -> float:
    """The fraction of ``Nx2`` points within ``tolerance_m`` of a polyline (squared distances: no roots)."""
    a = line[:-1] if len(line) > 1 else line
    ab = line[1:] - a if len(line) > 1 else np.zeros_like(a)
    offset = points[:, None, :] - a  # from every point to every segment's start
    t = np.einsum("psk,sk->ps", offset, ab) / np.maximum(np.einsum("sk,sk->s", ab, ab), 1e-12)
    offset -= np.clip(t, 0.0, 1.0, out=t)[..., None] * ab  # to the nearest point of each segment
    nearest2 = np.einsum("psk,psk->ps", offset, offset).min(axis=1)
    return float(np.count_nonzero(nearest2 <= tolerance_m * tolerance_m)) / len(points)


def overlap(
    line: NDArray[np.float64], other: NDArray[np.float64], tolerance_m: float,
    line_points: NDArray[np.float64] | None = None, other_points: NDArray[np.float64] | None = None,
) -> float:  # fmt: skip
    """The larger of the fractions of either line's points within ``tolerance_m`` of the other line (the second
    is not computed when the first is already 1).

    ``line_points`` and ``other_points``: the lines sampled every :data:`SAMPLE_M` (:func:`sample_points`), when
    already at hand (a view is compared many times; sampling it once halves an association's cost).
    """
    points = sample_points(line) if line_points is None else line_points
    near = _near_fraction(points, other, tolerance_m)
    if near == 1.0:
        return near
    others = sample_points(other) if other_points is None else other_points
    return max(near, _near_fraction(others, line, tolerance_m))


def sample_points(line: NDArray[np.float64]) -> NDArray[np.float64]:
    """The points at which a centre line is compared: its vertices and points every :data:`SAMPLE_M` between."""
    return densify(line, SAMPLE_M)


def _rank(view: CrackView) -> tuple[bool, bool, float]:
    """Orders views best first (module docstring)."""
    return not view.photographed, not view.complete, view.gsd_m


@dataclass
class CrackEntry:
    """One physical crack and every view of it.

    Attributes:
        id: 1, 2, ... in order of first sight.
        views: every view, in the order they were added.
        best: the best view (module docstring).
    """

    id: int
    views: list[CrackView] = field(default_factory=list)
    best: CrackView | None = None

    def add(self, view: CrackView) -> None:
        self.views.append(view)
        if self.best is None or _rank(view) < _rank(self.best):
            self.best = view

    @property
    def complete(self) -> bool:
        """Some view shows the whole crack; otherwise the measurements are lower bounds."""
        return any(v.complete for v in self.views)

    @property
    def measured(self) -> list[CrackView]:
        """The views the measurements are medians of."""
        return [v for v in self.views if v.complete] or self.views

    def median(self, name: str) -> float:
        """Median of a :class:`CrackView` measurement (``length_m``) or a trace one (``trace.length_px``)."""
        values = []
        for view in self.measured:
            value: object = view
            for part in name.split("."):
                value = getattr(value, part)
            values.append(float(value))  # type: ignore[arg-type]
        return float(median(values))

    @property
    def first_ns(self) -> int:
        return min(v.capture_ns for v in self.views)

    @property
    def last_ns(self) -> int:
        return max(v.capture_ns for v in self.views)

    @property
    def frames(self) -> int:
        """Frames that saw the crack."""
        return len({v.frame_id for v in self.views})


class Inventory:
    """Cracks of a run, each once, on a tangent plane at the first position seen.

    Args:
        camera: the camera model (scaled to each frame's size when the mask is smaller).
        tolerance_m: how far apart two views' centre lines may lie and still be one crack (default: 0.5 m on
            the ground, a quarter of the diameter in a pipe).
        min_pixels: smaller components are not cracks.
        pipe_diameter_m: a crawler's forward-looking camera in a pipe of this diameter: cracks are placed on
            the pipe's unrolled wall by chainage and clock position (:mod:`.pipe`), not on the ground.
    """

    def __init__(
        self, camera: CameraModel, tolerance_m: float | None = None, min_pixels: int = MIN_CRACK_PIXELS,
        pipe_diameter_m: float | None = None,
    ) -> None:  # fmt: skip
        if pipe_diameter_m is not None and not pipe_diameter_m > 0:
            raise ValueError(f"a pipe's diameter must be positive, got {pipe_diameter_m} m")
        if tolerance_m is None:
            tolerance_m = 0.5 if pipe_diameter_m is None else pipe_diameter_m / 4
        if tolerance_m <= 0:
            raise ValueError(f"association tolerance must be positive, got {tolerance_m} m")
        self.camera = camera
        self.tolerance_m = tolerance_m
        self.min_pixels = min_pixels
        self.pipe_diameter_m = pipe_diameter_m
        self.plane: TangentPlane | None = None
        self.ground_alt_m: float | None = None
        self.entries: list[CrackEntry] = []
        self._boxes = np.empty((0, 5))
        """Per entry: the bounding box (min north, min east, max north, max east) of its best and latest views'
        lines, and the best view's width; a view compares its line only with the entries whose box it meets."""
        self._points: dict[int, NDArray[np.float64]] = {}
        """Per view (by ``id``): :func:`sample_points` of its line, for the views an entry is compared through."""
        self.unplaced = 0
        """Frames with cracks that could not be projected (no position, attitude or height, or a stale one; in a
        pipe, no current chainage)."""

    def add_frame(
        self, frame_id: int, capture_ns: int, mask: NDArray[np.bool_], pose: Pose | None,
        rangefinder_m: float | None = None, photographed: bool = False,
    ) -> list[int]:  # fmt: skip
        """Measure, project and associate one frame's cracks; the ids of the entries they joined or started.
        ``photographed``: the recording kept the frame's camera thumbnail."""
        frame = Size(mask.shape[0], mask.shape[1])
        traces = trace_cracks(mask, self.min_pixels)
        return self.add_traces(frame_id, capture_ns, traces, frame, pose, rangefinder_m, photographed)

    def add_traces(
        self, frame_id: int, capture_ns: int, traces: list[CrackTrace], frame: Size, pose: Pose | None,
        rangefinder_m: float | None = None, photographed: bool = False,
    ) -> list[int]:  # fmt: skip
        """:meth:`add_frame` for a frame already traced (``trace_cracks(mask, self.min_pixels)``, which needs no
        state and so may run in another process), ``frame`` its mask's size."""
        if not traces:
            return []
        camera = self.camera.for_size(frame.width, frame.height)
        if self.pipe_diameter_m is not None:
            placed = None if pose is None else pipe_pose(pose, self.pipe_diameter_m)
            return self._place(traces, placed, camera, frame_id, capture_ns, photographed)
        if pose is None or pose.position is None or pose.stale & _PLACING:
            self.unplaced += 1  # a held (stale) position would stack every crack at the last fix
            return []
        if self.plane is None:
            self.plane = TangentPlane(pose.position.lat_deg, pose.position.lon_deg)
            self.ground_alt_m = pose.position.alt_m - pose.position.rel_alt_m
        where = camera_pose(pose, camera, self.plane, rangefinder_m)
        return self._place(traces, where, camera, frame_id, capture_ns, photographed)

    def _place(
        self, traces: list[CrackTrace], where: Placement | None, camera: CameraModel, frame_id: int, capture_ns: int,
        photographed: bool,
    ) -> list[int]:  # fmt: skip
        if where is None:
            self.unplaced += 1
            return []
        joined = []
        for trace in traces:
            view = measure_view(trace, camera, where, frame_id, capture_ns, photographed)
            if view is not None:
                joined.append(self._associate(view).id)
        return joined

    def _candidates(self, view: CrackView) -> list[CrackEntry]:
        """The entries whose box, grown by the association tolerance, meets the view's line's box (the others
        cannot overlap it: in a long survey, nearly all of them)."""
        boxes = self._boxes
        grow = self.tolerance_m + np.maximum(boxes[:, 4], view.max_width_m) / 2
        low, high = view.line_ne.min(axis=0), view.line_ne.max(axis=0)
        meets = (
            (boxes[:, 0] - grow <= high[0]) & (boxes[:, 2] + grow >= low[0])
            & (boxes[:, 1] - grow <= high[1]) & (boxes[:, 3] + grow >= low[1])
        )  # fmt: skip
        return [self.entries[i] for i in np.flatnonzero(meets)]

    def _associate(self, view: CrackView) -> CrackEntry:
        """Join ``view`` to the entry it overlaps most (the first one reached wins a tie, so a full overlap ends the
        search), or start a new entry."""
        best_entry, best_score = None, 0.0
        points = self._points[id(view)] = sample_points(view.line_ne)
        for entry in self._candidates(view):
            assert entry.best is not None
            tolerance = self.tolerance_m + max(view.max_width_m, entry.best.max_width_m) / 2
            latest = entry.views[-1]  # first: it overlaps fully most often; often also the best view
            score = 0.0
            for seen in (latest,) if latest is entry.best else (latest, entry.best):
                score = max(score, overlap(view.line_ne, seen.line_ne, tolerance, points, self._points[id(seen)]))
                if score == 1.0:
                    break
            if score > best_score:
                best_entry, best_score = entry, score
            if best_score == 1.0:
                break
        if best_entry is None or best_score < 0.5:
            best_entry = CrackEntry(len(self.entries) + 1)
            self.entries.append(best_entry)
            self._boxes = np.vstack([self._boxes, np.zeros(5)])
        best_entry.add(view)
        assert best_entry.best is not None
        lines = np.vstack([best_entry.best.line_ne, view.line_ne])
        self._boxes[best_entry.id - 1] = (*lines.min(axis=0), *lines.max(axis=0), best_entry.best.max_width_m)
        return best_entry

    def lonlat(self, line_ne: NDArray[np.float64]) -> NDArray[np.float64]:
        """``Nx2`` (lon, lat) of a ground line."""
        assert self.plane is not None, "an inventory with entries has a plane"
        return self.plane.to_lonlat(line_ne)
