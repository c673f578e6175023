"""Choosing one operating threshold for several validation datasets (hand-computed cases)."""

from __future__ import annotations

import pytest

from crackseg.edge.evaluation.metrics import MetricsReport, f1_score
from crackseg.train.validation import with_shared_threshold


def _report(
    precision: list[float], recall: list[float], thresholds: tuple[float, ...] = (0.2, 0.5, 0.8)
) -> MetricsReport:
    curve = f1_score(precision, recall)
    best = int(curve.argmax())
    return _bare(precision, recall, thresholds, ods_f1=float(curve[best]), ods_threshold=thresholds[best])


def _bare(
    precision: list[float],
    recall: list[float],
    thresholds: tuple[float, ...],
    ods_f1: float = 0.0,
    ods_threshold: float = 0.0,
) -> MetricsReport:
    return MetricsReport(
        protocol="test",
        ods_f1=ods_f1,
        ods_threshold=ods_threshold,
        ois_f1=0.0,
        ap=0.0,
        crack_iou=0.0,
        miou=0.0,
        region_f1=0.0,
        images=1,
        empty_gt_images=0,
        thresholds=thresholds,
        precision=tuple(precision),
        recall=tuple(recall),
    )


def test_the_shared_threshold_maximizes_the_mean_f1_not_each_ods() -> None:
    # Dataset A: F1 = 0.8, 0.6, 0.2 at t = 0.2 / 0.5 / 0.8 (ODS 0.8 @ 0.2).
    # Dataset B: F1 = 0.1, 0.7, 0.75                       (ODS 0.75 @ 0.8).
    a = _report([0.8, 0.6, 0.2], [0.8, 0.6, 0.2])
    b = _report([0.1, 0.7, 0.75], [0.1, 0.7, 0.75])
    result = with_shared_threshold({"A": a, "B": b})
    # means: 0.45, 0.65, 0.475 -> t = 0.5, score 0.65; the mean of the two ODS would claim 0.775
    assert result.threshold == 0.5
    assert result.score == pytest.approx(0.65)
    assert result.mean_ods_f1 == pytest.approx(0.775)
    assert result.per_dataset["A"] == pytest.approx({"ods_f1": 0.8, "ods_threshold": 0.2, "f1_at_threshold": 0.6})
    assert result.per_dataset["B"]["f1_at_threshold"] == pytest.approx(0.7)


def test_one_dataset_reduces_to_its_ods() -> None:
    a = _report([0.8, 0.6, 0.2], [0.8, 0.6, 0.2])
    result = with_shared_threshold({"A": a})
    assert (result.score, result.threshold) == (pytest.approx(a.ods_f1), a.ods_threshold)


def test_reports_on_different_thresholds_cannot_be_pooled() -> None:
    with pytest.raises(ValueError, match="different thresholds"):
        with_shared_threshold({"A": _report([1, 1], [1, 1], (0.1, 0.2)), "B": _report([1, 1], [1, 1], (0.1, 0.3))})
