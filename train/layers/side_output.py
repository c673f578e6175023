"""Deep supervision head shared by SCNet and the HED-style baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SideOutputHead"]


class SideOutputHead(nn.Module):
    """One logit map per scale from a 1x1 convolution, upsampled to the input, and their learned 1x1 fusion.

    Args:
        in_channels: channels of the feature map at each scale, finest first.
        fuse_bias: give the fusion convolution a bias (SCNet does; HED's fusion has none).
        strides: each scale's stride relative to the input (default: scale k has stride 2**k).

    Returns:
        ``(fused_logits, side_logits)``, every map ``(N, 1, H, W)`` at the input resolution.
    """

    def __init__(
        self, in_channels: tuple[int, ...], fuse_bias: bool = True, strides: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        self.strides = strides or tuple(2**scale for scale in range(len(in_channels)))
        self.sides = nn.ModuleList([nn.Conv2d(channels, 1, 1) for channels in in_channels])
        self.fuse = nn.Conv2d(len(in_channels), 1, 1, bias=fuse_bias)

    def reset_fusion(self) -> None:
        """HED's start: the fused output is the mean of the side outputs."""
        nn.init.constant_(self.fuse.weight, 1.0 / len(self.sides))

    def forward(self, features: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        side_logits = []
        for x, conv, stride in zip(features, self.sides, self.strides, strict=True):
            logits = conv(x)
            if stride > 1:
                logits = F.interpolate(logits, scale_factor=float(stride), mode="bilinear", align_corners=False)
            side_logits.append(logits)
        return self.fuse(torch.cat(side_logits, dim=1)), side_logits
