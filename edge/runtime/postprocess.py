"""From a crack-probability map to what the vehicle acts on: a binary mask and its statistics.

A pixel is crack when ``p > threshold``: the evaluation core's one binarization rule
(``crackseg.edge.evaluation.metrics.binarize``), with which the spec's operating threshold was chosen, so the
runtime reproduces the reported accuracy exactly.
Optional hysteresis (as in Canny edge linking) also keeps the pixels above a lower threshold that are
8-connected to a pixel above the main one: faint stretches of a crack survive, isolated faint noise does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crackseg.edge.evaluation import metrics
from crackseg.edge.evaluation.operating_point import drop_small_components
from crackseg.edge.runtime.stats import CrackStats, StatsMode, check_stats_mode, crack_stats

__all__ = ["FrameResult", "Postprocessor", "binarize"]


def binarize(prob: np.ndarray, threshold: float, low: float | None = None) -> np.ndarray:
    """Bool mask of ``prob > threshold``, plus (hysteresis) the ``prob > low`` regions that touch it.

    Args:
        prob: ``HxW`` crack probability.
        threshold: strong threshold; every pixel above it is crack.
        low: weak threshold (``low < threshold``); ``None`` disables hysteresis.
    """
    strong = metrics.binarize(prob, threshold)
    if low is None:
        return strong
    if not low < threshold:
        raise ValueError(f"the hysteresis threshold {low} must be below the threshold {threshold}")
    import cv2

    weak = metrics.binarize(prob, low).view(np.uint8)
    count, labels = cv2.connectedComponents(weak, connectivity=8, ltype=cv2.CV_32S)
    keep = np.zeros(count, dtype=bool)
    keep[labels[strong]] = True
    keep[0] = False  # label 0 is the background of the weak mask
    return keep[labels]


@dataclass(frozen=True)
class Postprocessor:
    """Threshold (with optional hysteresis) and measure one probability map.

    Attributes:
        threshold: operating threshold, normally the model spec's.
        hysteresis_low: weak threshold for hysteresis, or ``None``.
        max_boxes: bounding boxes kept per frame (largest components first).
        stats_mode: ``exact`` statistics, or ``fast`` estimates of skeleton length and width
            (``crackseg.edge.runtime.stats``, with their measured error).
        min_component_px: the spec's component rule: crack components smaller than this are dropped, so
            the runtime publishes the masks the evaluator scored (0: every component kept).
    """

    threshold: float
    hysteresis_low: float | None = None
    max_boxes: int = 16
    stats_mode: StatsMode = "exact"
    min_component_px: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must lie in [0, 1), got {self.threshold}")
        if self.hysteresis_low is not None and not 0.0 <= self.hysteresis_low < self.threshold:
            raise ValueError(
                f"the hysteresis threshold must lie in [0, threshold = {self.threshold}), got {self.hysteresis_low}"
            )
        check_stats_mode(self.stats_mode)
        if self.min_component_px < 0:
            raise ValueError(f"min_component_px must be >= 0, got {self.min_component_px}")

    @property
    def thresholds_alone(self) -> bool:
        """The mask is ``prob > threshold`` pixel by pixel (no hysteresis), so a GPU backend may make it."""
        return self.hysteresis_low is None

    def __call__(self, prob: np.ndarray) -> tuple[np.ndarray, CrackStats]:
        return self.measure(binarize(prob, self.threshold, self.hysteresis_low))

    def measure(self, mask: np.ndarray) -> tuple[np.ndarray, CrackStats]:
        """The mask after the component rule and its statistics, for a thresholded mask (made by
        :meth:`__call__`, or on the device where :attr:`thresholds_alone`)."""
        mask = drop_small_components(mask, self.min_component_px)
        return mask, crack_stats(mask, self.max_boxes, self.stats_mode)


@dataclass(frozen=True, eq=False)
class FrameResult:
    """One processed frame, as the sinks receive it.

    Attributes:
        frame_id: the source's frame index.
        capture_ns: when the frame was captured (``time.time_ns()``, stamped by the source).
        source_id: the source's id, as stamped on the frame.
        mask: bool ``HxW`` crack mask at the frame's resolution.
        stats: statistics of ``mask``.
        threshold: threshold that produced ``mask``.
    """

    frame_id: int
    capture_ns: int
    source_id: str
    mask: np.ndarray
    stats: CrackStats
    threshold: float
