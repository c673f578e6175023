"""Deep supervision: one pixel loss applied to the fused output and to every side output."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["DeepSupervisionLoss"]


class DeepSupervisionLoss(nn.Module):
    """``fused_weight * loss(fused) + sum_k w_k * loss(side_k)``: the objective of HED, both DeepCracks,
    HCNN and PSPNet (whose one side output is the auxiliary head), differing only in the pixel loss.

    Args:
        pixel_loss: maps ``(logits, target, weight)`` to a scalar, e.g. :class:`~crackseg.train.losses.bce.BCELoss`.
        side_weights: weight of each side output, finest scale first (empty: the fused output only).
        fused_weight: weight of the fused output's term.

    Shape:
        fused: ``(N, 1, H, W)`` logits; sides: one such tensor per side output; target: ``(N, 1, H, W)`` in {0, 1};
        pixel_weight (optional): ``(N, 1, H, W)``, how much each pixel counts.
    """

    def __init__(self, pixel_loss: nn.Module, side_weights: Sequence[float], fused_weight: float = 1.0) -> None:
        super().__init__()
        self.pixel_loss = pixel_loss
        self.side_weights = tuple(side_weights)
        self.fused_weight = fused_weight

    def forward(
        self, fused: Tensor, sides: Sequence[Tensor], target: Tensor, pixel_weight: Tensor | None = None
    ) -> Tensor:
        if len(sides) != len(self.side_weights):
            raise ValueError(f"got {len(sides)} side outputs but {len(self.side_weights)} side weights")
        loss = self.fused_weight * self.pixel_loss(fused, target, pixel_weight)
        for weight, side in zip(self.side_weights, sides, strict=True):
            loss = loss + weight * self.pixel_loss(side, target, pixel_weight)
        return loss
