"""The baselines' paper losses, checked against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from crackseg.train.losses._functional import balanced_bce_with_logits
from crackseg.train.losses.bce import BalancedBCELoss, BCELoss
from crackseg.train.losses.combo import SCNetLoss
from crackseg.train.losses.deep_supervision import DeepSupervisionLoss
from crackseg.train.losses.factory import create_loss

LN2 = math.log(2.0)


def _bce(logit: float, target: float) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -math.log(p if target == 1.0 else 1.0 - p)


def test_balanced_bce_weights_cracks_by_the_background_fraction() -> None:
    # one crack pixel in four: beta = 3/4; every pixel costs ln 2 at p = 0.5
    # mean = (3/4 * ln2 + 3 * 1/4 * ln2) / 4 = 3/8 ln2
    value = balanced_bce_with_logits(torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
    assert value.item() == pytest.approx(0.375 * LN2, rel=1e-6)


def test_balanced_bce_with_confident_logits() -> None:
    # one crack, one background pixel: beta = 1/2, each term weighted 1/2, mean over 2 pixels
    value = balanced_bce_with_logits(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0]))
    assert value.item() == pytest.approx(0.5 * (_bce(2.0, 1.0) + _bce(-1.0, 0.0)) / 2, rel=1e-6)


def test_balanced_bce_counts_classes_over_the_whole_batch() -> None:
    # image 1 has no crack, image 2 two of four: 2 crack pixels of 8 -> beta = 3/4 for every pixel:
    # (2 * 3/4 + 6 * 1/4) * ln2 / 8 = 3/8 ln2 (per-image counting would give 1/4 ln2)
    target = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [0.0, 0.0]]]])
    value = balanced_bce_with_logits(torch.zeros(2, 1, 2, 2), target)
    assert value.item() == pytest.approx(0.375 * LN2, rel=1e-6)


def test_balanced_bce_of_a_batch_without_cracks_is_zero() -> None:
    # beta = 1: background weight 0, and there is no crack pixel to weight
    value = BalancedBCELoss()(torch.randn(2, 1, 4, 4), torch.zeros(2, 1, 4, 4))
    assert value.item() == 0.0


def test_balanced_bce_orders_good_below_bad_predictions() -> None:
    target = torch.tensor([1.0, 0.0, 0.0, 0.0])
    good = BalancedBCELoss()(torch.tensor([3.0, -3.0, -2.0, -3.0]), target)
    bad = BalancedBCELoss()(torch.tensor([-3.0, 3.0, 2.0, 3.0]), target)
    assert good < bad


def test_balanced_bce_keeps_pixels_for_reduction_none() -> None:
    value = balanced_bce_with_logits(torch.zeros(4), torch.tensor([1.0, 0.0, 0.0, 0.0]), reduction="none")
    assert value.tolist() == pytest.approx([0.75 * LN2, 0.25 * LN2, 0.25 * LN2, 0.25 * LN2], rel=1e-6)


def test_deep_supervision_weights_the_fused_and_side_terms() -> None:
    target = torch.tensor([1.0, 0.0])
    fused, sides = torch.tensor([0.0, 0.0]), [torch.tensor([2.0, -1.0]), torch.tensor([-1.0, 1.0])]
    loss = DeepSupervisionLoss(BCELoss(), side_weights=(0.5, 2.0), fused_weight=1.5)
    expected = 1.5 * LN2  # fused: p = 0.5 on both pixels
    expected += 0.5 * (_bce(2.0, 1.0) + _bce(-1.0, 0.0)) / 2
    expected += 2.0 * (_bce(-1.0, 1.0) + _bce(1.0, 0.0)) / 2
    assert loss(fused, sides, target).item() == pytest.approx(expected, rel=1e-6)


def test_deep_supervision_rejects_a_side_count_mismatch() -> None:
    with pytest.raises(ValueError, match="1 side outputs but 2 side weights"):
        DeepSupervisionLoss(BCELoss(), (1.0, 1.0))(torch.zeros(1), [torch.zeros(1)], torch.zeros(1))


def test_pspnet_paper_loss_is_main_plus_four_tenths_auxiliary_cross_entropy() -> None:
    target = torch.tensor([[[[1.0, 0.0]]]])
    main, aux = torch.tensor([[[[1.0, -2.0]]]]), torch.tensor([[[[0.0, 3.0]]]])
    expected = (_bce(1.0, 1.0) + _bce(-2.0, 0.0)) / 2 + 0.4 * (_bce(0.0, 1.0) + _bce(3.0, 0.0)) / 2
    assert create_loss("bce", (0.4,))(main, [aux], target).item() == pytest.approx(expected, rel=1e-6)


def test_a_model_without_side_outputs_gets_the_fused_term_only() -> None:
    logits, target = torch.tensor([0.5, -0.5]), torch.tensor([1.0, 0.0])
    expected = F.binary_cross_entropy_with_logits(logits, target)
    assert create_loss("bce", ())(logits, [], target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_create_loss_builds_scnets_objective_and_suggests_close_names() -> None:
    assert isinstance(create_loss("scnet", (0.5, 1.0)), SCNetLoss)
    with pytest.raises(ValueError, match="did you mean 'balanced-bce'"):
        create_loss("balanced_bce", ())
