"""SCNet's scale-space attention module."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ScaleSpaceAttention"]


class ScaleSpaceAttention(nn.Module):
    """Gates a feature map spatially and reduces it to a side feature.

    ``F_a = sigmoid(Conv_{C->1}(F)) * F`` and ``F_r = Conv_{C->C'}(F_a)`` with ``C' = 1`` (paper).
    The gate uses a 3x3 kernel so the attention sees a crack's local context; the reduction is 1x1.

    Args:
        channels: channels C of the incoming feature map.
        side_channels: channels C' of the reduced side feature.

    Returns:
        ``(F_a, F_r)``: the gated features (same shape as the input) and the side feature.
    """

    def __init__(self, channels: int, side_channels: int = 1) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, 1, 3, padding=1)
        self.reduce = nn.Conv2d(channels, side_channels, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        attended = torch.sigmoid(self.gate(x)) * x
        return attended, self.reduce(attended)
