"""What the operator sees: a frame with its crack mask, boxes and statistics drawn on it.

One drawing for every place a person looks at the model's output: the live ``--overlay`` video and
the gallery of ``crackseg report``. Crack pixels are tinted red (60 % red, 40 % image, so the texture
stays visible), the largest components get their boxes, and a caption band at the top says what the
controller receives: coverage, skeleton length, maximum width, and the pose when there is one.
"""

from __future__ import annotations

import numpy as np

from crackseg.edge.runtime.pose import Pose
from crackseg.edge.runtime.stats import CrackStats

__all__ = ["caption", "draw_overlay", "fit_lines"]

_CRACK_BGR = np.array((0, 0, 255), np.uint16)
_IMAGE_PARTS, _CRACK_PARTS = 2, 3  # of 5: 40 % image, 60 % red, blended in integer arithmetic
_BOX_BGR = (0, 255, 255)
_TEXT_BGR = (255, 255, 255)
_BAND_BGR = (0, 0, 0)
_FONT_SCALE = 0.45
_LINE_PX = 16


def caption(frame_id: int, stats: CrackStats, pose: Pose | None) -> list[str]:
    """The caption lines of a frame: its statistics, then its pose (if any, with ``STALE`` marked)."""
    lines = [
        f"frame {frame_id}  coverage {stats.coverage_pct:.2f}%  length {stats.skeleton_px} px  "
        f"width {stats.max_width_px:.0f} px  cracks {stats.components}"
    ]
    if pose is not None:
        fresh = pose.present and not pose.stale
        lines.append(pose.describe() + (f"  pose age {pose.age_ms} ms" if fresh else ""))
    return lines


def fit_lines(lines: list[str], width_px: int) -> list[str]:
    """``lines`` broken at their double spaces so that each fits ``width_px`` as drawn (nothing is cut off).

    A single group of words wider than the image stays whole on its own line.
    """
    import cv2

    def fits(text: str) -> bool:
        return bool(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, 1)[0][0] <= width_px - 8)

    fitted = []
    for line in lines:
        current = ""
        for group in line.split("  "):
            candidate = f"{current}  {group}" if current else group
            if current and not fits(candidate):
                fitted.append(current)
                candidate = group
            current = candidate
        fitted.append(current)
    return fitted


def draw_overlay(image_rgb: np.ndarray, mask: np.ndarray, stats: CrackStats, lines: list[str]) -> np.ndarray:
    """A new BGR image: ``image_rgb`` (HxWx3 uint8) with ``mask`` (bool HxW) tinted, boxes and ``lines`` drawn."""
    import cv2

    bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    crack = np.flatnonzero(mask)  # flat pixel indices: 5x cheaper than bool-mask indexing of the HxWx3 image
    pixels = bgr.reshape(-1, 3)  # a view: cvtColor's output is contiguous
    blend = pixels[crack].astype(np.uint16) * _IMAGE_PARTS + _CRACK_BGR * _CRACK_PARTS
    pixels[crack] = (blend // (_IMAGE_PARTS + _CRACK_PARTS)).astype(np.uint8)
    for box in stats.boxes:
        cv2.rectangle(bgr, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), _BOX_BGR, 1)
    fitted = fit_lines(lines, bgr.shape[1])
    if _LINE_PX * len(fitted) <= bgr.shape[0] // 2:  # broken lines only where the band leaves the image visible
        lines = fitted
    band = min(bgr.shape[0], _LINE_PX * len(lines) + 4)
    bgr[:band] = bgr[:band] // 3  # darken, so white text reads on any background
    for i, line in enumerate(lines):
        baseline = _LINE_PX * (i + 1) - 2
        cv2.putText(bgr, line, (4, baseline), cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, _TEXT_BGR, 1, cv2.LINE_AA)
    return bgr
