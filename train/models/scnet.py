"""SCNet (Sharma, Pradhan, P 2021, "SCNet: A Generalized Attention-based Model for Crack Fault
Segmentation") and its lighter variants.

Architecture, as built here::

    RGB ──► edge prior (in-graph) ──► 4-channel input
    encoder: 5 VGG-C blocks (2,2,3,3,3 convs), each followed by scale-space attention and 2x2 max pool
    enhancement encoder: HCNN-style iterative fusion of the encoder's side features, fine to coarse
    decoder: 5 mirrored blocks; each unpools with the encoder's pooling positions, convolves and attends
    fused network: at every scale k, side_k = Conv1x1([enc_k, dec_k, enh_k]) upsampled to the input;
                   fused = Conv1x1([side_1 .. side_5])

Choices where the paper leaves room, and why:
    * Encoder and decoder widths mirror SegNet/DeepCrack (64-128-256-512-512). This reproduces the
      paper's size: 29.46 M parameters with 5 levels, 15.30 M with 4 (Table VII).
    * Attention: the gated features F_a continue along the main path and F_r (C' = 1) feeds the side
      output, so each block's attention both shapes the features and explains the side map.
    * Enhancement encoder: e_1 = F_r,1; e_k = Conv3x3([F_r,k, MaxPool(e_{k-1})]). It carries thin,
      fine-scale crack evidence down to the coarse scales, which is HCNN's feature-preservation idea,
      at a cost of a few hundred parameters.
    * Unpooling uses the one-hot window selectors of :mod:`crackseg.train.layers.unpool` everywhere
      (training included), so the exported graph is the trained graph and equals max-unpooling.
    * Side outputs are 1x1 convolutions on the three side features, then bilinear upsampling; the fused
      output is a learned 1x1 combination of the side logits.
    * Instance norm (affine) after every 3x3 convolution; Xavier-uniform initialisation, zero biases.

Variants only change :class:`SCNetConfig`: ``scnet-l4`` drops the fifth scale (the paper's ablation),
``scnet-s`` halves the widths, ``scnet-t`` uses quarter widths with depthwise-separable convolutions,
``scnet-t-wide`` 1.5x and ``scnet-t-wide2`` 2x those of ``scnet-t``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.train.layers import (
    ConvLayer,
    MaxUnpool,
    ScaleSpaceAttention,
    SideOutputHead,
    create_conv_layer,
    create_prior,
    max_pool_with_selector,
)
from crackseg.train.models._registry import register_model
from crackseg.train.models.base import CrackModel, ModelOutput

__all__ = ["SCNet", "SCNetConfig"]

PAPER_SIDE_WEIGHTS = (0.5, 0.75, 1.0, 0.75, 0.5)


@dataclass(frozen=True)
class SCNetConfig:
    """Everything that distinguishes one SCNet variant from another.

    Args:
        widths: output channels of encoder blocks 1..L (L = number of scales).
        depths: 3x3 convolutions per block, shared by encoder and mirrored decoder.
        conv: 'standard' 3x3 or 'separable' depthwise 3x3 + pointwise 1x1.
        prior: in-graph edge prior, 'sobel' or 'hed'.
        hed_weights: weights file for the 'hed' prior.
        side_weights: focal-loss weight of each side output, finest scale first.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    depths: tuple[int, ...] = (2, 2, 3, 3, 3)
    conv: str = "standard"
    prior: str = "sobel"
    hed_weights: str | None = None
    side_weights: tuple[float, ...] = PAPER_SIDE_WEIGHTS

    def __post_init__(self) -> None:
        if not len(self.widths) == len(self.depths) == len(self.side_weights):
            raise ValueError(
                f"widths {self.widths}, depths {self.depths} and side_weights {self.side_weights} "
                "must have one entry per scale"
            )

    @property
    def levels(self) -> int:
        return len(self.widths)

    @property
    def size_multiple(self) -> int:
        return 2**self.levels


class AttentionBlock(nn.Module):
    """Conv blocks through the given channel counts, then scale-space attention.

    Returns the gated features and the side feature. An encoder block widens at its first conv
    (``in, out, out, ...``); its decoder mirror keeps its input width until the last (``in, ..., in, out``).
    """

    def __init__(self, channels: Sequence[int], conv_layer: ConvLayer) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[conv_layer(i, o) for i, o in itertools.pairwise(channels)])
        self.attention = ScaleSpaceAttention(channels[-1])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        attended, side = self.attention(self.convs(x))
        return attended, side


class EncoderFeatures(NamedTuple):
    bottleneck: Tensor
    unpool_selectors: list[Tensor]
    sides: list[Tensor]


class SCNetEncoder(nn.Module):
    """VGG-C encoder with attention after every block; remembers where each pool took its maxima."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], depths: tuple[int, ...], conv: ConvLayer) -> None:
        super().__init__()
        ins = (in_channels, *widths[:-1])
        self.blocks = nn.ModuleList(
            [AttentionBlock([i] + [o] * d, conv) for i, o, d in zip(ins, widths, depths, strict=True)]
        )
        self.out_channels = widths

    def forward(self, x: Tensor) -> EncoderFeatures:
        selectors, sides = [], []
        for block in self.blocks:
            features, side = block(x)
            x, selector = max_pool_with_selector(features)
            selectors.append(selector)
            sides.append(side)
        return EncoderFeatures(x, selectors, sides)


class EnhancementEncoder(nn.Module):
    """HCNN-style iterative fusion: each scale's side feature fused with the pooled finer fusion."""

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.fuse = nn.ModuleList([nn.Conv2d(2, 1, 3, padding=1) for _ in range(levels - 1)])

    def forward(self, encoder_sides: list[Tensor]) -> list[Tensor]:
        enhanced = [encoder_sides[0]]
        for side, fuse in zip(encoder_sides[1:], self.fuse, strict=True):
            enhanced.append(fuse(torch.cat([side, F.max_pool2d(enhanced[-1], 2)], dim=1)))
        return enhanced


class SCNetDecoder(nn.Module):
    """Mirrored decoder; block k unpools with encoder block k's selector and returns its side feature."""

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...], conv: ConvLayer) -> None:
        super().__init__()
        outs = (widths[0], *widths[:-1])
        self.blocks = nn.ModuleList(
            [AttentionBlock([i] * d + [o], conv) for i, o, d in zip(widths, outs, depths, strict=True)]
        )
        self.unpools = nn.ModuleList([MaxUnpool(width) for width in widths])

    def forward(self, encoded: EncoderFeatures) -> list[Tensor]:
        x, sides = encoded.bottleneck, []
        stages = zip(reversed(self.blocks), reversed(self.unpools), reversed(encoded.unpool_selectors), strict=True)
        for block, unpool, selector in stages:
            x, side = block(unpool(x, selector))
            sides.append(side)
        return sides[::-1]


class SCNet(CrackModel):
    """SCNet and its variants. Input RGB scaled to [-1, 1], ``(N, 3, H, W)``, H and W multiples of
    ``config.size_multiple``.

    Returns:
        training mode: :class:`ModelOutput` (fused and side logits);
        eval mode: crack probability ``(N, 1, H, W)``.
    """

    def __init__(self, config: SCNetConfig) -> None:
        super().__init__()
        self.config = config
        conv = create_conv_layer(config.conv)
        self.prior = create_prior(config.prior, config.hed_weights)
        self.encoder = SCNetEncoder(self.input_channels + 1, config.widths, config.depths, conv)
        self.enhancement = EnhancementEncoder(config.levels)
        self.decoder = SCNetDecoder(config.widths, config.depths, conv)
        self.head = SideOutputHead((3,) * config.levels)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module.weight.requires_grad:
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def size_multiple(self) -> int:
        return self.config.size_multiple

    @property
    def side_weights(self) -> tuple[float, ...]:
        return self.config.side_weights

    def forward_logits(self, image: Tensor) -> ModelOutput:
        x = torch.cat([image, self.prior(image)], dim=1)
        encoded = self.encoder(x)
        enhanced = self.enhancement(encoded.sides)
        decoded = self.decoder(encoded)
        per_scale = [torch.cat(features, dim=1) for features in zip(encoded.sides, decoded, enhanced, strict=True)]
        return ModelOutput(*self.head(per_scale))


def _create_scnet(**kwargs: Any) -> SCNet:
    return SCNet(SCNetConfig(**kwargs))


@register_model
def scnet(**kwargs: Any) -> SCNet:
    """The paper's model: 5 scales, VGG-C widths, standard convolutions (29.46 M parameters)."""
    return _create_scnet(**kwargs)


@register_model
def scnet_l4(**kwargs: Any) -> SCNet:
    """The paper's 4-scale ablation (15.30 M parameters)."""
    args = {"widths": (64, 128, 256, 512), "depths": (2, 2, 3, 3), "side_weights": PAPER_SIDE_WEIGHTS[:4]}
    return _create_scnet(**{**args, **kwargs})


@register_model
def scnet_s(**kwargs: Any) -> SCNet:
    """Half width: about a quarter of the parameters and FLOPs, for mid-range GPUs."""
    return _create_scnet(**{"widths": (32, 64, 128, 256, 256), **kwargs})


@register_model
def scnet_t(**kwargs: Any) -> SCNet:
    """Jetson-class: quarter width, depthwise-separable convolutions; keeps attention and side outputs."""
    return _create_scnet(**{"widths": (16, 32, 64, 128, 128), "conv": "separable", **kwargs})


@register_model
def scnet_t_wide(**kwargs: Any) -> SCNet:
    """scnet-t at 1.5x width, room for many imaging domains; grows from a trained scnet-t (train --widen).

    See :mod:`crackseg.train.models.widen` for how the trained weights carry over.
    """
    return _create_scnet(**{"widths": (24, 48, 96, 192, 192), "conv": "separable", **kwargs})


@register_model
def scnet_t_wide2(**kwargs: Any) -> SCNet:
    """scnet-t at 2x width, near the light budget (2 M parameters, 15 GFLOPs); grows from a trained scnet-t-wide."""
    return _create_scnet(**{"widths": (32, 64, 128, 256, 256), "conv": "separable", **kwargs})
