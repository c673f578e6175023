"""DeepCrack-Zou, "DC-2" (Zou, Zhang, Li, Qi, Wang, Wang 2019, "DeepCrack: Learning Hierarchical
Convolutional Features for Crack Detection", IEEE TIP 28(3)): SegNet with skip-layer fusion.

Architecture, as built here::

    encoder: VGG16 convolutions in 5 stages, each followed by 2x2 max pooling that keeps its indices
    decoder: 5 mirrored stages; each unpools with the matching encoder indices, then convolves
    skip-layer fusion: side_k = Conv1x1([enc_k, dec_k]) upsampled to the input, at each of the 5 scales
    fused = Conv1x1([side_1 .. side_5])

Loss (paper): sigmoid cross-entropy on each side output and on the fused output, summed with equal
weights and no class weighting (the authors' PyTorch release uses ``pos_weight = 1``).

Deviations, and why:
    * Unpooling uses crackseg's one-hot window selectors (:mod:`crackseg.train.layers.unpool`), exactly
      max-unpooling but exportable to TensorRT (which has no MaxUnpool).
    * The paper upsamples each side output with a deconvolution; here it is bilinear resizing (no
      parameters, TensorRT Resize). The authors' later PyTorch release instead upsamples the concatenated
      features and applies 3x3 convolutions at full resolution, more than doubling the network's FLOPs;
      the paper's cheaper 1x1-then-upsample order is kept.
    * No ImageNet VGG16 can be downloaded here: the encoder trains from scratch unless the user supplies
      torchvision ``vgg16_bn`` (or, with ``norm=False``, ``vgg16``) weights. Batch norm follows every
      convolution by default, as in SegNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from crackseg.edge.artifact.spec import IMAGENET
from crackseg.train.layers import MaxUnpool, max_pool_with_selector
from crackseg.train.models._registry import register_model
from crackseg.train.models.backbones import VGG16_DEPTHS, VGG16_WIDTHS, VGGConv
from crackseg.train.models.vgg_side_output import VGGSideOutputConfig, VGGSideOutputNet

__all__ = ["DeepCrackZou", "DeepCrackZouConfig"]


@dataclass(frozen=True)
class DeepCrackZouConfig(VGGSideOutputConfig):
    """DC-2's options (see :class:`VGGSideOutputConfig`); batch norm by default as in SegNet, side weights all 1."""


class SegNetDecoder(nn.Module):
    """SegNet's decoder: stage k unpools with encoder stage k's selector, keeps its width until the last
    convolution, which narrows to the width of stage k - 1.

    Returns:
        the decoder stage outputs, finest first (each at the resolution of the matching encoder stage).
    """

    def __init__(self, norm: bool) -> None:
        super().__init__()
        outs = (VGG16_WIDTHS[0], *VGG16_WIDTHS[:-1])
        self.stages = nn.ModuleList(
            [
                nn.Sequential(*[VGGConv(i, o if n == d - 1 else i, norm) for n in range(d)])
                for i, o, d in zip(VGG16_WIDTHS, outs, VGG16_DEPTHS, strict=True)
            ]
        )
        self.unpools = nn.ModuleList([MaxUnpool(width) for width in VGG16_WIDTHS])
        self.out_channels = outs

    def forward(self, x: Tensor, selectors: list[Tensor]) -> list[Tensor]:
        outputs = []
        for stage, unpool, selector in zip(
            reversed(self.stages), reversed(self.unpools), reversed(selectors), strict=True
        ):
            x = stage(unpool(x, selector))
            outputs.append(x)
        return outputs[::-1]


class DeepCrackZou(VGGSideOutputNet):
    """DeepCrack (Zou et al. 2019): the VGG + side-output skeleton whose neck is a SegNet decoder; each side
    output reads encoder and decoder stage k side by side (skip-layer fusion)."""

    paper_loss = "bce"
    stride = 32
    """Every encoder stage is pooled (the decoder unpools all five)."""

    def build_neck(self) -> tuple[int, ...]:
        self.decoder = SegNetDecoder(norm=self.config.norm)
        return tuple(e + d for e, d in zip(self.encoder.out_channels, self.decoder.out_channels, strict=True))

    def side_features(self, image: Tensor) -> list[Tensor]:
        x, encoded, selectors = image, [], []
        for stage in self.encoder.stages:
            features = stage(x)
            x, selector = max_pool_with_selector(features)
            encoded.append(features)
            selectors.append(selector)
        decoded = self.decoder(x, selectors)
        return [torch.cat(pair, dim=1) for pair in zip(encoded, decoded, strict=True)]


@register_model(config=IMAGENET)
def deepcrack_zou(**kwargs: Any) -> DeepCrackZou:
    """DeepCrack DC-2 (Zou 2019): SegNet with index unpooling and encoder-decoder skip-layer fusion."""
    return DeepCrackZou(DeepCrackZouConfig(**kwargs))
