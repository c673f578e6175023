"""SCNet on an ImageNet-pretrained EfficientNet-Lite0 trunk (``scnet-e0``), and the plain FPN it is measured against.

Training from random weights on about 1,900 crack images plateaued; transfer from ImageNet does not.
The trunk is EfficientNet-Lite0 cut after its fifth stage (strides 2/4/8/16, 0.70 M parameters), and
the decoder keeps SCNet's ideas where they sit naturally on a feature pyramid::

    RGB ──► Sobel edge prior (in-graph) ──► 4-channel stem (prior channel starts at zero weight)
    trunk: stage outputs at strides 2, 4, 8, 16 (stages 1, 2, 3, 5)
    decoder, coarse to fine: p_s = smooth(lateral(c_s) + upsample2(p_2s)), then scale-space attention:
        the gated features continue to the next finer level, the reduced side feature explains this scale
    side outputs: one logit map per scale, bilinearly upsampled; fused = learned 1x1 combination
    loss: SCNet's focal on every output plus soft IoU on the fused one

``fpn-e0`` is the same trunk and pyramid without attention, side outputs or prior: one logit map from
the finest level. At equal CPU time from ImageNet weights it led ``scnet-e0`` on validation by 13 points
(the 1-channel attention side features narrow what reaches the output), so it is what the default
bundled model uses (``edge/models/fpn-e0-general.md``). Both are built for deployment: BatchNorm
(folded into the convolutions at export), ReLU/ReLU6, bilinear ``Resize``; no transposed convolution,
crop or instance norm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.train.layers import ScaleSpaceAttention, SideOutputHead, create_prior
from crackseg.train.models._registry import register_model
from crackseg.train.models.base import CrackModel, ModelOutput
from crackseg.train.models.efficientnet_lite import LITE0_STAGES, LITE_INPUT, EfficientNetLite
from crackseg.train.models.pretrained import EFFICIENTNET_LITE0_IMAGENET

__all__ = ["PyramidSCNet", "PyramidSCNetConfig"]

_PYRAMID_STAGES = (0, 1, 2, 4)
"""Trunk stages whose outputs form the pyramid: strides 2, 4, 8 and 16 (stage 4 shares stage 5's stride)."""


@dataclass(frozen=True)
class PyramidSCNetConfig:
    """What distinguishes ``scnet-e0`` from the plain ``fpn-e0``.

    Args:
        width: channels of every decoder level.
        attention: scale-space attention after each decoder level.
        side_outputs: one supervised logit map per level and a learned fusion (else one map from the finest).
        prior: in-graph edge prior fed to the stem as a fourth channel ('sobel'), or 'none'.
        side_weights: loss weight of each side output, finest first.
    """

    width: int = 64
    attention: bool = True
    side_outputs: bool = True
    prior: str = "sobel"
    side_weights: tuple[float, ...] = (0.5, 0.75, 1.0, 0.75)


class SeparableBNReLU(nn.Sequential):
    """Depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU: the decoder's smoothing unit."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )


class PyramidDecoder(nn.Module):
    """Top-down feature pyramid; returns each level's side feature, finest first."""

    def __init__(self, in_channels: tuple[int, ...], width: int, attention: bool) -> None:
        super().__init__()
        self.laterals = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(c, width, 1, bias=False), nn.BatchNorm2d(width)) for c in in_channels]
        )
        self.smooth = nn.ModuleList([SeparableBNReLU(width) for _ in in_channels])
        self.attention = nn.ModuleList([ScaleSpaceAttention(width) for _ in in_channels]) if attention else None

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        sides: list[Tensor] = []
        x: Tensor | None = None
        for level in reversed(range(len(features))):
            lateral = self.laterals[level](features[level])
            if x is not None:
                lateral = lateral + F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.smooth[level](lateral)
            if self.attention is not None:
                x, side = self.attention[level](x)
                sides.append(side)
            else:
                sides.append(x)
        return sides[::-1]


class PyramidSCNet(CrackModel):
    """An EfficientNet-Lite0 trunk with a pyramid decoder; see the module docstring.

    Input RGB scaled ``(x - 127.5) / 128``, ``(N, 3, H, W)``, H and W multiples of 16.
    """

    pretrained_weights = EFFICIENTNET_LITE0_IMAGENET

    def __init__(self, config: PyramidSCNetConfig) -> None:
        super().__init__()
        self.config = config
        self.prior = create_prior(config.prior) if config.prior != "none" else None
        stages = LITE0_STAGES[: max(_PYRAMID_STAGES) + 1]
        self.encoder = EfficientNetLite(stages, in_channels=self.input_channels + (self.prior is not None))
        pyramid_channels = tuple(self.encoder.out_channels[i] for i in _PYRAMID_STAGES)
        strides = tuple(self.encoder.strides[i] for i in _PYRAMID_STAGES)
        self.decoder = PyramidDecoder(pyramid_channels, config.width, config.attention)
        side_channels = 1 if config.attention else config.width
        if config.side_outputs:
            self.head = SideOutputHead((side_channels,) * len(strides), strides=strides)
        else:
            self.head = SideOutputHead((side_channels,), strides=strides[:1])
        self._strides = strides

    def load_pretrained(self, state: Mapping[str, Tensor]) -> None:
        self.encoder.load_pretrained(state)

    @property
    def size_multiple(self) -> int:
        return max(self._strides)

    @property
    def side_weights(self) -> tuple[float, ...]:
        return self.config.side_weights if self.config.side_outputs else ()

    def forward_logits(self, image: Tensor) -> ModelOutput:
        x = torch.cat([image, self.prior(image)], dim=1) if self.prior is not None else image
        trunk = self.encoder(x)
        sides = self.decoder([trunk[i] for i in _PYRAMID_STAGES])
        if not self.config.side_outputs:
            fused, _ = self.head(sides[:1])
            return ModelOutput(fused, [])
        return ModelOutput(*self.head(sides))


def _create(defaults: dict[str, Any], kwargs: dict[str, Any]) -> PyramidSCNet:
    return PyramidSCNet(PyramidSCNetConfig(**{**defaults, **kwargs}))


@register_model(config=LITE_INPUT)
def scnet_e0(**kwargs: Any) -> PyramidSCNet:
    """SCNet's attention, side outputs and edge prior on an ImageNet-pretrainable EfficientNet-Lite0 trunk."""
    return _create({}, kwargs)


@register_model(config=LITE_INPUT)
def fpn_e0(**kwargs: Any) -> PyramidSCNet:
    """EfficientNet-Lite0 trunk and a plain feature pyramid (the default model's): scnet-e0 without SCNet's parts."""
    return _create({"attention": False, "side_outputs": False, "prior": "none"}, kwargs)
