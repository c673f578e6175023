"""SCNet's training objective: deep-supervised focal loss plus soft IoU on the fused output."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from crackseg.train.losses.focal import FocalLoss
from crackseg.train.losses.soft_iou import SoftIoULoss

__all__ = ["SCNetLoss"]


class SCNetLoss(nn.Module):
    """``fused_weight * focal(fused) + sum_k w_k * focal(side_k) + iou_weight * soft_iou(fused)`` (SCNet eq. 11).

    Args:
        side_weights: weight of each side output, finest scale first (paper: 0.5, 0.75, 1.0, 0.75, 0.5).
        fused_weight: weight of the fused output's focal term.
        iou_weight: weight of the soft-IoU term.
        alpha, gamma: focal-loss parameters (paper: 1, 2).

    Shape:
        fused: ``(N, 1, H, W)`` logits; sides: one such tensor per scale; target: ``(N, 1, H, W)`` in {0, 1};
        pixel_weight (optional): ``(N, 1, H, W)``, how much each pixel counts in every term.
    """

    def __init__(
        self,
        side_weights: Sequence[float],
        fused_weight: float = 1.0,
        iou_weight: float = 1.0,
        alpha: float = 1.0,
        gamma: float = 2.0,
    ) -> None:
        super().__init__()
        self.side_weights = tuple(side_weights)
        self.fused_weight = fused_weight
        self.iou_weight = iou_weight
        self.focal = FocalLoss(alpha=alpha, gamma=gamma)
        self.soft_iou = SoftIoULoss()

    def forward(
        self, fused: Tensor, sides: Sequence[Tensor], target: Tensor, pixel_weight: Tensor | None = None
    ) -> Tensor:
        if len(sides) != len(self.side_weights):
            raise ValueError(f"got {len(sides)} side outputs but {len(self.side_weights)} side weights")
        loss = self.fused_weight * self.focal(fused, target, pixel_weight)
        loss = loss + self.iou_weight * self.soft_iou(fused, target, pixel_weight)
        for weight, side in zip(self.side_weights, sides, strict=True):
            loss = loss + weight * self.focal(side, target, pixel_weight)
        return loss
