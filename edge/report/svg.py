"""Inline SVG charts for the report: the detection map and the statistics over time (no tiles, no scripts).

Every mark that stands for a frame links to that frame's row of the report's table (``#frame-N``).
Coordinates are rounded to 0.1 px so that 10,000 frames stay a few hundred kilobytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

from crackseg.edge.report.recording import FrameRow
from crackseg.edge.runtime.inventory.formats import CrackRow
from crackseg.edge.runtime.inventory.ground import TangentPlane

__all__ = ["line_chart", "map_chart", "pose_gaps"]

_W, _H, _PAD = 760.0, 420.0, 40.0
_CRACK = "#d62728"
_TRACK = "#999999"
_CRACK_LINE = "#7a0019"
_GAP = "#f4a261"


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


def _nice_length(metres: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``metres`` (a scale bar's length)."""
    power = 10 ** math.floor(math.log10(metres))
    return max(step * power for step in (1, 2, 5) if step * power <= metres)


def _scale_bar(metres_per_px: float) -> list[str]:
    """A bar about a fifth of the map wide, bottom left, labelled in metres (or km)."""
    length_m = _nice_length(metres_per_px * (_W - 2 * _PAD) / 5)
    px = length_m / metres_per_px
    x, y = _PAD, _H - 22
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    return [
        f'<g class="scale-bar"><rect x="{x:.1f}" y="{y:.1f}" width="{px:.1f}" height="4" fill="#222"/>'
        f'<rect x="{x + px / 2:.1f}" y="{y:.1f}" width="{px / 2:.1f}" height="4" fill="#fff" stroke="#222"/>',
        _axis_text(x + px + 6, y + 5, label) + "</g>",
    ]


def _north_arrow() -> str:
    x, y = _W - _PAD / 2 - 8, 14.0
    return (
        f'<g class="north-arrow"><path d="M{x:.1f},{y:.1f} l7,22 l-7,-6 l-7,6 z" fill="#222"/>'
        f'<text x="{x:.1f}" y="{y + 36:.1f}" font-size="12" font-weight="bold" text-anchor="middle">N</text></g>'
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    """A framed legend at the top left: (SVG mark drawn in a 20x12 box, label) per line."""
    rows = [
        f'<g transform="translate({_PAD + 6:.1f},{16 + 16 * i})">{mark}<text x="26" y="10" font-size="11">'
        f"{escape(label)}</text></g>"
        for i, (mark, label) in enumerate(items)
    ]
    return (
        f'<g class="legend"><rect x="{_PAD:.1f}" y="8" width="230" height="{16 * len(items) + 10}" fill="#fff" '
        f'fill-opacity="0.85" stroke="#bbb"/>' + "".join(rows) + "</g>"
    )


_TRACK_MARK = f'<line x1="0" y1="6" x2="20" y2="6" stroke="{_TRACK}"/>'
_DISC_MARK = f'<circle cx="10" cy="6" r="4" fill="{_CRACK}" stroke="{_CRACK}"/>'
_HOLLOW_MARK = f'<circle cx="10" cy="6" r="4" fill="none" stroke="{_CRACK}"/>'
_LINE_MARK = f'<line x1="0" y1="6" x2="20" y2="6" stroke="{_CRACK_LINE}" stroke-width="3"/>'


def map_chart(frames: Sequence[FrameRow], cracks: Sequence[CrackRow] = ()) -> str:
    """Where the cracks are: lat/lon when recorded, else chainage against coverage; ``""`` without either.

    On a geographic map (north up, metres on both axes, a scale bar, a north arrow and a legend) each
    inventory crack in ``cracks`` is drawn as its centre line, linked to its best view (``#crack-N``), over
    the vehicle's track and a disc per frame with cracks. Frames whose position was stale (the last fix
    held) are not placed: the caption counts the detections among them.
    """
    placed = [f for f in frames if f.position_placed]
    if placed or cracks:
        return _geographic(frames, placed, cracks)
    along = [f for f in frames if f.chainage_m is not None]
    if along:
        xs = _scale([f.chainage_m or 0.0 for f in along], _PAD, _W - _PAD)
        ys = _scale([0.0, *(f.coverage_pct for f in along)], _H - _PAD, _PAD)[1:]
        lo, hi = min(f.chainage_m or 0.0 for f in along), max(f.chainage_m or 0.0 for f in along)
        caption = f"chainage {lo:.2f}..{hi:.2f} m (x) against coverage (y)"
        legend = [(_TRACK_MARK, "frames along the chainage"), (_DISC_MARK, "frame with cracks (area: coverage)")]
        return _marks(along, xs, ys, caption, "map of crack detections along the chainage", [_legend(legend)])
    return ""


def _geographic(frames: Sequence[FrameRow], placed: Sequence[FrameRow], cracks: Sequence[CrackRow]) -> str:
    lats = [f.lat_deg or 0.0 for f in placed] + [lat for c in cracks for _, lat in c.line_lonlat]
    lons = [f.lon_deg or 0.0 for f in placed] + [lon for c in cracks for lon, _ in c.line_lonlat]
    plane = TangentPlane(sum(lats) / len(lats), sum(lons) / len(lons))
    ne = plane.to_ne(np.array(lats), np.array(lons))
    north_lo, east_lo = ne.min(axis=0)
    north_span, east_span = np.ptp(ne, axis=0)
    top = 16.0 * 4 + 24  # room for the legend above the data
    metres_per_px = max(east_span / (_W - 2 * _PAD), north_span / (_H - _PAD - top), 0.05)  # one scale: true shape
    x0 = _PAD + ((_W - 2 * _PAD) - east_span / metres_per_px) / 2  # centred

    def to_xy(points_ne: np.ndarray) -> tuple[list[float], list[float]]:
        xs = x0 + (points_ne[:, 1] - east_lo) / metres_per_px
        ys = _H - _PAD - (points_ne[:, 0] - north_lo) / metres_per_px
        return [float(x) for x in xs], [float(y) for y in ys]

    lines = []
    for crack in cracks:
        lon_lat = np.array(crack.line_lonlat)
        xs, ys = to_xy(plane.to_ne(lon_lat[:, 1], lon_lat[:, 0]))
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        lines.append(
            f'<a href="#crack-{crack.id}"><polyline class="crack" fill="none" stroke="{_CRACK_LINE}" stroke-width="3" '
            f'stroke-linecap="round" points="{points}"><title>crack {crack.id}: {crack.length_m:.2f} m, '
            f"{crack.max_width_m * 1e3:.0f} mm wide</title></polyline></a>"
        )
    xs, ys = to_xy(ne[: len(placed)])
    caption = f"lat {min(lats):.6f}..{max(lats):.6f}, lon {min(lons):.6f}..{max(lons):.6f}"
    unplaced = sum(1 for f in frames if f.crack_pixels and f.has_position and not f.position_placed)
    if unplaced:
        caption += f"; {unplaced} detections with a stale position not placed"
    legend = [(_TRACK_MARK, "vehicle track"), (_DISC_MARK, "frame with cracks (area: coverage)"),
              (_HOLLOW_MARK, "the same, part of its pose stale")]  # fmt: skip
    if cracks:
        legend.append((_LINE_MARK, "crack (inventory), centre line"))
    extra = [*_scale_bar(metres_per_px), _north_arrow(), _legend(legend)]
    return _marks(placed, xs, ys, caption, "map of crack detections by latitude and longitude", extra, lines)


def _marks(
    frames: Sequence[FrameRow],
    xs: list[float],
    ys: list[float],
    caption: str,
    label: str,
    extra: Sequence[str] = (),
    under: Sequence[str] = (),
) -> str:
    """The path of every frame in grey, a red disc per frame with cracks (hollow when its pose was stale), the
    ``under`` marks below the discs and the ``extra`` ones (scale, legend) above everything."""
    body = [_polyline(xs, ys, _TRACK), *under] if xs else [*under]
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
    body.append(_axis_text(_PAD, _H - 4, caption))
    body.extend(extra)
    return _svg(_W, _H, body, label)


def pose_gaps(frames: Sequence[FrameRow], start_ns: int) -> list[tuple[float, float]]:
    """Stretches of the run (seconds from ``start_ns``) whose frames had no current pose: missing, or a stale
    position (the frames' own capture times bound each stretch); none without a pose source."""
    gaps: list[tuple[float, float]] = []
    begin: float | None = None
    last = 0.0
    for frame in frames:
        t = (frame.capture_ns - start_ns) / 1e9
        lost = frame.pose_parts is not None and (
            frame.pose_missing or (frame.has_position and not frame.position_placed)
        )
        if lost and begin is None:
            begin = t
        elif not lost and begin is not None:
            gaps.append((begin, last))
            begin = None
        last = t
    if begin is not None:
        gaps.append((begin, last))
    return gaps


def line_chart(
    times_s: Sequence[float],
    values: Sequence[float],
    title: str,
    unit: str,
    gaps: Sequence[tuple[float, float]] = (),
) -> str:
    """One statistic over time since the run started: a polyline with its range written on the axes, and the
    ``gaps`` (pose lost, seconds) shaded."""
    width, height = _W, 160.0
    if not values:
        return ""
    xs = _scale([*times_s], _PAD, width - 10)
    ys = _scale([0.0, *values], height - 24, 18)[1:]
    span = (times_s[-1] - times_s[0]) or 1.0
    px_per_s = (width - 10 - _PAD) / span
    shaded = [
        f'<rect class="pose-lost" x="{_PAD + (a - times_s[0]) * px_per_s:.1f}" y="18" '
        f'width="{max(2.0, (b - a) * px_per_s):.1f}" height="{height - 42:.0f}" fill="{_GAP}" fill-opacity="0.35">'
        f"<title>pose lost {a:.1f}..{b:.1f} s</title></rect>"
        for a, b in gaps
    ]
    note = f", shaded: pose lost ({len(gaps)} time(s), {sum(b - a for a, b in gaps):.1f} s)" if gaps else ""
    body = [
        *shaded,
        _axis_text(_PAD, 12, f"{title} ({unit}), max {max(values):.2f}{note}"),
        f'<line x1="{_PAD}" y1="{height - 24}" x2="{width - 10}" y2="{height - 24}" stroke="#444"/>',
        _polyline(xs, ys, _CRACK),
        _axis_text(_PAD, height - 8, "0 s"),
        _axis_text(width - 10, height - 8, f"{times_s[-1]:.1f} s", "end"),
    ]
    return _svg(width, height, body, f"{title} over time")
