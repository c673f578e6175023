"""PSPNet (Zhao, Shi, Qi, Wang, Jia 2017, "Pyramid Scene Parsing Network", CVPR), the scene-parsing
baseline also used for cracks (e.g. at 448x448 on Khanhha's crack dataset).

Architecture, as built here::

    dilated ResNet, output stride 8: stages 3 and 4 keep stride 1 with dilation 2 and 4
    pyramid pooling on stage 4: average-pool to 1x1, 2x2, 3x3, 6x6 bins; each Conv1x1 to C/4, BN, ReLU;
        upsample bilinearly to the feature size; concatenate with the features
    head: Conv3x3 to C/4, BN, ReLU, dropout 0.1, Conv1x1 to the crack logit; upsample x8 to the input
    auxiliary head on stage 3 (same shape, C3/4 channels): the one side output, loss weight 0.4

Loss (paper): cross-entropy on the main output plus 0.4 x cross-entropy on the auxiliary output; with one
crack class that is sigmoid cross-entropy.

Deviations, and why:
    * ResNet-18 by default (``backbone='resnet50'`` / ``'resnet101'`` for the paper's depths): about
      13 M parameters keeps CPU tests and Jetson comparisons practical. Channel rules follow the paper
      (pyramid branches C/4, head C/4), which gives mmseg's PSPNet-R18-d8 widths for ResNet-18.
    * The stem is torchvision's 7x7 convolution, not the paper's three 3x3 convolutions, so user-supplied
      torchvision ImageNet weights load (:func:`crackseg.train.models.backbones.load_backbone_weights`);
      none can be downloaded here, so by default the backbone trains from scratch.
    * Adaptive average pooling is written as Slice + ReduceMean with bin edges computed from the traced
      shape (:func:`adaptive_avg_pool`): exactly PyTorch's adaptive pooling for every size, and the ONNX
      graph stays dynamic and TensorRT-parseable, where ``AdaptiveAvgPool2d`` exports only for sizes
      that the bins divide.
    * Training needs at least 2 images per batch (per process): the 1x1 bin's batch norm sees one value
      per channel per image, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.edge.artifact.spec import IMAGENET
from crackseg.train.models._registry import register_model
from crackseg.train.models.backbones import create_resnet, init_weights
from crackseg.train.models.base import CrackModel, ModelOutput

__all__ = ["PSPHead", "PSPNet", "PSPNetConfig", "PyramidPooling", "adaptive_avg_pool"]


def _div(numerator: int | Tensor, denominator: int) -> int | Tensor:
    """Integer division of a non-negative size. While tracing, sizes are tensors: truncating division
    exports as one ONNX Div (floor division would add Mod, Where and comparisons)."""
    if isinstance(numerator, Tensor):
        return torch.div(numerator, denominator, rounding_mode="trunc")
    return numerator // denominator


def _bin_edges(size: int | Tensor, bins: int) -> list[tuple[int | Tensor, int | Tensor]]:
    """PyTorch's adaptive-pooling windows: bin i covers [floor(i*size/bins), ceil((i+1)*size/bins))."""
    return [(_div(i * size, bins), _div((i + 1) * size + bins - 1, bins)) for i in range(bins)]


def adaptive_avg_pool(x: Tensor, bins: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` as Slice + ReduceMean, rows then columns (a window's mean is the
    mean of its row means), so the ONNX graph works for any input size."""
    rows = torch.cat([x[:, :, start:end].mean(2, keepdim=True) for start, end in _bin_edges(x.shape[2], bins)], 2)
    return torch.cat([rows[:, :, :, start:end].mean(3, keepdim=True) for start, end in _bin_edges(x.shape[3], bins)], 3)


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module: the features concatenated with their pooled, reduced and upsampled
    pyramid (``len(bins)`` branches of ``in_channels // len(bins)`` channels each).
    """

    def __init__(self, in_channels: int, bins: tuple[int, ...]) -> None:
        super().__init__()
        width = in_channels // len(bins)
        self.bins = bins
        self.branches = nn.ModuleList([_conv_bn_relu(in_channels, width) for _ in bins])
        self.out_channels = in_channels + width * len(bins)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        pyramid = [x]
        for bins, branch in zip(self.bins, self.branches, strict=True):
            pooled = branch(adaptive_avg_pool(x, bins))
            pyramid.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return torch.cat(pyramid, dim=1)


class PSPHead(nn.Sequential):
    """Conv3x3, BN, ReLU, dropout, Conv1x1 to one crack logit: the main and the auxiliary head."""

    def __init__(self, in_channels: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, 1, 1)


@dataclass(frozen=True)
class PSPNetConfig:
    """What can vary in PSPNet.

    Args:
        backbone: 'resnet18' (default), 'resnet34', 'resnet50' or 'resnet101', torchvision layout.
        bins: pyramid pooling bin counts (paper: 1, 2, 3, 6).
        aux_weight: loss weight of the auxiliary output (paper: 0.4).
        dropout: dropout before each classifier (paper: 0.1).
    """

    backbone: str = "resnet18"
    bins: tuple[int, ...] = (1, 2, 3, 6)
    aux_weight: float = 0.4
    dropout: float = 0.1


class PSPNet(CrackModel):
    """PSPNet with a dilated ResNet. Input RGB ``(N, 3, H, W)``, H and W multiples of 8.

    Returns:
        training mode: :class:`ModelOutput` (fused = main logits, sides = [auxiliary logits]);
        eval mode: crack probability ``(N, 1, H, W)``.
    """

    paper_loss = "bce"

    def __init__(self, config: PSPNetConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = create_resnet(config.backbone, output_stride=8)
        stage3, stage4 = self.encoder.out_channels[2:]
        self.ppm = PyramidPooling(stage4, config.bins)
        self.head = PSPHead(self.ppm.out_channels, stage4 // 4, config.dropout)
        self.aux_head = PSPHead(stage3, stage3 // 4, config.dropout)
        init_weights(self)

    @property
    def size_multiple(self) -> int:
        return 8

    @property
    def side_weights(self) -> tuple[float, ...]:
        return (self.config.aux_weight,)

    def forward_logits(self, image: Tensor) -> ModelOutput:
        *_, stage3, stage4 = self.encoder(image)
        logits = _upsample8(self.head(self.ppm(stage4)))
        aux = [_upsample8(self.aux_head(stage3))] if self.training else []  # the auxiliary head only trains
        return ModelOutput(logits, aux)


def _upsample8(logits: Tensor) -> Tensor:
    return F.interpolate(logits, scale_factor=8.0, mode="bilinear", align_corners=False)


@register_model(config=IMAGENET)
def pspnet(**kwargs: Any) -> PSPNet:
    """PSPNet (Zhao 2017): dilated ResNet-18 (output stride 8), pyramid pooling 1/2/3/6, auxiliary head."""
    return PSPNet(PSPNetConfig(**kwargs))
