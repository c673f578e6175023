"""The crack inventory of a recorded run (issue 27), rebuilt from its masks, poses and recorded camera.

A run recorded with ``--camera`` or ``--hfov`` (and a pose source) carries everything the inventory
needs: each frame's mask, the pose at its capture and the camera model. The report rebuilds the
inventory from them after the run, so the live pipeline pays nothing for it.
"""

from __future__ import annotations

import logging
from html import escape

from crackseg.edge.report.recording import Recording
from crackseg.edge.report.views import frame_view
from crackseg.edge.runtime.inventory.associate import Inventory
from crackseg.edge.runtime.inventory.camera import camera_from_record
from crackseg.edge.runtime.inventory.formats import CrackRow, inventory_rows
from crackseg.edge.runtime.sinks.record import RecordError, load_mask

__all__ = ["build_inventory", "inventory_table"]

log = logging.getLogger(__name__)


def build_inventory(recording: Recording) -> Inventory | None:
    """The run's inventory, or ``None`` when the run recorded no camera model (or no frame), or its masks are
    missing (a recording copied without its masks folder)."""
    record = recording.info.get("camera")
    if not record or not recording.frames:
        return None
    first = recording.frames[0]
    inventory = Inventory(camera_from_record(record, first.width, first.height))
    for frame in recording.frames:
        if frame.crack_pixels:
            try:
                mask = load_mask(recording.path, frame.mask_path)
            except RecordError as exc:
                log.warning("no crack inventory: %s (was the recording copied without its masks folder?)", exc)
                return None
            inventory.add_frame(frame.frame_id, frame.capture_ns, mask, frame.pose)
    return inventory


def inventory_table(inventory: Inventory | None, recording: Recording | None = None, view_px: int = 480) -> str:
    """The HTML section body: one row per crack in SI units, or why there is no inventory.

    With the ``recording``, each crack links to its best view (:func:`~crackseg.edge.report.views.frame_view`:
    the camera thumbnail with the mask drawn), shown below the table when the crack is clicked (CSS
    ``:target``, no script).
    """
    if inventory is None and recording is not None and recording.info.get("camera") and recording.frames:
        return "<p>The run recorded a camera, but the recording's masks are missing: no inventory.</p>"
    if inventory is None:
        return "<p>No camera model was recorded: run with --camera FILE or --hfov DEG to measure cracks in metres.</p>"
    rows = inventory_rows(inventory)
    note = (
        f"<p>{len(rows)} cracks on flat ground at the take-off altitude"
        + (f"; {inventory.unplaced} frames with cracks had no usable pose" if inventory.unplaced else "")
        + ".</p>"
    )
    head = (
        "<tr><th>crack</th><th>length (m)</th><th>max width (mm)</th><th>area (m²)</th><th>views</th>"
        "<th>first seen</th><th>last seen</th><th>best frame</th><th>lon, lat (start)</th></tr>"
    )
    body = "".join(
        f'<tr><td><a href="#crack-{r.id}">{r.id}</a></td>'
        f"<td>{r.length_m:.2f}{'' if r.complete else ' ≥'}</td><td>{r.max_width_m * 1e3:.0f}</td>"
        f"<td>{r.area_m2:.3f}</td><td>{r.views}</td><td>{escape(r.first_seen)}</td><td>{escape(r.last_seen)}</td>"
        f'<td><a href="#frame-{r.best_frame_id}">{r.best_frame_id}</a></td>'
        f"<td>{r.line_lonlat[0][0]:.7f}, {r.line_lonlat[0][1]:.7f}</td></tr>"
        for r in rows
    )
    return note + "<table>" + head + body + "</table>" + _best_views(rows, recording, view_px)


def _best_views(rows: list[CrackRow], recording: Recording | None, view_px: int) -> str:
    """One hidden figure per crack, its best view, shown when its link is followed (``#crack-N``)."""
    if recording is None:
        return ""
    frames = {frame.frame_id: frame for frame in recording.frames}
    figures = []
    for row in rows:
        frame = frames.get(row.best_frame_id)
        view = None if frame is None else frame_view(recording, frame, view_px)
        if view is None:
            continue
        figures.append(
            f'<figure id="crack-{row.id}"><img src="{view}" alt="crack {row.id}, best view: frame {row.best_frame_id}">'
            f"<figcaption>crack {row.id}: best view, frame {row.best_frame_id} ({row.length_m:.2f} m long, "
            f"{row.max_width_m * 1e3:.0f} mm wide)</figcaption></figure>"
        )
    return '<div class="views">' + "".join(figures) + "</div>" if figures else ""
