"""``crackseg report``'s HTML page: one self-contained file an inspector opens anywhere, offline.

Sections: the run (model, threshold, software versions, source, pose inputs), a summary, the map of
detections (:mod:`crackseg.edge.report.svg`), coverage / skeleton length / maximum width over time, a
gallery of the worst frames with their masks drawn, and a table of every frame. Images are inline JPEG
or PNG (``data:`` URIs) and charts inline SVG; one small inline script sorts the inventory table: no
network, no second file.

The gallery draws each mask, its boxes and its caption over the camera thumbnail the recording kept (on
a neutral grey frame for frames without one), with the same drawing as the live ``--overlay``
(:mod:`crackseg.edge.report.views`). A recording copied without its masks folder renders without the gallery.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from crackseg.edge.report.inventory import SORT_SCRIPT, inventory_table
from crackseg.edge.report.recording import FrameRow, Recording
from crackseg.edge.report.svg import line_chart, map_chart, pose_gaps
from crackseg.edge.report.views import frame_view
from crackseg.edge.runtime.inventory.associate import Inventory
from crackseg.edge.runtime.inventory.formats import inventory_rows
from crackseg.edge.runtime.pose import PoseParts

__all__ = ["render_report"]

_GALLERY_WIDTH_PX = 480
_STATS_FACT = {"exact": "exact", "fast": "fast: skeleton length and width estimated (crackseg run --stats fast)"}
"""How the run measured its statistics (recordings made before ``--stats`` existed were exact)."""
_STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #eee; position: sticky; top: 0; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { margin: 0; font-size: 12px; }
.stale { color: #b15928; }
.missing { color: #999; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { font-weight: bold; }
.views figure { display: none; margin: 8px 0; font-size: 12px; }
.views figure:target { display: block; }
"""


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="milliseconds")


def worst_frames(frames: list[FrameRow], count: int) -> list[FrameRow]:
    """The ``count`` frames with the most crack coverage (then the widest crack), worst first, those with a camera
    thumbnail before those without: the recorder keeps a few a second, and the gallery is for telling a crack from
    a joint or a shadow, which the mask alone cannot show."""
    cracked = [f for f in frames if f.crack_pixels]
    ranked = sorted(cracked, key=lambda f: (f.thumb_path is not None, f.coverage_pct, f.max_width_px), reverse=True)
    return ranked[:count]


def _pose_cell(frame: FrameRow) -> str:
    if frame.pose_parts is None:
        return "<td></td>"
    if frame.pose_missing:
        return '<td class="missing">missing</td>'
    stale = PoseParts(frame.pose_stale or 0)
    text = ", ".join(str(p.name).lower() for p in PoseParts if p in stale)
    return f'<td class="stale">stale: {text} ({frame.pose_age_ms} ms)</td>' if stale else "<td>ok</td>"


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _table(frames: list[FrameRow], start_ns: int) -> str:
    head = (
        "<tr><th>frame</th><th>time (s)</th><th>coverage (%)</th><th>cracks</th><th>length (px)</th>"
        "<th>max width (px)</th><th>lat</th><th>lon</th><th>chainage (m)</th><th>pose</th></tr>"
    )
    rows = [
        f'<tr id="frame-{f.frame_id}"><td>{f.frame_id}</td><td>{(f.capture_ns - start_ns) / 1e9:.3f}</td>'
        f"<td>{f.coverage_pct:.3f}</td><td>{f.components}</td><td>{f.skeleton_px}</td><td>{f.max_width_px:.0f}</td>"
        f"<td>{_number(f.lat_deg, 7)}</td><td>{_number(f.lon_deg, 7)}</td><td>{_number(f.chainage_m, 2)}</td>"
        f"{_pose_cell(f)}</tr>"
        for f in frames
    ]
    return "<table>" + head + "".join(rows) + "</table>"


def _run_facts(recording: Recording) -> str:
    info = recording.info
    frames = recording.frames
    versions = info.get("versions") or {}
    facts = {
        "recording": f"{recording.path.name}, run {recording.run_id} of {recording.runs}",
        "started": _time(recording.started_ns),
        "model": f"{info.get('model', '?')} ({info.get('arch', '?')}), hash {frames[0].model_hash if frames else '?'}",
        "threshold": f"{frames[0].threshold:.3f}" if frames else _number(info.get("threshold"), 3) or "?",
        "statistics": _STATS_FACT.get(info.get("stats", "exact"), "?"),
        "source": info.get("source", "?"),
        "pose inputs": ", ".join(f"{k} {info[k]}" for k in ("mavlink", "odometry") if info.get(k)) or "none",
        "software": ", ".join(f"{name} {version}" for name, version in sorted(versions.items()) if version) or "?",
    }
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts.items()) + "</dl>"


def _summary(frames: list[FrameRow]) -> str:
    cracked = [f for f in frames if f.crack_pixels]
    posed = [f for f in frames if f.pose_parts is not None]
    duration = (frames[-1].capture_ns - frames[0].capture_ns) / 1e9 if frames else 0.0
    items = [
        f"{len(frames)} frames over {duration:.1f} s, {len(cracked)} with cracks",
        f"largest coverage {max((f.coverage_pct for f in frames), default=0):.2f} %, widest crack "
        f"{max((f.max_width_px for f in frames), default=0):.0f} px",
    ]
    if posed:
        stale = sum(f.pose_stale_any for f in posed)
        missing = sum(f.pose_missing for f in posed)
        items.append(f"pose: {len(posed) - stale - missing} current, {stale} stale, {missing} missing")
        held = sum(1 for f in cracked if f.has_position and not f.position_placed)
        if held:
            items.append(f"{held} frames with cracks had a stale position (the last fix held): not placed on the map")
    else:
        items.append("pose: no pose source was configured")
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _masks_folder(recording: Recording) -> str:
    return recording.path.stem + "-masks"


def _no_map_reason(recording: Recording) -> str:
    """Why there is no map: no pose input, or one that delivered nothing usable (never "run with" one it had)."""
    inputs = [f"--{name} {recording.info[name]}" for name in ("mavlink", "odometry") if recording.info.get(name)]
    if not inputs:
        return "No position or chainage was recorded: run with --mavlink or --odometry."
    held = sum(1 for f in recording.frames if f.has_position)
    if held:
        return (
            f"The run used {' and '.join(inputs)}, but every position was stale ({held} frames held an old fix): "
            "no detection could be placed."
        )
    return (
        f"The run used {' and '.join(inputs)}, but no position or chainage was received during it: check that the "
        "autopilot or odometry sends to this address."
    )


def render_report(recording: Recording, worst: int = 12, inventory: Inventory | None = None) -> str:
    """The whole HTML page for one recorded run (with its crack inventory, when one was built)."""
    frames = recording.frames
    start_ns = frames[0].capture_ns if frames else recording.started_ns
    times = [(f.capture_ns - start_ns) / 1e9 for f in frames]
    cracks = inventory_rows(inventory) if inventory is not None else []
    placed = [c for c in cracks if c.line_lonlat]  # cracks in a pipe have a chainage, no lon/lat
    crack_map = map_chart(frames, placed) or f"<p>{escape(_no_map_reason(recording))}</p>"
    timeline = line_chart(times, [f.coverage_pct for f in frames], "coverage", "%", pose_gaps(frames, start_ns))
    charts = timeline + "".join(
        line_chart(times, [getattr(f, name) for f in frames], title, unit)
        for name, title, unit in (
            ("skeleton_px", "crack length", "px"),
            ("max_width_px", "maximum width", "px"),
        )
    )
    views = [(f, frame_view(recording, f, _GALLERY_WIDTH_PX)) for f in worst_frames(frames, worst)]
    gallery = "".join(
        f'<figure><a href="#frame-{f.frame_id}"><img src="{view}" '
        f'alt="frame {f.frame_id}"></a><figcaption>frame {f.frame_id}: {f.coverage_pct:.2f} %</figcaption></figure>'
        for f, view in views
        if view is not None
    )
    if views and not gallery:
        gallery = (
            f"<p>The masks of this recording are missing (copied without its {escape(_masks_folder(recording))} "
            "folder?): the gallery is left out; the statistics below are complete.</p>"
        )
    if not frames:
        gallery = "<p><strong>No frames were recorded: nothing was inspected.</strong></p>"  # never "no cracks"
    elif not gallery:
        gallery = "<p>No cracks detected.</p>"
    title = f"crackseg report: {recording.path.name}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<h2>Run</h2>{_run_facts(recording)}<h2>Summary</h2>{_summary(frames)}"
        f"<h2>Crack inventory</h2>{inventory_table(inventory, recording, _GALLERY_WIDTH_PX)}"
        f"<h2>Map of crack detections</h2>{crack_map}<h2>Coverage timeline</h2>{charts}"
        f'<h2>Worst frames</h2><div class="gallery">{gallery}</div>'
        f"<h2>Every frame</h2>{_table(frames, start_ns)}<script>{SORT_SCRIPT}</script></body></html>"
    )
