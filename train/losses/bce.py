"""Binary cross-entropy modules: plain, and class-balanced (HED's weighting)."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from crackseg.train.losses._functional import balanced_bce_with_logits, bce_with_logits

__all__ = ["BCELoss", "BalancedBCELoss"]


class BalancedBCELoss(nn.Module):
    """Class-balanced sigmoid cross-entropy on logits; see :func:`balanced_bce_with_logits`."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.loss_fn = partial(balanced_bce_with_logits, reduction=reduction)

    def forward(self, logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        return self.loss_fn(logits, target, weight=weight)


class BCELoss(nn.Module):
    """Sigmoid cross-entropy on logits with an optional pixel weight; see :func:`bce_with_logits`."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.loss_fn = partial(bce_with_logits, reduction=reduction)

    def forward(self, logits: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        return self.loss_fn(logits, target, weight=weight)
