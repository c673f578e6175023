"""Soft IoU loss module."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from crackseg.train.losses._functional import soft_iou_loss_with_logits

__all__ = ["SoftIoULoss"]


class SoftIoULoss(nn.Module):
    """Soft IoU loss on logits; see :func:`soft_iou_loss_with_logits`."""

    def __init__(self, eps: float = 1e-7, reduction: str = "mean") -> None:
        super().__init__()
        self.loss_fn = partial(soft_iou_loss_with_logits, eps=eps, reduction=reduction)

    def forward(self, logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        return self.loss_fn(logits, target, weight=weight)
