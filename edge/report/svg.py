"""Inline SVG charts for the report: the detection map and the statistics over time (no tiles, no scripts).

Every mark that stands for a frame links to that frame's row of the report's table (``#frame-N``).
Coordinates are rounded to 0.1 px so that 10,000 frames stay a few hundred kilobytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from crackseg.edge.report.recording import FrameRow

__all__ = ["line_chart", "map_chart"]

_W, _H, _PAD = 760.0, 420.0, 40.0
_CRACK = "#d62728"
_TRACK = "#999999"


def _scale(values: Sequence[float], lo_px: float, hi_px: float) -> list[float]:
    """``values`` mapped linearly onto ``[lo_px, hi_px]`` (a constant series lands in the middle)."""
    lo, hi = min(values), max(values)
    span = hi - lo
    if span == 0:
        return [(lo_px + hi_px) / 2] * len(values)
    return [lo_px + (v - lo) / span * (hi_px - lo_px) for v in values]


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def _axis_text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" text-anchor="{anchor}">{escape(text)}</text>'


def _polyline(xs: Sequence[float], ys: Sequence[float], colour: str) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{points}"/>'


def map_chart(frames: Sequence[FrameRow]) -> str:
    """Where the cracks are: lat/lon when recorded, else chainage against coverage; ``""`` without either.

    Frames whose position was stale (the last fix held) are not placed: the caption counts the detections
    among them.
    """
    placed = [f for f in frames if f.position_placed]
    if placed:
        mean_lat = math.radians(sum(f.lat_deg or 0.0 for f in placed) / len(placed))
        east = [(f.lon_deg or 0.0) * math.cos(mean_lat) for f in placed]  # equirectangular: metres-like aspect
        north = [f.lat_deg or 0.0 for f in placed]
        span = max(max(east) - min(east), max(north) - min(north)) or 1e-9
        scale = (_H - 2 * _PAD) / span  # one scale for both axes: the map keeps its shape
        west, south = min(east), min(north)
        xs = [_PAD + (e - west) * scale for e in east]
        ys = [_H - _PAD - (n - south) * scale for n in north]
        lons = [f.lon_deg or 0.0 for f in placed]
        caption = f"lat {south:.6f}..{max(north):.6f}, lon {min(lons):.6f}..{max(lons):.6f}"
        unplaced = sum(1 for f in frames if f.crack_pixels and f.has_position and not f.position_placed)
        if unplaced:
            caption += f"; {unplaced} detections with a stale position not placed"
        return _marks(placed, xs, ys, caption, "map of crack detections by latitude and longitude")
    along = [f for f in frames if f.chainage_m is not None]
    if along:
        xs = _scale([f.chainage_m or 0.0 for f in along], _PAD, _W - _PAD)
        ys = _scale([0.0, *(f.coverage_pct for f in along)], _H - _PAD, _PAD)[1:]
        lo, hi = min(f.chainage_m or 0.0 for f in along), max(f.chainage_m or 0.0 for f in along)
        caption = f"chainage {lo:.2f}..{hi:.2f} m (x) against coverage (y)"
        return _marks(along, xs, ys, caption, "map of crack detections along the chainage")
    return ""


def _marks(frames: Sequence[FrameRow], xs: list[float], ys: list[float], caption: str, label: str) -> str:
    """The path of every frame in grey, a red disc per frame with cracks (hollow when its pose was stale)."""
    body = [_polyline(xs, ys, _TRACK)]
    top = max((f.coverage_pct for f in frames), default=0.0) or 1.0
    for frame, x, y in zip(frames, xs, ys, strict=True):
        if frame.crack_pixels == 0:
            continue
        radius = 2.0 + 6.0 * math.sqrt(frame.coverage_pct / top)
        fill = "none" if frame.pose_stale_any else _CRACK
        body.append(
            f'<a href="#frame-{frame.frame_id}"><circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{fill}" '
            f'stroke="{_CRACK}"><title>frame {frame.frame_id}: {frame.coverage_pct:.2f} %</title></circle></a>'
        )
    body.append(_axis_text(_PAD, _H - 8, caption))
    return _svg(_W, _H, body, label)


def line_chart(times_s: Sequence[float], values: Sequence[float], title: str, unit: str) -> str:
    """One statistic over time since the run started: a polyline with its range written on the axes."""
    width, height = _W, 160.0
    if not values:
        return ""
    xs = _scale([*times_s], _PAD, width - 10)
    ys = _scale([0.0, *values], height - 24, 18)[1:]
    body = [
        _axis_text(_PAD, 12, f"{title} ({unit}), max {max(values):.2f}"),
        f'<line x1="{_PAD}" y1="{height - 24}" x2="{width - 10}" y2="{height - 24}" stroke="#444"/>',
        _polyline(xs, ys, _CRACK),
        _axis_text(_PAD, height - 8, "0 s"),
        _axis_text(width - 10, height - 8, f"{times_s[-1]:.1f} s", "end"),
    ]
    return _svg(width, height, body, f"{title} over time")
