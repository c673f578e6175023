"""False-positive components: the blobs an operator sees where no crack is labelled."""

from __future__ import annotations

import numpy as np

from crackseg.edge.evaluation.clutter import ClutterCounter, false_positive_components


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


def test_the_counter_reports_crack_free_images_apart() -> None:
    counter = ClutterCounter(threshold=0.5)
    _, truth = _frame()
    prob = np.zeros((64, 64), np.float32)
    prob[10, 10] = prob[50, 50] = 0.9  # two false specks
    counter.update(prob, truth)
    counter.update(prob, np.zeros_like(truth))
    expected = {"fp_components_per_image": 2.0, "crack_free_images": 1, "fp_components_per_crack_free_image": 2.0}
    assert counter.summary() == expected
