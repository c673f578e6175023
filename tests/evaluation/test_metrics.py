"""DeepCrack-protocol metrics: every score checked against hand-counted masks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from crackseg.edge.evaluation.metrics import REFERENCE, CrackMetrics, MetricsReport, binarize, f1_score


def _score(*pairs: tuple[np.ndarray, np.ndarray], **kwargs: int) -> MetricsReport:
    metrics = CrackMetrics(**kwargs)
    for prob, gt in pairs:
        metrics.update(prob, gt)
    return metrics.compute()


def _at(report: MetricsReport, t: float) -> int:
    return report.thresholds.index(t)


# A 4x4 case counted by hand. GT crack pixels (5) carry 0.95 0.85 0.65 0.25 0.75; background pixels
# carry 0.55 0.35 0.45 and eight zeros (never crack, since p > t with t >= 0).
GT_4X4 = np.array(
    [
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 0, 0],
    ],
    dtype=bool,
)
PROB_4X4 = np.array(
    [
        [0.95, 0.85, 0.55, 0.00],
        [0.00, 0.65, 0.35, 0.00],
        [0.00, 0.25, 0.75, 0.00],
        [0.00, 0.00, 0.00, 0.45],
    ]
)


@pytest.mark.parametrize(
    ("t", "precision", "recall"),
    [
        (0.00, 5 / 8, 1.0),  # tp 5, fp 3 (0.55 0.35 0.45), fn 0
        (0.25, 4 / 7, 4 / 5),  # 0.25 is not > 0.25: tp 4, fp 3, fn 1
        (0.30, 4 / 7, 4 / 5),
        (0.40, 4 / 6, 4 / 5),  # fp 0.55 0.45
        (0.50, 4 / 5, 4 / 5),  # fp 0.55
        (0.55, 1.0, 4 / 5),  # 0.55 is not > 0.55: fp 0
        (0.70, 1.0, 3 / 5),  # tp 0.95 0.85 0.75
        (0.90, 1.0, 1 / 5),
        (0.95, 0.0, 0.0),  # nothing predicted: P undefined -> 0 by policy
    ],
)
def test_pr_curve_matches_hand_counts(t: float, precision: float, recall: float) -> None:
    report = _score((PROB_4X4, GT_4X4))
    assert report.precision[_at(report, t)] == pytest.approx(precision)
    assert report.recall[_at(report, t)] == pytest.approx(recall)


def test_hand_counted_image_scores() -> None:
    report = _score((PROB_4X4, GT_4X4))
    # Best F: t in [0.55, 0.65) gives P = 1, R = 4/5, F = 8/9; ties resolve to the lowest threshold.
    assert report.ods_f1 == pytest.approx(8 / 9)
    assert report.ods_threshold == 0.55
    assert report.ois_f1 == pytest.approx(8 / 9)  # one image: OIS = its best F = ODS
    # At t = 0.55: tp 4, fp 0, fn 1, tn 11 -> crack IoU 4/5, background IoU 11/12.
    assert report.crack_iou == pytest.approx(4 / 5)
    assert report.miou == pytest.approx((4 / 5 + 11 / 12) / 2)
    # Recall drops (R_k - R_k+1) * P_k: 0.24->0.25 0.2 * 5/8, then 0.64, 0.74, 0.84, 0.94 each 0.2 * 1.
    assert report.ap == pytest.approx(0.2 * 5 / 8 + 4 * 0.2)
    assert report.images == 1
    assert report.empty_gt_images == 0


@pytest.mark.parametrize(
    ("p", "t", "crack"),
    [
        (0.5, 0.50, False),  # equal is background: p > t, strictly
        (0.5, 0.49, True),
        (np.nextafter(0.5, 1.0), 0.50, True),
        (np.float32(0.5), 0.50, False),  # float32 0.5 is exactly 0.5
        (0.0, 0.00, False),  # p = 0 is never crack
        (1.0, 0.99, True),  # p = 1 is crack at every threshold
        (128 / 255, 0.50, True),  # an 8-bit map as the reference reads it (pred / 255)
        (0.07, 0.07, False),  # k / 100 thresholds are exact
    ],
)
def test_threshold_is_strictly_greater(p: float, t: float, crack: bool) -> None:
    report = _score((np.array([[p]]), np.array([[True]])))
    assert report.recall[_at(report, t)] == (1.0 if crack else 0.0)
    assert bool(binarize(np.array([[p]]), t)[0, 0]) is crack  # the rule every stage binarizes with agrees


@pytest.mark.parametrize(
    ("precision", "recall", "f1"), [(1.0, 1.0, 1.0), (0.5, 1.0, 2 / 3), (0.25, 0.75, 0.375), (0.0, 0.0, 0.0)]
)
def test_f1_is_the_harmonic_mean_and_zero_without_hits(precision: float, recall: float, f1: float) -> None:
    assert float(f1_score(precision, recall)) == pytest.approx(f1)


def test_perfect_prediction_scores_one() -> None:
    gt = np.zeros((64, 64), dtype=bool)
    gt[10:54, 20:23] = True
    gt[40, 5:60] = True
    report = _score((gt.astype(np.float64), gt))
    for name in ("ods_f1", "ois_f1", "ap", "crack_iou", "miou", "region_f1"):
        assert getattr(report, name) == 1.0, name
    assert report.ods_threshold == 0.0


def test_all_wrong_prediction_scores_zero() -> None:
    gt = np.zeros((64, 64), dtype=bool)
    gt[:, 30:34] = True
    report = _score(((~gt).astype(np.float64), gt))  # crack predicted exactly on the background
    # tp = 0 at every threshold; at t = 0.00 tn = 0 too, so both IoUs are 0.
    for name in ("ods_f1", "ois_f1", "ap", "crack_iou", "miou", "region_f1"):
        assert getattr(report, name) == 0.0, name


def test_ods_pools_counts_while_ois_averages_images() -> None:
    one = np.array([[0.9, 0.0]]), np.array([[True, False]])  # its one crack pixel found: best F 1
    missed = np.zeros((1, 3)), np.ones((1, 3), dtype=bool)  # three crack pixels, none found: best F 0
    report = _score(one, missed)
    # Pooled at t < 0.9: tp 1, fp 0, fn 3 -> P 1, R 1/4, F = 2 * 1/4 / (5/4) = 0.4.
    assert report.ods_f1 == pytest.approx(0.4)
    assert report.ois_f1 == pytest.approx(0.5)
    assert report.images == 2


@pytest.mark.parametrize(
    ("empty_prob_max", "empty_best_f"),
    [
        (0.3, 1.0),  # at t >= 0.30 the empty-GT image predicts nothing: its best F is 1
        (1.0, 0.0),  # p = 1 is crack at every threshold: its F is 0 everywhere
    ],
)
def test_empty_gt_image_ois_policy(empty_prob_max: float, empty_best_f: float) -> None:
    gt = np.zeros((8, 8), dtype=bool)
    gt[2:6, 4] = True
    empty_prob = np.zeros((8, 8))
    empty_prob[3, 3] = empty_prob_max
    report = _score((gt.astype(np.float64), gt), (empty_prob, np.zeros((8, 8), dtype=bool)))
    assert report.ois_f1 == pytest.approx((1.0 + empty_best_f) / 2)  # the other image is perfect
    assert report.empty_gt_images == 1


def test_ap_of_a_known_curve() -> None:
    # Two crack pixels at 0.8 and 0.4, two background pixels at 0.6 and 0.2.
    # t < 0.2: P 2/4, R 1; t in [0.2, 0.4): P 2/3, R 1; [0.4, 0.6): P 1/2, R 1/2; [0.6, 0.8): P 1, R 1/2;
    # t >= 0.8: R 0. Recall drops at 0.39 -> 0.40 (by 1/2, P 2/3) and 0.79 -> 0.80 (by 1/2, P 1).
    prob = np.array([[0.8, 0.4, 0.6, 0.2]])
    gt = np.array([[True, True, False, False]])
    assert _score((prob, gt)).ap == pytest.approx(0.5 * 2 / 3 + 0.5 * 1.0)


@pytest.mark.parametrize(
    ("threshold", "f1"),
    [
        (0.5, 0.5),  # [0.4, 0.6): P 1/2, R 1/2
        (0.7, 2 / 3),  # [0.6, 0.8): P 1, R 1/2
        (0.3, 0.8),  # [0.2, 0.4): P 2/3, R 1
        (0.594, 0.5),  # nearest curve point 0.59
    ],
)
def test_f1_at_a_threshold_reads_the_pooled_curve(threshold: float, f1: float) -> None:
    prob = np.array([[0.8, 0.4, 0.6, 0.2]])  # the same four pixels as above
    gt = np.array([[True, True, False, False]])
    assert _score((prob, gt)).f1_at(threshold) == pytest.approx(f1)


def _patch(gt_rows: int, gt_cols: slice, pred_rows: int, pred_cols: slice) -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((32, 32), dtype=bool)
    prob = np.zeros((32, 32))
    gt[:gt_rows, gt_cols] = True
    prob[:pred_rows, pred_cols] = 1.0
    return prob, gt


def test_region_f1_on_known_patch_layout() -> None:
    # Four 32x32 patches of 1024 pixels; positive needs >= 5 % = 51.2, i.e. 52 pixels.
    top_left = _patch(32, slice(0, 2), 32, slice(0, 2))  # GT 64, pred the same 64: found, correct
    top_right = _patch(32, slice(0, 2), 10, slice(0, 2))  # GT 64, pred 20 of them: missed, not predicted
    bottom_left = _patch(0, slice(0, 2), 30, slice(0, 2))  # no GT, pred 60: predicted, wrong
    bottom_right = _patch(15, slice(0, 2), 30, slice(0, 2))  # GT 30 (< 5 %), pred 60 holding them: correct
    prob = np.block([[top_left[0], top_right[0]], [bottom_left[0], bottom_right[0]]])
    gt = np.block([[top_left[1], top_right[1]], [bottom_left[1], bottom_right[1]]])
    report = _score((prob, gt))
    # Recall: top-left found of {top-left, top-right} = 1/2; precision: top-left and bottom-right of three = 2/3.
    assert report.region_f1 == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))  # 4/7


@pytest.mark.parametrize(
    ("gt_pixels", "pred_on_gt", "pred_off_gt", "region_f1"),
    [
        (20, 10, 10, 1.0),  # GT exactly 5 % of 400: positive; 10/20 found (>= 50 %); pred 20, half on GT
        (20, 9, 11, 0.0),  # 9/20 < 50 %: missed; 9/20 of the prediction on GT: wrong
        (19, 19, 1, 0.0),  # 19 < 5 %: no GT-positive patch, recall undefined -> 0
        (20, 20, 0, 1.0),
    ],
)
def test_region_f1_boundaries(gt_pixels: int, pred_on_gt: int, pred_off_gt: int, region_f1: float) -> None:
    gt = np.zeros(400, dtype=bool)
    prob = np.zeros(400)
    gt[:gt_pixels] = True
    prob[:pred_on_gt] = 1.0
    prob[gt_pixels : gt_pixels + pred_off_gt] = 1.0
    report = _score((prob.reshape(20, 20), gt.reshape(20, 20)), region_patch=20)
    assert report.region_f1 == region_f1


def test_region_border_patch_uses_its_true_area() -> None:
    # A 24x24 image in 20 px patches leaves a 4x4 corner patch of 16 pixels: one crack pixel there is
    # 6.25 % of it (positive), although it would be 0.25 % of a padded 400-pixel patch.
    gt = np.zeros((24, 24), dtype=bool)
    gt[22, 22] = True
    report = _score((gt.astype(np.float64), gt), region_patch=20)
    assert report.region_f1 == 1.0


@pytest.mark.parametrize(
    ("pred_pixel", "tolerance", "ods"),
    [
        ((5, 6), 0, 0.0),  # 1-px shift, exact pixels: nothing matches
        ((5, 6), 1, 1.0),  # distance 1 <= 1
        ((6, 6), 1, 0.0),  # diagonal shift is sqrt(2) > 1: Euclidean, not chessboard
        ((6, 6), 2, 1.0),
        ((5, 8), 2, 0.0),  # distance 3
    ],
)
def test_tolerance_matches_within_euclidean_radius(pred_pixel: tuple[int, int], tolerance: int, ods: float) -> None:
    gt = np.zeros((12, 12), dtype=bool)
    gt[5, 5] = True
    prob = np.zeros((12, 12))
    prob[pred_pixel] = 0.9
    assert _score((prob, gt), tolerance_px=tolerance).ods_f1 == ods


def test_tolerance_shifted_line_scores_one_but_iou_stays_exact() -> None:
    gt = np.zeros((12, 12), dtype=bool)
    gt[2:10, 5] = True
    prob = np.zeros((12, 12))
    prob[2:10, 6] = 1.0
    exact, relaxed = _score((prob, gt)), _score((prob, gt), tolerance_px=1)
    assert (exact.ods_f1, relaxed.ods_f1, relaxed.ois_f1, relaxed.ap) == (0.0, 1.0, 1.0, 1.0)
    assert relaxed.crack_iou == 0.0  # IoU is an exact overlap in every mode
    assert "tolerance" not in exact.protocol
    assert "tolerance 1 px" in relaxed.protocol


def test_tolerance_precision_from_predictions_recall_from_gt() -> None:
    # GT (5,3)..(5,6), one prediction at (6,4). Within 1 px: the prediction matches (5,4), so P = 1/1;
    # of the GT pixels only (5,4) has a prediction within 1 px ((5,3) and (5,5) are sqrt(2) away), R = 1/4.
    gt = np.zeros((10, 10), dtype=bool)
    gt[5, 3:7] = True
    prob = np.zeros((10, 10))
    prob[6, 4] = 0.9
    report = _score((prob, gt), tolerance_px=1)
    assert (report.precision[0], report.recall[0]) == (1.0, 0.25)
    assert report.ods_f1 == pytest.approx(2 * 1 * 0.25 / 1.25)


def test_matches_the_reference_loop() -> None:
    """The vectorised counts equal DeepSegmentor's per-threshold loop, thresholds included.

    The reference's ``np.arange(0, 1, 0.01)`` differs from k / 100 by one ulp at ten thresholds; with no float
    in between, both make the same decisions, even for probabilities lying exactly on k / 100.
    """
    rng = np.random.default_rng(0)
    shape = (16, 24)
    pairs = [(rng.integers(0, 256, shape) / 255, rng.random(shape) < 0.2) for _ in range(2)]
    pairs.append((rng.integers(0, 101, shape) / 100, rng.random(shape) < 0.2))
    report = _score(*pairs)
    for k, t in enumerate(np.arange(0.0, 1.0, 0.01)):
        tp = sum(int(((p > t) & g).sum()) for p, g in pairs)
        fp = sum(int(((p > t) & ~g).sum()) for p, g in pairs)
        fn = sum(int(((p <= t) & g).sum()) for p, g in pairs)
        assert report.precision[k] == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
        assert report.recall[k] == pytest.approx(tp / (tp + fn))


def test_streaming_equals_one_pooled_image() -> None:
    rng = np.random.default_rng(1)
    probs, gts = rng.random((2, 32, 32)), rng.random((2, 32, 32)) < 0.1
    streamed = _score((probs[0], gts[0]), (probs[1], gts[1]))
    pooled = _score((np.hstack([probs[0], probs[1]]), np.hstack([gts[0], gts[1]])))
    for name in ("ods_f1", "ods_threshold", "ap", "crack_iou", "miou", "region_f1", "precision", "recall"):
        assert getattr(streamed, name) == pytest.approx(getattr(pooled, name)), name


def test_reset_forgets_images() -> None:
    metrics = CrackMetrics()
    metrics.update(np.zeros((4, 4)), np.ones((4, 4), dtype=bool))
    metrics.reset()
    metrics.update(PROB_4X4, GT_4X4)
    assert metrics.compute() == _score((PROB_4X4, GT_4X4))


def test_report_is_frozen_and_json_safe() -> None:
    report = _score((PROB_4X4, GT_4X4.astype(np.uint8)))  # 0/1 integer GT is accepted
    data = report.to_dict()
    assert list(data)[:9] == [
        "protocol",
        "ods_f1",
        "ods_threshold",
        "ois_f1",
        "ap",
        "crack_iou",
        "miou",
        "region_f1",
        "images",
    ]
    assert json.loads(json.dumps(data)) == data
    assert len(data["precision"]) == len(data["recall"]) == len(data["thresholds"]) == 100
    assert report.protocol.startswith(f"{REFERENCE}: p > t, t = 0.00..0.99 (100 thresholds), dataset-pooled counts")
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.ods_f1 = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("prob", "gt", "message"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5), dtype=bool), "does not match"),
        (np.full((4, 4), 1.5), np.zeros((4, 4), dtype=bool), r"\[0, 1\]"),
        (np.full((4, 4), -0.1), np.zeros((4, 4), dtype=bool), r"\[0, 1\]"),
        (np.full((4, 4), np.nan), np.zeros((4, 4), dtype=bool), "NaN"),
        (np.zeros(16), np.zeros(16, dtype=bool), "HxW"),
        (np.zeros((4, 4)), np.full((4, 4), 255, dtype=np.uint8), "binarise"),
    ],
)
def test_update_rejects_bad_input(prob: np.ndarray, gt: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrackMetrics().update(prob, gt)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": [0.5, 0.2]}, "strictly increasing"),
        ({"thresholds": []}, "non-empty"),
        ({"thresholds": [0.5, 1.5]}, r"\[0, 1\]"),
        ({"tolerance_px": -1}, "tolerance_px"),
        ({"region_patch": 0}, "region_patch"),
    ],
)
def test_constructor_rejects_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrackMetrics(**kwargs)  # type: ignore[arg-type]


def test_compute_without_images_raises() -> None:
    with pytest.raises(ValueError, match="no images"):
        CrackMetrics().compute()
