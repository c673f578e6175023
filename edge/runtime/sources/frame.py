"""The unit every source delivers and every later stage carries along: pixels plus provenance.

Latency is measured from ``capture_ns`` to publish, so sources stamp it the moment a frame exists
(grabbed from a camera, or released by a paced file reader), never when a consumer picks it up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Frame"]


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image.

    Attributes:
        image: ``uint8`` array ``(H, W, 3)`` in **RGB** order (OpenCV's BGR is converted by the source).
        frame_id: source-assigned, strictly increasing; gaps mean frames dropped before delivery.
        capture_ns: ``time.time_ns()`` when the frame was captured (grabbed or released by the pacer).
        source_id: which source produced it (its URI, password masked, unless overridden).
        mask_gt: ground-truth crack mask ``bool (H, W)``; only synthetic and dataset sources have one.
        name: a human name for the frame, e.g. the image file's stem.
    """

    image: np.ndarray
    frame_id: int
    capture_ns: int
    source_id: str
    mask_gt: np.ndarray | None = None
    name: str | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
