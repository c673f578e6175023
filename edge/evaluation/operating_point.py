"""What a deployed model delivers: its operating point, scored as the curve is, and the clutter it leaves.

The precision-recall curve scores the probability map at every threshold. A shipped model applies one
threshold and its spec's component rule (components smaller than ``min_component_px`` dropped), so
:class:`OperatingPoint` scores exactly that mask with the same protocols (strict and tolerance), and
counts false-positive components: the blobs an operator sees on an overlay where no crack is. Pixel
precision weighs a false detection by its area; an operator counts blobs, and a 40-pixel texture patch
and a 4,000-pixel false crack are one false alarm each. A predicted component (8-connected) is false
when no labelled crack pixel lies within 2 px of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from crackseg.edge.evaluation.metrics import CrackMetrics, binarize

__all__ = ["OperatingPoint", "drop_small_components", "false_positive_components"]

_NEAR_TRUTH_PX = 2


def drop_small_components(mask: npt.NDArray[np.bool_], min_px: int) -> npt.NDArray[np.bool_]:
    """``mask`` without its 8-connected components of fewer than ``min_px`` pixels (a spec's component rule)."""
    if min_px <= 1 or not mask.any():
        return mask
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_px
    keep[0] = False  # the background
    return keep[labels]


def false_positive_components(
    predicted: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_], tolerance_px: int = _NEAR_TRUTH_PX
) -> int:
    """Predicted 8-connected components with no labelled crack pixel within ``tolerance_px``."""
    count, labels = cv2.connectedComponents(predicted.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    if count <= 1:
        return 0
    size = 2 * tolerance_px + 1
    near_truth = cv2.dilate(truth.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
    touched = np.unique(labels[near_truth])
    return int(count - 1 - np.count_nonzero(touched > 0))


class OperatingPoint:
    """Scores the masks a model ships with (threshold + component rule) over a dataset, one image at a time.

    Args:
        threshold: the spec's operating threshold.
        min_component_px: the spec's component rule (0: none).
        tolerances_px: the protocols to score under, as for the curve (0 is strict).
    """

    def __init__(self, threshold: float, min_component_px: int = 0, tolerances_px: Sequence[int] = (0,)) -> None:
        self.threshold = threshold
        self.min_component_px = min_component_px
        # The mask as a 0/1 map scored at one threshold: the curve's own counting, so with no component rule
        # the figures equal the curve's at the operating threshold.
        self._protocols = {tol: CrackMetrics(thresholds=[0.5], tolerance_px=tol) for tol in tolerances_px}
        self._false_components: list[int] = []
        self._crack_free: list[int] = []

    def update(self, prob: npt.NDArray[np.floating], truth: npt.NDArray[np.bool_]) -> None:
        mask = drop_small_components(binarize(prob, self.threshold), self.min_component_px)
        for protocol in self._protocols.values():
            protocol.update(mask.astype(np.float32), truth)
        false_alarms = false_positive_components(mask, truth)
        self._false_components.append(false_alarms)
        if not truth.any():
            self._crack_free.append(false_alarms)

    def scores(self, tolerance_px: int) -> dict[str, float]:
        """Precision, recall and F1 of the shipped masks under one protocol."""
        report = self._protocols[tolerance_px].compute()
        return {"precision": report.precision[0], "recall": report.recall[0], "f1": report.f1_at(0.5)}

    def clutter(self) -> dict[str, float | int | None]:
        """Mean false components per image, and the same over images whose label has no crack (None if none)."""
        free = self._crack_free
        return {
            "fp_components_per_image": float(np.mean(self._false_components)) if self._false_components else 0.0,
            "crack_free_images": len(free),
            "fp_components_per_crack_free_image": float(np.mean(free)) if free else None,
        }
