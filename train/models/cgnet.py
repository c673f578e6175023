"""CGNet (Wu, Tang, Zhang, Zhang 2019, "CGNet: A Light-weight Context Guided Network for Semantic
Segmentation", arXiv 1811.08201 / IEEE TIP 2021): the light-weight baseline, trained from scratch as in
the paper.

Architecture, as built here (CGNet_M3N21, the paper's default)::

    stage 1 (1/2): Conv3x3 s2 + 2 x Conv3x3, 32 channels (each BN + PReLU); concat the image
                   average-pooled to 1/2 (input injection); BN + PReLU
    stage 2 (1/4): a down-sampling CG block to 64 channels, then M - 1 = 2 CG blocks (dilation 2,
                   reduction 8); concat [last, first, image at 1/4]; BN + PReLU
    stage 3 (1/8): a down-sampling CG block to 128 channels, then N - 1 = 20 CG blocks (dilation 4,
                   reduction 16); concat [first, last]; BN + PReLU
    classifier: Conv1x1 to one crack logit, upsampled bilinearly x8 to the input

A CG block: a 1x1 convolution halves the channels; f_loc (depthwise 3x3) and f_sur (depthwise dilated 3x3)
run side by side and are concatenated (f_joi), then BN + PReLU; f_glo is a squeeze-excitation style
global context: channel means, two 1x1 convolutions (reduce by r, ReLU, restore), sigmoid, rescale; the
block is residual. The down-sampling block starts with a stride-2 3x3 convolution to the full width, adds
a 1x1 reduction after f_joi, and has no residual.

Loss: sigmoid cross-entropy (the paper's Cityscapes loss is class-weighted softmax cross-entropy; with
one crack class it reduces to this). No side outputs.

Deviations, and why:
    * One output class (crack) instead of 19. The classifier has no dropout, as in the authors' default.
    * The global context's average pooling is a mean over H and W (ONNX ReduceMean) and its fully
      connected layers are 1x1 convolutions: the same arithmetic, exported without GlobalAveragePool or
      Gemm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.train.models._registry import register_model
from crackseg.train.models.base import CrackModel, ModelOutput

__all__ = ["CGBlock", "CGDownBlock", "CGNet", "CGNetConfig", "CGNetEncoder", "GlobalContext", "JointFeature"]

_BN_EPS = 1e-3  # the authors' setting


class BNPReLU(nn.Sequential):
    """Batch norm then per-channel PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=_BN_EPS)
        self.act = nn.PReLU(channels)


class ConvBNPReLU(nn.Sequential):
    """Convolution (no bias, 'same' padding), batch norm, PReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels, eps=_BN_EPS)
        self.act = nn.PReLU(out_channels)


class JointFeature(nn.Module):
    """f_joi: local feature (depthwise 3x3) and surrounding context (depthwise dilated 3x3), concatenated."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.loc = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.sur = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.loc(x), self.sur(x)], dim=1)


class GlobalContext(nn.Module):
    """f_glo: rescales each channel by a weight computed from the channel means of the whole image."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        weights = torch.sigmoid(self.fc2(self.act(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * weights


class CGBlock(nn.Module):
    """Residual context guided block at constant width ``channels``."""

    def __init__(self, channels: int, dilation: int, reduction: int) -> None:
        super().__init__()
        self.conv = ConvBNPReLU(channels, channels // 2, 1)
        self.joint = JointFeature(channels // 2, dilation)
        self.bn_act = BNPReLU(channels)
        self.context = GlobalContext(channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.context(self.bn_act(self.joint(self.conv(x))))
        return x + shortcut


class CGDownBlock(nn.Module):
    """Context guided block that halves the resolution and changes the width to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int, reduction: int) -> None:
        super().__init__()
        self.conv = ConvBNPReLU(in_channels, out_channels, 3, stride=2)
        self.joint = JointFeature(out_channels, dilation)
        self.bn_act = BNPReLU(2 * out_channels)
        self.reduce = nn.Conv2d(2 * out_channels, out_channels, 1, bias=False)
        self.context = GlobalContext(out_channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        return self.context(self.reduce(self.bn_act(self.joint(self.conv(x)))))


@dataclass(frozen=True)
class CGNetConfig:
    """What can vary in CGNet.

    Args:
        m: CG blocks in stage 2, the down-sampling block included (paper: 3).
        n: CG blocks in stage 3, the down-sampling block included (paper: 21).
    """

    m: int = 3
    n: int = 21

    def __post_init__(self) -> None:
        if self.m < 1 or self.n < 1:
            raise ValueError(f"CGNet needs m >= 1 and n >= 1, got m={self.m}, n={self.n}")


class CGNetEncoder(nn.Module):
    """Stages 1-3 of CGNet; returns the 256-channel features at 1/8 resolution."""

    def __init__(self, m: int, n: int) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(ConvBNPReLU(3, 32, 3, stride=2), ConvBNPReLU(32, 32, 3), ConvBNPReLU(32, 32, 3))
        self.inject = nn.AvgPool2d(3, stride=2, padding=1)
        self.bn_act1 = BNPReLU(32 + 3)
        self.down2 = CGDownBlock(32 + 3, 64, dilation=2, reduction=8)
        self.stage2 = nn.Sequential(*[CGBlock(64, dilation=2, reduction=8) for _ in range(m - 1)])
        self.bn_act2 = BNPReLU(128 + 3)
        self.down3 = CGDownBlock(128 + 3, 128, dilation=4, reduction=16)
        self.stage3 = nn.Sequential(*[CGBlock(128, dilation=4, reduction=16) for _ in range(n - 1)])
        self.bn_act3 = BNPReLU(256)
        self.out_channels = 256

    def forward(self, image: Tensor) -> Tensor:
        image_2 = self.inject(image)
        image_4 = self.inject(image_2)
        x = self.bn_act1(torch.cat([self.stage1(image), image_2], dim=1))
        first = self.down2(x)
        x = self.bn_act2(torch.cat([self.stage2(first), first, image_4], dim=1))
        first = self.down3(x)
        return self.bn_act3(torch.cat([first, self.stage3(first)], dim=1))


class CGNet(CrackModel):
    """CGNet for one crack class. Input RGB ``(N, 3, H, W)``, H and W multiples of 8.

    Returns:
        training mode: :class:`ModelOutput` (fused = the only logits, no side outputs);
        eval mode: crack probability ``(N, 1, H, W)``.
    """

    paper_loss = "bce"

    def __init__(self, config: CGNetConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = CGNetEncoder(config.m, config.n)
        self.head = nn.Conv2d(self.encoder.out_channels, 1, 1, bias=False)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)  # the authors' initialisation
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def size_multiple(self) -> int:
        return 8

    @property
    def side_weights(self) -> tuple[float, ...]:
        return ()

    def forward_logits(self, image: Tensor) -> ModelOutput:
        logits = F.interpolate(self.head(self.encoder(image)), scale_factor=8.0, mode="bilinear", align_corners=False)
        return ModelOutput(logits, [])


@register_model
def cgnet(**kwargs: Any) -> CGNet:
    """CGNet M3N21 (Wu 2019): context guided blocks with local, surrounding and global context, 0.5 M params."""
    return CGNet(CGNetConfig(**kwargs))
