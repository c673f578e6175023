"""Deep supervision head shared by SCNet and the HED-style baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SideOutputHead"]


class SideOutputHead(nn.Module):
    """One logit map per scale from a 1x1 convolution, upsampled to the input, and their learned 1x1 fusion.

    Args:
        in_channels: channels of the feature map at each scale, finest first; scale k has stride 2**k.
        fuse_bias: give the fusion convolution a bias (SCNet does; HED's fusion has none).

    Returns:
        ``(fused_logits, side_logits)``, every map ``(N, 1, H, W)`` at the input resolution.
    """

    def __init__(self, in_channels: tuple[int, ...], fuse_bias: bool = True) -> None:
        super().__init__()
        self.sides = nn.ModuleList([nn.Conv2d(channels, 1, 1) for channels in in_channels])
        self.fuse = nn.Conv2d(len(in_channels), 1, 1, bias=fuse_bias)

    def reset_fusion(self) -> None:
        """HED's start: the fused output is the mean of the side outputs."""
        nn.init.constant_(self.fuse.weight, 1.0 / len(self.sides))

    def forward(self, features: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        side_logits = []
        for scale, (x, conv) in enumerate(zip(features, self.sides, strict=True)):
            logits = conv(x)
            if scale:
                logits = F.interpolate(logits, scale_factor=float(2**scale), mode="bilinear", align_corners=False)
            side_logits.append(logits)
        return self.fuse(torch.cat(side_logits, dim=1)), side_logits
