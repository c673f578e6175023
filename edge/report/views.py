"""A recorded frame as a person checks it: the camera's pixels (or neutral grey) with the mask, boxes and caption.

Recordings keep each frame's mask and, for frames with cracks, a JPEG thumbnail of the camera frame
(:mod:`crackseg.edge.runtime.sinks.record`). The view draws the mask over the thumbnail with the live
``--overlay``'s drawing, so a reader can tell a crack from a joint or a shadow; recordings without
thumbnails get the mask on grey. Views are bounded JPEG (photographs) or PNG (grey) ``data:`` URIs.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np

from crackseg.edge.report.recording import FrameRow, Recording
from crackseg.edge.runtime.overlay import caption, draw_overlay
from crackseg.edge.runtime.sinks.record import RecordError, load_mask, load_thumbnail
from crackseg.edge.runtime.stats import CrackBox, CrackStats

__all__ = ["frame_view", "stats_of"]

_GREY = 96
_JPEG_QUALITY = 85


def stats_of(frame: FrameRow) -> CrackStats:
    """The frame's recorded statistics."""
    boxes = tuple(CrackBox(*box) for box in json.loads(frame.boxes))
    return CrackStats(
        frame.crack_pixels, frame.coverage_pct, frame.components, frame.skeleton_px, frame.max_width_px, boxes
    )


def frame_view(recording: Recording, frame: FrameRow, width_px: int) -> str | None:
    """The frame drawn ``width_px`` wide as a ``data:`` URI; ``None`` when its mask file is missing.

    Pixels stay sharp when the mask is enlarged (hair-line cracks stay visible) and the caption is drawn at
    a readable size, in the view's own pixels.
    """
    import cv2

    try:
        mask = load_mask(recording.path, frame.mask_path)
    except RecordError:
        return None
    scale = width_px / mask.shape[1]
    size = (width_px, max(1, round(mask.shape[0] * scale)))
    interpolation = cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA
    mask = cv2.resize(mask.view(np.uint8), size, interpolation=interpolation) > 0
    stats = stats_of(frame)
    boxes = tuple(
        CrackBox(
            round(b.x * scale), round(b.y * scale), max(1, round(b.w * scale)), max(1, round(b.h * scale)), b.pixels
        )
        for b in stats.boxes
    )
    thumbnail = load_thumbnail(recording.path, frame.thumb_path)
    if thumbnail is None:
        base = np.full((*mask.shape, 3), _GREY, np.uint8)
    else:
        base = cv2.resize(thumbnail, size, interpolation=cv2.INTER_AREA)
    lines = caption(frame.frame_id, stats, frame.pose)  # the recorded statistics, in the mask's own pixels
    bgr = draw_overlay(base, mask, dataclasses.replace(stats, boxes=boxes), lines)
    if thumbnail is None:
        ok, data = cv2.imencode(".png", bgr)
        kind = "png"
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        kind = "jpeg"
    assert ok, "OpenCV encodes any uint8 BGR image"
    return f"data:image/{kind};base64," + base64.b64encode(data.tobytes()).decode()
