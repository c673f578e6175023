"""The shipped operating point (threshold + component rule), scored as the curve is, and the clutter it leaves."""

from __future__ import annotations

import numpy as np
import pytest

from crackseg.edge.evaluation.metrics import CrackMetrics
from crackseg.edge.evaluation.operating_point import (
    OperatingPoint,
    drop_small_components,
    false_positive_components,
)
from crackseg.edge.runtime.postprocess import Postprocessor


def _frame() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((64, 64), bool)
    truth[32, 5:60] = True  # one labelled crack
    predicted = np.zeros_like(truth)
    predicted[31:33, 5:60] = True  # found, one pixel thicker than labelled
    return predicted, truth


def test_each_blob_away_from_a_labelled_crack_counts_once_whatever_its_size() -> None:
    predicted, truth = _frame()
    predicted[2:4, 2:4] = True  # a speck
    predicted[5:25, 40:60] = True  # a large texture patch
    predicted[50, 10] = True  # a single pixel
    assert false_positive_components(predicted, truth) == 3


def test_a_blob_within_the_tolerance_of_a_crack_is_not_a_false_alarm() -> None:
    predicted, truth = _frame()
    predicted[35, 20:25] = True  # 3 px below the crack: outside 2 px, inside 5 px
    assert false_positive_components(predicted, truth, tolerance_px=2) == 1
    assert false_positive_components(predicted, truth, tolerance_px=5) == 0


def test_the_component_rule_drops_specks_and_keeps_cracks_whole() -> None:
    predicted, _ = _frame()
    predicted[2:4, 2:4] = True  # 4 px
    predicted[50, 10:19] = True  # 9 px
    kept = drop_small_components(predicted, 5)
    assert not kept[2:4, 2:4].any() and kept[50, 10:19].all() and kept[31:33, 5:60].all()
    assert drop_small_components(predicted, 0) is predicted


@pytest.mark.parametrize("tolerance", [0, 2])
def test_without_a_component_rule_the_operating_point_is_the_curves_point(tolerance: int) -> None:
    rng = np.random.default_rng(0)
    curve, point = CrackMetrics(tolerance_px=tolerance), OperatingPoint(0.4, 0, [tolerance])
    for _ in range(3):
        truth = rng.random((48, 64)) < 0.1
        prob = np.clip(truth * 0.5 + rng.random((48, 64)) * 0.6, 0, 1)
        curve.update(prob, truth)
        point.update(prob, truth)
    report = curve.compute()
    k = report.curve_index(0.4)
    scores = point.scores(tolerance)
    assert (scores["precision"], scores["recall"]) == pytest.approx((report.precision[k], report.recall[k]))
    assert scores["f1"] == pytest.approx(report.f1_at(0.4))


def test_the_component_rule_removes_texture_specks_and_raises_precision() -> None:
    predicted, truth = _frame()
    prob = predicted.astype(np.float32) * 0.9
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 25, 30), rng.integers(0, 64, 30)
    prob[ys, xs] = 0.9  # 30 one-pixel texture specks above the crack
    plain, ruled = OperatingPoint(0.5, 0), OperatingPoint(0.5, 5)
    for point in (plain, ruled):
        point.update(prob, truth)
    assert ruled.scores(0)["precision"] > plain.scores(0)["precision"]
    assert ruled.scores(0)["recall"] == plain.scores(0)["recall"]
    assert ruled.clutter()["fp_components_per_image"] == 0 < plain.clutter()["fp_components_per_image"]


def test_the_clutter_of_crack_free_images_is_reported_apart() -> None:
    point = OperatingPoint(threshold=0.5)
    _, truth = _frame()
    prob = np.zeros((64, 64), np.float32)
    prob[10, 10] = prob[50, 50] = 0.9  # two false specks
    point.update(prob, truth)
    point.update(prob, np.zeros_like(truth))
    expected = {"fp_components_per_image": 2.0, "crack_free_images": 1, "fp_components_per_crack_free_image": 2.0}
    assert point.clutter() == expected


def test_the_runtime_publishes_the_masks_the_evaluator_scored() -> None:
    predicted, _ = _frame()
    prob = predicted.astype(np.float32) * 0.9
    prob[2:4, 2:4] = 0.9  # a 4-px speck
    mask, stats = Postprocessor(0.5, min_component_px=5)(prob)
    assert np.array_equal(mask, drop_small_components(prob > 0.5, 5)) and not mask[2:4, 2:4].any()
    assert stats.components == 1
