"""Training objectives by name: what ``crackseg train --loss`` chooses from.

Each model names its paper's objective in ``paper_loss``; the side weights come from the model.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from torch import nn

from crackseg.train.losses.bce import BalancedBCELoss, BCELoss
from crackseg.train.losses.combo import SCNetLoss
from crackseg.train.losses.deep_supervision import DeepSupervisionLoss

__all__ = ["LOSSES", "create_loss"]

LOSSES: dict[str, Callable[[Sequence[float]], nn.Module]] = {
    "scnet": SCNetLoss,
    "bce": lambda side_weights: DeepSupervisionLoss(BCELoss(), side_weights),
    "balanced-bce": lambda side_weights: DeepSupervisionLoss(BalancedBCELoss(), side_weights),
}
"""'scnet': focal on every output plus soft IoU on the fused one (SCNet eq. 11); 'bce': sigmoid
cross-entropy on every output (DeepCrack-Zou, PSPNet, CGNet); 'balanced-bce': HED's class-balanced
cross-entropy on every output (DeepCrack-Liu, HCNN)."""


def create_loss(name: str, side_weights: Sequence[float]) -> nn.Module:
    """The objective ``name`` (see :data:`LOSSES`) for a model with these side-output weights.

    The module is called as ``loss(fused_logits, side_logits, target, pixel_weight)``, the weight
    optional; raises ``ValueError`` for an unknown name, with a suggestion.
    """
    if name not in LOSSES:
        close = difflib.get_close_matches(name, LOSSES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown loss {name!r}{hint} Known losses: {', '.join(LOSSES)}")
    return LOSSES[name](side_weights)
