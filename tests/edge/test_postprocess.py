"""Postprocessing: the evaluator's threshold rule, hysteresis linking and per-frame statistics."""

from __future__ import annotations

import numpy as np
import pytest

from crackseg.edge.runtime.postprocess import Postprocessor, binarize
from crackseg.edge.runtime.stats import crack_stats

pytest.importorskip("cv2")


def test_threshold_is_strict_like_the_evaluator() -> None:
    prob = np.array([[0.2, 0.5, 0.50001, 0.9]], np.float32)
    assert binarize(prob, 0.5).tolist() == [[False, False, True, True]]  # p == t is background


def test_hysteresis_keeps_weak_pixels_connected_to_strong_ones() -> None:
    prob = np.array(
        [
            [0.2, 0.6, 0.9, 0.6, 0.2, 0.6],  # weak run touching the strong pixel, then an isolated weak pixel
            [0.2, 0.2, 0.2, 0.2, 0.6, 0.2],  # diagonal (8-connected) neighbour of the weak run
            [0.6, 0.6, 0.2, 0.2, 0.2, 0.2],  # weak region touching nothing strong
        ],
        np.float32,
    )
    expected = [
        [False, True, True, True, False, True],  # (0, 5) joins through (1, 4), diagonally
        [False, False, False, False, True, False],
        [False, False, False, False, False, False],
    ]
    assert binarize(prob, 0.8, low=0.5).tolist() == expected
    assert binarize(prob, 0.8).sum() == 1


def test_hysteresis_low_must_be_below_the_threshold() -> None:
    with pytest.raises(ValueError, match="below"):
        binarize(np.zeros((2, 2), np.float32), 0.5, low=0.5)
    with pytest.raises(ValueError, match="hysteresis"):
        Postprocessor(0.5, hysteresis_low=0.7)
    with pytest.raises(ValueError, match="threshold"):
        Postprocessor(1.0)


def test_postprocessor_returns_the_mask_and_its_statistics() -> None:
    prob = np.zeros((20, 30), np.float32)
    prob[5, 2:12] = 0.9  # a 10-px horizontal crack
    prob[15:17, 20:23] = 0.7  # a 3x2 blob
    mask, stats = Postprocessor(0.6, max_boxes=1)(prob)
    assert mask.sum() == 16
    assert stats == crack_stats(mask, max_boxes=1)
    assert stats.crack_pixels == 16 and stats.components == 2 and len(stats.boxes) == 1
    assert stats.boxes[0].pixels == 10


def test_statistics_are_exact_unless_the_fast_mode_is_chosen() -> None:
    prob = np.zeros((24, 40), np.float32)
    prob[8:15, 4:36] = 0.9  # a 32 x 7 bar: the modes disagree on its length
    mask, default = Postprocessor(0.5)(prob)
    _, fast = Postprocessor(0.5, stats_mode="fast")(prob)
    assert default == crack_stats(mask) and fast == crack_stats(mask, mode="fast")
    assert fast.skeleton_px != default.skeleton_px


def test_an_unknown_statistics_mode_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="statistics mode must be one of exact, fast"):
        Postprocessor(0.5, stats_mode="approx")  # type: ignore[arg-type]
