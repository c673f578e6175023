"""The GeoJSON of a recorded run's crack detections (RFC 7946), for GIS tools.

One ``Feature`` per frame with cracks: a ``Point`` at the vehicle's position (longitude, latitude and
altitude above mean sea level, as RFC 7946 orders them) when a current one was recorded, else no geometry
(``null``, as RFC 7946 allows) with the chainage among the properties, so that a crawler's detections
are kept too. A stale position is the last fix held, not where the frame was taken: such a detection
has no geometry either (``position_stale`` true), so that a lost link does not pile detections up on one
point. Properties carry the frame's statistics, how much to trust its pose and the capture time in ISO 8601.
"""

from __future__ import annotations

from typing import Any

from crackseg.edge.report.recording import Recording
from crackseg.edge.runtime.inventory.formats import iso_time

__all__ = ["detections_geojson"]


def detections_geojson(recording: Recording) -> dict[str, Any]:
    """A ``FeatureCollection`` of the run's detections (see the module docstring)."""
    features = []
    for frame in recording.frames:
        if not frame.crack_pixels:
            continue
        geometry = None
        if frame.position_placed:
            coordinates = [frame.lon_deg, frame.lat_deg] + ([frame.alt_m] if frame.alt_m is not None else [])
            geometry = {"type": "Point", "coordinates": coordinates}
        pose = frame.pose
        features.append({
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "frame_id": frame.frame_id, "capture_ns": frame.capture_ns, "coverage_pct": frame.coverage_pct,
                "components": frame.components, "skeleton_px": frame.skeleton_px, "max_width_px": frame.max_width_px,
                "chainage_m": frame.chainage_m, "pose_stale": None if pose is None else pose.to_dict()["stale"],
                "pose_age_ms": frame.pose_age_ms, "pose_missing": frame.pose_missing,
                "position_stale": frame.has_position and not frame.position_placed,
                "time": iso_time(frame.capture_ns),
            },
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}
