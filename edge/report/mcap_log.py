"""A recorded run as MCAP, the robotics log format Foxglove opens: camera images, crack annotations, location fixes.

Messages are JSON in Foxglove's schemas (``jsonschema`` encoding, the schema names Foxglove recognises), each
stamped with its frame's capture time:

=======================  ===========================  ==========================================================
topic                    schema                       what
=======================  ===========================  ==========================================================
``/camera/image``        ``foxglove.CompressedImage`` the recorded JPEG thumbnail of each frame with cracks
``/camera/cracks``       ``foxglove.ImageAnnotations`` each crack's box, in the thumbnail's pixels, and a label
``/vehicle/fix``         ``foxglove.LocationFix``     the vehicle's position at each frame (current fixes only)
``/inventory``           ``foxglove.GeoJSON``         the crack inventory (one message, at the end), when built
=======================  ===========================  ==========================================================

A stale position (the last fix held) is not written as a fix. ``mcap`` (the MCAP project's Python package)
is imported only here, when the file is written: ``pip install 'crackseg[mcap]'``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.report.recording import FrameRow, Recording
from crackseg.edge.report.views import stats_of
from crackseg.edge.runtime.sinks.record import THUMBNAIL_PX, thumbnail_size

__all__ = ["TOPICS", "McapError", "write_mcap"]

TOPICS = {
    "/camera/image": "foxglove.CompressedImage",
    "/camera/cracks": "foxglove.ImageAnnotations",
    "/vehicle/fix": "foxglove.LocationFix",
    "/inventory": "foxglove.GeoJSON",
}
_TIME = {
    "type": "object",
    "properties": {"sec": {"type": "integer", "minimum": 0}, "nsec": {"type": "integer", "minimum": 0}},
}
_COLOR = {"type": "object", "properties": {k: {"type": "number"} for k in "rgba"}}
_POINT = {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
_SCHEMAS: dict[str, dict[str, Any]] = {
    "foxglove.CompressedImage": {
        "title": "foxglove.CompressedImage",
        "type": "object",
        "properties": {
            "timestamp": _TIME,
            "frame_id": {"type": "string"},
            "data": {"type": "string", "contentEncoding": "base64"},
            "format": {"type": "string"},
        },
    },
    "foxglove.ImageAnnotations": {
        "title": "foxglove.ImageAnnotations",
        "type": "object",
        "properties": {
            "circles": {"type": "array"},
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "timestamp": _TIME,
                        "type": {"type": "integer"},
                        "points": {"type": "array", "items": _POINT},
                        "outline_color": _COLOR,
                        "outline_colors": {"type": "array", "items": _COLOR},
                        "fill_color": _COLOR,
                        "thickness": {"type": "number"},
                    },
                },
            },
            "texts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "timestamp": _TIME,
                        "position": _POINT,
                        "text": {"type": "string"},
                        "font_size": {"type": "number"},
                        "text_color": _COLOR,
                        "background_color": _COLOR,
                    },
                },
            },
        },
    },
    "foxglove.LocationFix": {
        "title": "foxglove.LocationFix",
        "type": "object",
        "properties": {
            "timestamp": _TIME,
            "frame_id": {"type": "string"},
            "latitude": {"type": "number"},
            "longitude": {"type": "number"},
            "altitude": {"type": "number"},
            "position_covariance": {"type": "array", "items": {"type": "number"}, "minItems": 9, "maxItems": 9},
            "position_covariance_type": {"type": "integer"},
        },
    },
    "foxglove.GeoJSON": {"title": "foxglove.GeoJSON", "type": "object", "properties": {"geojson": {"type": "string"}}},
}
_LINE_LOOP = 2  # foxglove.PointsAnnotationType
_RED = {"r": 1.0, "g": 0.1, "b": 0.1, "a": 1.0}
_CLEAR = {"r": 0.0, "g": 0.0, "b": 0.0, "a": 0.0}
_WHITE = {"r": 1.0, "g": 1.0, "b": 1.0, "a": 1.0}
_SHADE = {"r": 0.0, "g": 0.0, "b": 0.0, "a": 0.6}
_CAMERA_FRAME = "camera"


class McapError(CracksegError):
    """The ``mcap`` package is missing."""


def _time(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def _annotations(frame: FrameRow, scale: float) -> dict[str, Any]:
    stamp = _time(frame.capture_ns)
    boxes, labels = [], []
    for box in stats_of(frame).boxes:
        x0, y0, x1, y1 = box.x * scale, box.y * scale, (box.x + box.w) * scale, (box.y + box.h) * scale
        corners = [{"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1}, {"x": x0, "y": y1}]
        boxes.append({
            "timestamp": stamp, "type": _LINE_LOOP, "points": corners, "outline_color": _RED,
            "outline_colors": [], "fill_color": _CLEAR, "thickness": 2.0,
        })  # fmt: skip
    labels.append({
        "timestamp": stamp, "position": {"x": 4.0, "y": 14.0}, "font_size": 12.0, "text_color": _WHITE,
        "background_color": _SHADE,
        "text": f"frame {frame.frame_id}: coverage {frame.coverage_pct:.2f} %, width {frame.max_width_px:.0f} px",
    })  # fmt: skip
    return {"circles": [], "points": boxes, "texts": labels}


def write_mcap(recording: Recording, path: str | Path, inventory_geojson: str | None = None) -> dict[str, int]:
    """Write the run to ``path`` as MCAP (see the module docstring), with the inventory as its GeoJSON text
    (:func:`~crackseg.edge.runtime.inventory.formats.dumps_geojson`) when there is one; returns the messages
    written per topic."""
    try:
        from mcap.writer import CompressionType, Writer
    except ImportError as exc:
        raise McapError("MCAP output needs the mcap package: pip install 'crackseg[mcap]'") from exc
    longest = int(recording.info.get("thumbnail_px", THUMBNAIL_PX))  # older runs: the only size crackseg run used
    counts = dict.fromkeys(TOPICS, 0)
    with Path(path).open("wb") as stream:
        writer = Writer(stream, compression=CompressionType.ZSTD)
        writer.start(profile="", library="crackseg")
        channels = {}
        for topic, name in TOPICS.items():
            schema = writer.register_schema(name, "jsonschema", json.dumps(_SCHEMAS[name]).encode())
            channels[topic] = writer.register_channel(topic, "json", schema)

        def add(topic: str, ns: int, message: dict[str, Any]) -> None:
            writer.add_message(channels[topic], log_time=ns, publish_time=ns, data=json.dumps(message).encode())
            counts[topic] += 1

        for frame in recording.frames:
            ns = frame.capture_ns
            if frame.position_placed:
                add("/vehicle/fix", ns, {
                    "timestamp": _time(ns), "frame_id": "vehicle", "latitude": frame.lat_deg,
                    "longitude": frame.lon_deg, "altitude": frame.alt_m or 0.0, "position_covariance": [0.0] * 9,
                    "position_covariance_type": 0,
                })  # fmt: skip
            if not frame.crack_pixels:
                continue
            scale = 1.0
            jpeg = _thumbnail_bytes(recording, frame)
            if jpeg is not None:
                scale = thumbnail_size(frame.width, frame.height, longest)[0] / frame.width
                add("/camera/image", ns, {
                    "timestamp": _time(ns), "frame_id": _CAMERA_FRAME, "format": "jpeg",
                    "data": base64.b64encode(jpeg).decode(),
                })  # fmt: skip
            add("/camera/cracks", ns, _annotations(frame, scale))
        if inventory_geojson is not None and recording.frames:
            add("/inventory", recording.frames[-1].capture_ns, {"geojson": inventory_geojson})
        writer.finish()
    return counts


def _thumbnail_bytes(recording: Recording, frame: FrameRow) -> bytes | None:
    if not frame.thumb_path:
        return None
    try:
        return (recording.path.parent / frame.thumb_path).read_bytes()
    except OSError:
        return None
