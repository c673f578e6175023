"""Pixel weights (tolerance band, hard negatives) and the losses that use them, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crackseg.train.data.pixel_weights import PixelWeights
from crackseg.train.losses._functional import (
    balanced_bce_with_logits,
    focal_loss_with_logits,
    soft_iou_loss_with_logits,
)
from crackseg.train.losses.factory import create_loss

LN2 = math.log(2.0)


def _line(size: int = 7, column: int = 3) -> np.ndarray:
    cracks = np.zeros((size, size), dtype=bool)
    cracks[:, column] = True
    return cracks


def test_the_band_beside_a_centreline_counts_nothing_and_the_line_itself_counts() -> None:
    weight = PixelWeights(tolerance_px=1)(_line())
    assert weight[:, 3].tolist() == [1.0] * 7  # the labelled line
    assert weight[:, 2].tolist() == [0.0] * 7 and weight[:, 4].tolist() == [0.0] * 7  # 1 px either side
    assert weight[:, [0, 1, 5, 6]].tolist() == np.ones((7, 4)).tolist()  # farther away: plain background


def test_hard_negatives_weigh_more_except_on_cracks_and_inside_the_band() -> None:
    regions = np.zeros((7, 7), dtype=bool)
    regions[0, :] = True  # a joint crossing the crack line at the top row
    weight = PixelWeights(tolerance_px=1, hard_negative_weight=4.0)(_line(), regions)
    assert weight[0].tolist() == [4.0, 4.0, 0.0, 1.0, 0.0, 4.0, 4.0]
    assert weight[1:, 0].tolist() == [1.0] * 6


def test_without_a_band_or_regions_every_pixel_counts_once() -> None:
    assert PixelWeights()(_line()).tolist() == np.ones((7, 7)).tolist()


def test_a_2px_prediction_of_a_1px_line_costs_nothing_extra_within_the_band() -> None:
    """The issue's case: predicting the labelled line plus its neighbour must not be half wrong."""
    cracks = _line()
    weight = torch.from_numpy(PixelWeights(tolerance_px=1)(cracks))
    target = torch.from_numpy(cracks.astype(np.float32))
    exact = torch.where(target > 0, 10.0, -10.0)
    wider = exact.clone()
    wider[:, 4] = 10.0  # the prediction also covers one pixel beside the line
    assert focal_loss_with_logits(wider, target, weight=weight) == pytest.approx(
        focal_loss_with_logits(exact, target, weight=weight).item()
    )
    assert soft_iou_loss_with_logits(wider[None], target[None], weight=weight[None]) == pytest.approx(
        soft_iou_loss_with_logits(exact[None], target[None], weight=weight[None]).item()
    )
    # without the band the same extra pixel costs a whole column of false positives
    assert soft_iou_loss_with_logits(wider[None], target[None]).item() == pytest.approx(0.5, abs=1e-3)


def test_weighted_focal_is_the_weighted_mean_of_the_pixel_losses() -> None:
    logits, target = torch.zeros(4), torch.tensor([1.0, 0.0, 0.0, 0.0])
    weight = torch.tensor([1.0, 0.0, 4.0, 1.0])
    # at p = 0.5 every pixel costs 0.25 * ln 2 (gamma 2): the weighted mean is the same number
    assert focal_loss_with_logits(logits, target, weight=weight).item() == pytest.approx(0.25 * LN2, rel=1e-6)
    logits = torch.tensor([0.0, 50.0, 0.0, 0.0])  # the ignored pixel is confidently wrong: it must not count
    assert focal_loss_with_logits(logits, target, weight=weight).item() == pytest.approx(0.25 * LN2, rel=1e-6)


def test_weighted_soft_iou_scales_each_pixel_in_both_sums() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0]])  # p = 0.5 everywhere
    target = torch.tensor([[1.0, 0.0, 0.0]])
    weight = torch.tensor([[1.0, 4.0, 0.0]])
    # intersection 1 * 0.5; union 1 * (0.5 + 1 - 0.5) + 4 * 0.5 + 0 = 3
    assert soft_iou_loss_with_logits(logits, target, weight=weight).item() == pytest.approx(1 - 0.5 / 3, rel=1e-6)


def test_weighted_balanced_bce_counts_classes_over_the_weighted_pixels() -> None:
    logits, target = torch.zeros(4), torch.tensor([1.0, 0.0, 0.0, 0.0])
    weight = torch.tensor([1.0, 1.0, 0.0, 0.0])  # two pixels left: one crack, one background
    # beta = 1 - 1/2: both classes weigh 1/2; weighted mean over the two counted pixels
    assert balanced_bce_with_logits(logits, target, weight=weight).item() == pytest.approx(0.5 * LN2, rel=1e-6)


@pytest.mark.parametrize("name", ["scnet", "bce", "balanced-bce"])
def test_every_training_objective_ignores_weight_zero_pixels(name: str) -> None:
    loss = create_loss(name, side_weights=(1.0,))
    target = torch.zeros(1, 1, 2, 2)
    target[..., 0, 0] = 1.0
    weight = torch.ones(1, 1, 2, 2)
    weight[..., 1, 1] = 0.0
    logits = torch.where(target > 0, 3.0, -3.0)
    flipped = logits.clone()
    flipped[..., 1, 1] = 3.0  # wrong, but only on the ignored pixel
    assert loss(flipped, [flipped], target, weight).item() == pytest.approx(
        loss(logits, [logits], target, weight).item()
    )
    assert loss(flipped, [flipped], target).item() > loss(logits, [logits], target).item()
