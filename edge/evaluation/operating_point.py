"""False-positive components: the clutter an operator sees on an overlay, which pixel F1 hides.

Pixel precision weighs a false detection by its area; an operator counts blobs. A texture patch of 40
pixels and a 4,000-pixel false crack are one false alarm each on the overlay. A predicted component
(8-connected, at the operating threshold) is false when no labelled crack pixel lies within
``tolerance_px`` of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from crackseg.edge.evaluation.metrics import binarize

__all__ = ["ClutterCounter", "false_positive_components"]


def false_positive_components(
    predicted: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_], tolerance_px: int = 2
) -> int:
    """Predicted 8-connected components with no labelled crack pixel within ``tolerance_px``."""
    count, labels = cv2.connectedComponents(predicted.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    if count <= 1:
        return 0
    size = 2 * tolerance_px + 1
    near_truth = cv2.dilate(truth.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    touched = np.unique(labels[near_truth])
    return int(count - 1 - np.count_nonzero(touched > 0))


@dataclass
class ClutterCounter:
    """Accumulates false-positive components over a dataset at one threshold; called once per image."""

    threshold: float
    tolerance_px: int = 2
    per_image: list[int] = field(default_factory=list)
    crack_free_images: list[int] = field(default_factory=list)

    def update(self, prob: npt.NDArray[np.floating], truth: npt.NDArray[np.bool_]) -> None:
        false_alarms = false_positive_components(binarize(prob, self.threshold), truth, self.tolerance_px)
        self.per_image.append(false_alarms)
        if not truth.any():
            self.crack_free_images.append(false_alarms)

    def summary(self) -> dict[str, float | int | None]:
        """Mean false components per image, and the same over images whose label has no crack (None if none)."""
        free = self.crack_free_images
        return {
            "fp_components_per_image": float(np.mean(self.per_image)) if self.per_image else 0.0,
            "crack_free_images": len(free),
            "fp_components_per_crack_free_image": float(np.mean(free)) if free else None,
        }
