"""Binary focal loss module."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from crackseg.train.losses._functional import focal_loss_with_logits

__all__ = ["FocalLoss"]


class FocalLoss(nn.Module):
    """Binary focal loss on logits; see :func:`focal_loss_with_logits`."""

    def __init__(self, alpha: float = 1.0, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        self.loss_fn = partial(focal_loss_with_logits, alpha=alpha, gamma=gamma, reduction=reduction)

    def forward(self, logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        return self.loss_fn(logits, target, weight=weight)
