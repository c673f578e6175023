"""Validation over several datasets, and the one operating threshold a deployed model ships with.

The runtime applies a single threshold to every frame, whichever camera it comes from, so the
threshold and the checkpoint are chosen for that: the **shared threshold** is the one that maximizes
the mean over validation datasets of each dataset's F1 at that threshold, and the **selection score**
is that maximum. Unlike the mean of per-dataset ODS F1 (also reported), it cannot be raised by a
model whose best thresholds differ from one domain to the next, which is what a user would then pay
for. With one validation dataset both reduce to its ODS F1 and ODS threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from crackseg.edge.backends.base import Runner
from crackseg.edge.evaluation.dataset import CrackDataset
from crackseg.edge.evaluation.evaluate import evaluate
from crackseg.edge.evaluation.metrics import MetricsReport, f1_score

__all__ = ["ValidationResult", "ValidationSet", "validate", "with_shared_threshold"]


@dataclass(frozen=True)
class ValidationSet:
    """One dataset's validation split and the protocol it is scored with."""

    name: str
    data: CrackDataset
    tolerance_px: int = 0


@dataclass(frozen=True)
class ValidationResult:
    """Per-dataset scores and the shared operating threshold chosen from them.

    Attributes:
        score: mean over datasets of F1 at ``threshold``; what checkpoints are compared by.
        threshold: the shared threshold (the lowest one on ties).
        mean_ods_f1: mean over datasets of each one's ODS F1 (its own best threshold), for reference.
        per_dataset: name -> ``ods_f1``, ``ods_threshold`` and ``f1_at_threshold`` (F1 at the shared one).
    """

    score: float
    threshold: float
    mean_ods_f1: float
    per_dataset: dict[str, dict[str, float]] = field(default_factory=dict)


def with_shared_threshold(reports: dict[str, MetricsReport]) -> ValidationResult:
    """Chooses the shared threshold from per-dataset reports scored on the same thresholds."""
    if not reports:
        raise ValueError("no validation report to choose a threshold from")
    thresholds = {report.thresholds for report in reports.values()}
    if len(thresholds) != 1:
        raise ValueError("validation reports were scored on different thresholds")
    curves = {name: f1_score(report.precision, report.recall) for name, report in reports.items()}
    mean_curve = np.mean(list(curves.values()), axis=0)
    best = int(np.argmax(mean_curve))
    return ValidationResult(
        score=float(mean_curve[best]),
        threshold=float(thresholds.pop()[best]),
        mean_ods_f1=float(np.mean([report.ods_f1 for report in reports.values()])),
        per_dataset={
            name: {
                "ods_f1": report.ods_f1,
                "ods_threshold": report.ods_threshold,
                "f1_at_threshold": float(curves[name][best]),
            }
            for name, report in reports.items()
        },
    )


def validate(runner: Runner, sets: Sequence[ValidationSet], progress: bool = True) -> ValidationResult:
    """Scores ``runner`` on every validation set and chooses the shared threshold."""
    reports = {item.name: evaluate(runner, item.data, item.tolerance_px, progress=progress) for item in sets}
    return with_shared_threshold(reports)
