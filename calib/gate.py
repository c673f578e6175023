"""Accuracy gate: an INT8 model ships only if it scores within an F1 budget of its float original.

Both models are scored by the one evaluator (:func:`crackseg.edge.evaluation.evaluate.evaluate`) on held-out
images (validation by default; never the calibration images), so the figures are the ones ``crackseg
eval`` reports. The gate compares F1 in points (1 point = 0.01 F1) twice, and both must stay within the
budget: ODS F1 (each model at its own best threshold) and F1 at the operating threshold that ships (the
FP32 spec's, which the INT8 model carries unchanged): an INT8 model whose best threshold moved would
pass on ODS and still lose accuracy at the threshold it runs with. It also lists the images INT8 hurts
most: per-image F1 against the ground truth at the operating threshold (``p > threshold``), for each
model, and the agreement (F1 of the INT8 mask against the float mask).

Per-image F1 zero-division policy: an image with no crack in either mask scores 1 (nothing to find,
nothing wrongly found), as ``CrackMetrics`` treats empty-GT images; otherwise ``2tp / (2tp + fp + fn)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.backends.base import Runner
from crackseg.edge.evaluation.dataset import CrackDataset
from crackseg.edge.evaluation.evaluate import evaluate
from crackseg.edge.evaluation.metrics import MetricsReport, binarize, mask_f1

__all__ = ["DEFAULT_BUDGET_POINTS", "GateError", "GateReport", "ImageDrop", "check_gate", "compare"]

DEFAULT_BUDGET_POINTS = 1.0
"""Largest F1 loss (ODS, and at the operating threshold), in points, that INT8 may have against FP32."""


class GateError(CracksegError):
    """The INT8 model loses more accuracy than the budget allows."""


@dataclass(frozen=True)
class ImageDrop:
    """One image's F1 at the operating threshold under both models.

    Attributes:
        stem: the image's dataset stem.
        f1_fp32: FP32 mask against the ground truth.
        f1_int8: INT8 mask against the ground truth.
        agreement: INT8 mask against the FP32 mask (1 = identical masks).
    """

    stem: str
    f1_fp32: float
    f1_int8: float
    agreement: float

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.f1_fp32 - self.f1_int8)


@dataclass(frozen=True)
class GateReport:
    """FP32 against INT8 on one dataset.

    Attributes:
        fp32: the float model's scores.
        int8: the quantized model's scores.
        threshold: the operating threshold that ships (the FP32 spec's), for F1 at it and the per-image comparison.
        budget_points: largest allowed drop of ODS F1 and of F1 at ``threshold``, in points.
        worst: the images with the largest per-image F1 drop, largest first.
    """

    fp32: MetricsReport
    int8: MetricsReport
    threshold: float
    budget_points: float
    worst: tuple[ImageDrop, ...]

    @property
    def ods_drop_points(self) -> float:
        return 100.0 * (self.fp32.ods_f1 - self.int8.ods_f1)

    @property
    def operating_drop_points(self) -> float:
        return 100.0 * (self.fp32.f1_at(self.threshold) - self.int8.f1_at(self.threshold))

    @property
    def ap_drop_points(self) -> float:
        return 100.0 * (self.fp32.ap - self.int8.ap)

    @property
    def passed(self) -> bool:
        return max(self.ods_drop_points, self.operating_drop_points) <= self.budget_points

    def verdict(self) -> str:
        """One line: ODS F1 and F1 at the shipped threshold of both models, the drops and the budget."""
        return (
            f"INT8 ODS F1 {self.int8.ods_f1:.4f} vs FP32 {self.fp32.ods_f1:.4f} ({self.ods_drop_points:+.2f} points "
            f"lost), F1 at the shipped threshold {self.threshold:.2f} {self.int8.f1_at(self.threshold):.4f} vs "
            f"{self.fp32.f1_at(self.threshold):.4f} ({self.operating_drop_points:+.2f} points lost), "
            f"budget {self.budget_points:.2f}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: headline scores of both models (no curves), drops, verdict, worst images."""
        headline = ("ods_f1", "ods_threshold", "ois_f1", "ap", "miou", "region_f1", "images")
        return {
            "passed": self.passed,
            "budget_points": self.budget_points,
            "drop_points": {
                "ods_f1": self.ods_drop_points,
                "f1_at_threshold": self.operating_drop_points,
                "ap": self.ap_drop_points,
            },
            "protocol": self.fp32.protocol,
            "fp32": {
                **{key: getattr(self.fp32, key) for key in headline},
                "f1_at_threshold": self.fp32.f1_at(self.threshold),
            },
            "int8": {
                **{key: getattr(self.int8, key) for key in headline},
                "f1_at_threshold": self.int8.f1_at(self.threshold),
            },
            "threshold": self.threshold,
            "worst_images": [{**dataclasses.asdict(item), "drop_points": item.drop_points} for item in self.worst],
        }


def compare(
    fp32: Runner,
    int8: Runner,
    dataset: CrackDataset,
    budget_points: float = DEFAULT_BUDGET_POINTS,
    worst: int = 10,
    progress: bool = True,
) -> GateReport:
    """Scores both active runners on ``dataset`` and lists the ``worst`` images INT8 hurts most."""
    threshold = fp32.spec.threshold
    fp32_masks: dict[str, npt.NDArray[np.bool_]] = {}
    drops: list[ImageDrop] = []

    def keep_fp32(stem: str, image: np.ndarray, prob: np.ndarray, truth: np.ndarray) -> None:
        fp32_masks[stem] = binarize(prob, threshold)

    def compare_int8(stem: str, image: np.ndarray, prob: np.ndarray, truth: np.ndarray) -> None:
        reference, predicted = fp32_masks.pop(stem), binarize(prob, threshold)
        drops.append(
            ImageDrop(stem, mask_f1(reference, truth), mask_f1(predicted, truth), mask_f1(predicted, reference))
        )

    fp32_scores = evaluate(fp32, dataset, on_image=keep_fp32, progress=progress)
    int8_scores = evaluate(int8, dataset, on_image=compare_int8, progress=progress)
    ranked = sorted(drops, key=lambda item: (-item.drop_points, item.stem))
    return GateReport(fp32_scores, int8_scores, threshold, budget_points, tuple(ranked[:worst]))


def check_gate(report: GateReport, force: bool = False, hint: str = "") -> None:
    """Raises :class:`GateError` when ``report`` failed, unless ``force``; ``hint`` is appended to the message."""
    if not report.passed and not force:
        raise GateError(f"INT8 model refused: {report.verdict()}" + (f"; {hint}" if hint else ""))
