"""Loss values checked against hand computations."""

import math

import pytest
import torch

from crackseg.train.losses import FocalLoss, SCNetLoss, SoftIoULoss, focal_loss_with_logits, soft_iou_loss_with_logits


def _focal_by_hand(logit: float, target: float, alpha: float = 1.0, gamma: float = 2.0) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    p_t = p if target == 1.0 else 1.0 - p
    return -alpha * (1.0 - p_t) ** gamma * math.log(p_t)


@pytest.mark.parametrize(
    ("logit", "target", "expected"),
    [
        (0.0, 1.0, 0.25 * math.log(2.0)),  # p = 0.5: (1 - 0.5)^2 * -log(0.5)
        (0.0, 0.0, 0.25 * math.log(2.0)),
        (2.0, 1.0, _focal_by_hand(2.0, 1.0)),
        (-3.0, 1.0, _focal_by_hand(-3.0, 1.0)),
        (3.0, 0.0, _focal_by_hand(3.0, 0.0)),
    ],
)
def test_focal_loss_matches_hand_computation(logit: float, target: float, expected: float) -> None:
    value = focal_loss_with_logits(torch.tensor([logit]), torch.tensor([target]))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_focal_loss_with_gamma_zero_is_cross_entropy_scaled_by_alpha() -> None:
    logits, target = torch.tensor([1.5, -0.5]), torch.tensor([1.0, 0.0])
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert focal_loss_with_logits(logits, target, alpha=0.5, gamma=0.0).item() == pytest.approx(0.5 * ce.item())


def test_focal_loss_is_finite_and_near_zero_for_confident_correct_logits() -> None:
    value = focal_loss_with_logits(torch.tensor([80.0, -80.0]), torch.tensor([1.0, 0.0]))
    assert torch.isfinite(value) and value.item() < 1e-30


def test_focal_loss_orders_good_below_bad_predictions() -> None:
    target = torch.tensor([1.0, 0.0, 1.0])
    good = FocalLoss()(torch.tensor([3.0, -3.0, 2.0]), target)
    bad = FocalLoss()(torch.tensor([-3.0, 3.0, -2.0]), target)
    assert good < bad


def test_soft_iou_of_half_overlap() -> None:
    # probabilities [1, 1, 0, 0] (saturated logits) vs target [1, 0, 1, 0]:
    # intersection 1, union 1 + 1 + 1 = 3 -> loss 1 - 1/3
    logits = torch.tensor([[50.0, 50.0, -50.0, -50.0]])
    target = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert soft_iou_loss_with_logits(logits, target).item() == pytest.approx(2.0 / 3.0, abs=1e-6)


def test_soft_iou_uses_probabilities_not_hard_labels() -> None:
    # p = 0.5 on target [1, 0]: intersection 0.5 * 1 = 0.5; union (0.5 + 1 - 0.5) + (0.5 + 0 - 0) = 1.5
    value = soft_iou_loss_with_logits(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert value.item() == pytest.approx(1.0 - 0.5 / 1.5, abs=1e-6)


@pytest.mark.parametrize(("logit", "target"), [(50.0, 1.0), (-50.0, 0.0)])
def test_soft_iou_of_perfect_prediction_is_zero(logit: float, target: float) -> None:
    logits = torch.full((2, 1, 4, 4), logit)
    value = SoftIoULoss()(logits, torch.full((2, 1, 4, 4), target))
    assert value.item() == pytest.approx(0.0, abs=1e-6)


def test_scnet_loss_weights_its_terms() -> None:
    target = torch.tensor([[[[1.0, 0.0]]]])
    fused = torch.tensor([[[[0.0, 0.0]]]])
    sides = [torch.tensor([[[[2.0, -1.0]]]]), torch.tensor([[[[-1.0, 1.0]]]])]
    loss = SCNetLoss(side_weights=(0.5, 2.0), fused_weight=1.5, iou_weight=3.0)(fused, sides, target)
    expected = (
        1.5 * focal_loss_with_logits(fused, target)
        + 3.0 * soft_iou_loss_with_logits(fused, target)
        + 0.5 * focal_loss_with_logits(sides[0], target)
        + 2.0 * focal_loss_with_logits(sides[1], target)
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_scnet_loss_rejects_a_side_count_mismatch() -> None:
    with pytest.raises(ValueError, match="2 side outputs but 5 side weights"):
        SCNetLoss(side_weights=(0.5, 0.75, 1.0, 0.75, 0.5))(
            torch.zeros(1, 1), [torch.zeros(1, 1)] * 2, torch.zeros(1, 1)
        )
