"""Loss math as pure functions over logits (numerically stable: no log of a sigmoid)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["balanced_bce_with_logits", "bce_with_logits", "focal_loss_with_logits", "soft_iou_loss_with_logits"]


def _reduce(loss: Tensor, reduction: str, weight: Tensor | None = None) -> Tensor:
    """Reduces a per-pixel loss; with ``weight``, 'mean' is the weighted mean ``sum(w * l) / sum(w)``."""
    if weight is not None:
        loss = loss * weight
    if reduction == "mean":
        return loss.mean() if weight is None else loss.sum() / weight.sum().clamp_min(1e-12)
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean', 'sum' or 'none'")


def bce_with_logits(logits: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Sigmoid cross-entropy (DeepCrack-Zou, PSPNet, CGNet), weighted per pixel like every loss here.

    Shape:
        logits, target, weight: any identical shape; target holds 0/1, weight how much each pixel counts.
    """
    return _reduce(F.binary_cross_entropy_with_logits(logits, target, reduction="none"), reduction, weight)


def focal_loss_with_logits(
    logits: Tensor,
    target: Tensor,
    alpha: float = 1.0,
    gamma: float = 2.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Pixel-wise binary focal loss ``-alpha * (1 - p_t)^gamma * log(p_t)`` (SCNet eq. 6).

    ``alpha`` scales every pixel equally, as in the paper (alpha = 1); it is not Lin et al.'s class-balancing
    weight. ``log(p_t)`` is taken from binary cross-entropy on logits and ``1 - p_t = -expm1(log p_t)``, so
    the loss stays finite for confident logits.

    Shape:
        logits, target: any identical shape; target holds 0/1. weight (optional, same shape): how much
        each pixel counts (0 leaves it out). Output: scalar, or the input shape for 'none'.
    """
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    modulating = (-torch.expm1(-ce)).pow(gamma)
    return _reduce(alpha * modulating * ce, reduction, weight)


def soft_iou_loss_with_logits(
    logits: Tensor, target: Tensor, eps: float = 1e-7, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """Soft IoU loss ``1 - sum(p*y) / sum(p + y - p*y)`` per image (SCNet eq. 9-10).

    ``eps`` keeps an image with no crack and an empty prediction at loss 0 instead of 0/0.

    With ``weight``, each pixel enters both sums scaled by its weight: a pixel of weight 0 is not
    there, a hard negative of weight 4 costs four times as much union when predicted.

    Shape:
        logits, target, weight: ``(N, ...)``; the ratio is taken per image over all other dimensions.
    """
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    pixel_weight = torch.ones_like(prob) if weight is None else weight.flatten(1)
    intersection = (pixel_weight * prob * target).sum(dim=1)
    union = (pixel_weight * (prob + target - prob * target)).sum(dim=1)
    return _reduce(1.0 - (intersection + eps) / (union + eps), reduction)


def balanced_bce_with_logits(
    logits: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """HED's class-balanced sigmoid cross-entropy (Xie & Tu 2015, eq. 2): DeepCrack-Liu's and HCNN's loss.

    Crack pixels are weighted by ``beta = |Y-| / |Y|`` and background pixels by ``1 - beta``, with the
    counts taken over the whole batch, as HED counts over its input blob: a crack-free crop still costs
    something when other images of the batch hold cracks (a batch without any crack costs 0). The mean
    over pixels replaces HED's sum so the scale does not depend on the image size.

    With a pixel ``weight``, the counts are weighted too, and the class weights multiply it.

    Shape:
        logits, target, weight: any identical shape; target holds 0/1. Output: scalar, or the input
        shape for 'none'.
    """
    beta = 1.0 - (target.mean() if weight is None else (target * weight).sum() / weight.sum().clamp_min(1e-12))
    balance = beta * target + (1.0 - beta) * (1.0 - target)
    ce = F.binary_cross_entropy_with_logits(logits, target, weight=balance, reduction="none")
    return _reduce(ce, reduction, weight)
