"""The crack inventory of a recorded run (issue 27), rebuilt from its masks, poses and recorded camera.

A run recorded with ``--camera`` or ``--hfov`` (and a pose source) carries everything the inventory
needs: each frame's mask, the pose at its capture, the camera model, and the cracks the recorder traced
(a few frames a second: :mod:`crackseg.edge.runtime.sinks.record`). The report traces the other frames,
projects and associates them after the run.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from html import escape
from pathlib import Path

from crackseg.edge.artifact.size import Size
from crackseg.edge.report.recording import Recording
from crackseg.edge.report.views import frame_view
from crackseg.edge.runtime.inventory.associate import Inventory
from crackseg.edge.runtime.inventory.camera import camera_from_record
from crackseg.edge.runtime.inventory.formats import CrackRow, inventory_rows
from crackseg.edge.runtime.inventory.measure import MIN_CRACK_PIXELS, CrackTrace, load_traces, trace_cracks
from crackseg.edge.runtime.sinks.record import RecordError, load_mask

__all__ = ["FRAMES_PER_TASK", "SORT_SCRIPT", "VIEWS_BUDGET_BYTES", "build_inventory", "inventory_table"]

VIEWS_BUDGET_BYTES = 8_000_000
"""Most bytes of best-view images the page embeds (about 160 views of 480 px): the longest cracks' views first;
the other cracks name their best frame, which the recording and NAME.mcap keep. Bounds the page of a long survey."""

FRAMES_PER_TASK = 32
"""Frames a worker traces per task; a recording of fewer than two tasks' frames is traced in this process."""

log = logging.getLogger(__name__)


def _traced(job: tuple[Path, str, int]) -> tuple[list[CrackTrace], Size]:
    """One recorded frame's cracks in pixels and its mask's size (a worker's task: it reads and needs no state)."""
    db, mask_path, min_pixels = job
    mask = load_mask(db, mask_path)
    return trace_cracks(mask, min_pixels), Size(mask.shape[0], mask.shape[1])


def build_inventory(recording: Recording) -> Inventory | None:
    """The run's inventory, or ``None`` when the run recorded no camera model (or no frame), or the masks of
    frames it did not trace are missing (a recording copied without its masks folder).

    The cracks traced while recording are read back; frames recorded without traces are traced here, on every
    core (:data:`FRAMES_PER_TASK` frames a task). Projection and association follow in frame order.
    """
    record = recording.info.get("camera")
    if not record or not recording.frames:
        return None
    first = recording.frames[0]
    diameter = recording.info.get("pipe_diameter_m")
    camera = camera_from_record(record, first.width, first.height)
    inventory = Inventory(
        camera,
        min_pixels=int(recording.info.get("trace_min_px", MIN_CRACK_PIXELS)),
        pipe_diameter_m=None if diameter is None else float(diameter),
    )
    frames = [frame for frame in recording.frames if frame.crack_pixels]
    jobs = [(recording.path, frame.mask_path, inventory.min_pixels) for frame in frames if frame.traces is None]
    workers = min(len(os.sched_getaffinity(0)), -(-len(jobs) // FRAMES_PER_TASK))
    try:
        with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            traced = map(_traced, jobs) if pool is None else pool.map(_traced, jobs, chunksize=FRAMES_PER_TASK)
            for frame in frames:
                traces, size = (
                    next(traced)
                    if frame.traces is None
                    else (load_traces(frame.traces), Size(frame.height, frame.width))
                )
                kept = frame.thumb_path is not None  # a thumbnail: the view a person can check
                inventory.add_traces(frame.frame_id, frame.capture_ns, traces, size, frame.pose, photographed=kept)
    except RecordError as exc:
        log.warning("no crack inventory: %s (was the recording copied without its masks folder?)", exc)
        return None
    return inventory


def inventory_table(
    inventory: Inventory | None, recording: Recording | None = None, view_px: int = 480,
    budget_bytes: int = VIEWS_BUDGET_BYTES,
) -> str:  # fmt: skip
    """The HTML section body: one row per crack in SI units, or why there is no inventory.

    With the ``recording``, each crack links to its best view (:func:`~crackseg.edge.report.views.frame_view`:
    the camera thumbnail with the mask drawn), shown below the table when the crack is clicked (CSS
    ``:target``, no script). The views embedded take at most ``budget_bytes``, the longest cracks' first.
    """
    if inventory is None and recording is not None and recording.info.get("camera") and recording.frames:
        return "<p>The run recorded a camera, but the recording's masks are missing: no inventory.</p>"
    if inventory is None:
        return "<p>No camera model was recorded: run with --camera FILE or --hfov DEG to measure cracks in metres.</p>"
    rows = inventory_rows(inventory)
    pipe = inventory.pipe_diameter_m
    surface = "on flat ground at the take-off altitude" if pipe is None else f"on the wall of a {pipe:g} m pipe"
    note = (
        f"<p>{len(rows)} cracks {surface}"
        + (f"; {inventory.unplaced} frames with cracks had no usable pose" if inventory.unplaced else "")
        + ".</p>"
    )
    columns = _COLUMNS if pipe is None else _COLUMNS[:-1] + _PIPE_COLUMNS
    head = "<thead><tr>" + "".join(f'<th data-key="{key}">{label}</th>' for key, label in columns) + "</tr></thead>"
    body = "".join(
        f'<tr><td data-sort="{r.id}"><a href="#crack-{r.id}">{r.id}</a></td>'
        f'<td data-sort="{r.length_m}">{r.length_m:.2f}{"" if r.complete else " ≥"}</td>'
        f'<td data-sort="{r.max_width_m}">{r.max_width_m * 1e3:.0f}</td>'
        f'<td data-sort="{r.area_m2}">{r.area_m2:.3f}</td>'
        f'<td data-sort="{r.views}">{r.views}</td><td>{escape(r.first_seen)}</td><td>{escape(r.last_seen)}</td>'
        f'<td data-sort="{r.best_frame_id}"><a href="#frame-{r.best_frame_id}">{r.best_frame_id}</a></td>'
        f"{_place(r)}</tr>"
        for r in rows
    )
    table = f'<table class="sortable" id="inventory">{head}<tbody>{body}</tbody></table>'
    return note + table + _best_views(rows, recording, view_px, budget_bytes)


_COLUMNS = (
    ("id", "crack"), ("length_m", "length (m)"), ("max_width_m", "max width (mm)"), ("area_m2", "area (m²)"),
    ("views", "views"), ("first_seen", "first seen"), ("last_seen", "last seen"), ("best_frame", "best frame"),
    ("start", "lon, lat (start)"),
)  # fmt: skip
"""The inventory table's columns: the key a ``?sort=KEY`` (or ``KEY-desc``) in the page's URL sorts by, the header."""
_PIPE_COLUMNS = (("chainage_m", "chainage (m)"), ("clock", "clock (from-to)"))
"""In a pipe, instead of the start's lon, lat."""


def _place(row: CrackRow) -> str:
    """Where the crack is: its start's lon, lat, or in a pipe its chainage and clock position."""
    if row.line_lonlat:
        return f"<td>{row.line_lonlat[0][0]:.7f}, {row.line_lonlat[0][1]:.7f}</td>"
    return (
        f'<td data-sort="{row.chainage_m}">{row.chainage_m:.2f}-{row.chainage_end_m:.2f}</td>'
        f'<td data-sort="{row.clock}">{row.clock} ({row.clock_from}-{row.clock_to})</td>'
    )


SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
  function value(row, col) {
    var cell = row.cells[col];
    return cell.dataset.sort !== undefined ? Number(cell.dataset.sort) : cell.textContent;
  }
  function sortBy(col, descending) {
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, col), y = value(b, col);
      var order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.dataset.sorted = heads[col].dataset.key + (descending ? "-desc" : "");
  }
  Array.prototype.forEach.call(heads, function (head, col) {
    head.title = "click to sort";
    head.style.cursor = "pointer";
    head.addEventListener("click", function () { sortBy(col, table.dataset.sorted === head.dataset.key); });
  });
  var wanted = new URLSearchParams(window.location.search).get("sort");
  Array.prototype.forEach.call(heads, function (head, col) {
    if (wanted && wanted.replace(/-desc$/, "") === head.dataset.key) { sortBy(col, /-desc$/.test(wanted)); }
  });
});
"""
"""Sorts tables of class ``sortable`` by a clicked header (again: descending), or on load by ``?sort=KEY[-desc]``;
the report's only script, inline."""


def _best_views(rows: list[CrackRow], recording: Recording | None, view_px: int, budget_bytes: int) -> str:
    """One hidden figure per crack, its best view, shown when its link is followed (``#crack-N``); past the
    budget, the longest cracks' views having been embedded first, a figure that names the frame instead."""
    if recording is None:
        return ""
    frames = {frame.frame_id: frame for frame in recording.frames}
    figures, spent, full = {}, 0, False
    for row in sorted(rows, key=lambda r: (-r.length_m, r.id)):
        frame = frames.get(row.best_frame_id)
        about = f"crack {row.id}: best view, frame {row.best_frame_id} ({row.length_m:.2f} m long, " + (
            f"{row.max_width_m * 1e3:.0f} mm wide)"
        )
        view = None if frame is None or full else frame_view(recording, frame, view_px)
        full = full or (view is not None and spent + len(view) > budget_bytes)
        if full:
            figures[row.id] = (
                f'<figure id="crack-{row.id}"><figcaption>{about}: not embedded, the page keeps at most '
                f"{budget_bytes / 1e6:g} MB of views (the longest cracks' first); the recording keeps the frame"
                "</figcaption></figure>"
            )
            continue
        if view is None:
            continue
        spent += len(view)
        figures[row.id] = (
            f'<figure id="crack-{row.id}"><img src="{view}" alt="crack {row.id}, best view: frame {row.best_frame_id}">'
            f"<figcaption>{about}</figcaption></figure>"
        )
    ordered = [figures[row.id] for row in rows if row.id in figures]
    return '<div class="views">' + "".join(ordered) + "</div>" if ordered else ""
