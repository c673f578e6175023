"""The skeleton DeepCrack-Liu (DC-1), HCNN and DeepCrack-Zou (DC-2) share: a VGG16 encoder, a
variant-specific neck, and HED's side outputs fused by a bias-free 1x1 convolution.

::

    features = VGG16 stages (strides 1 .. 16)
    per_scale = neck(features)                 (DC-1: none; HCNN: preserving branches; DC-2: SegNet decoder)
    side_k = Conv1x1(per_scale_k) upsampled to the input; fused = Conv1x1([side_1 .. side_5]), mean at start

A variant only says what its neck is: :meth:`VGGSideOutputNet.build_neck` adds the neck's modules and
returns the channels the head sees per scale, :meth:`VGGSideOutputNet.side_features` runs encoder and neck.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from crackseg.train.layers import SideOutputHead
from crackseg.train.models.backbones import VGG16_WIDTHS, VGGBackbone, init_weights
from crackseg.train.models.base import CrackModel, ModelOutput

__all__ = ["VGGSideOutputConfig", "VGGSideOutputNet"]


@dataclass(frozen=True)
class VGGSideOutputConfig:
    """What every VGG + side-output variant lets vary.

    Args:
        norm: batch norm after every VGG convolution (False: the plain VGG16 of the papers).
        side_weights: loss weight of each of the five side outputs, finest first.
    """

    norm: bool = True
    side_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.side_weights) != len(VGG16_WIDTHS):
            name = type(self).__name__.removesuffix("Config")
            raise ValueError(f"{name} has {len(VGG16_WIDTHS)} side outputs, got side_weights {self.side_weights}")


class VGGSideOutputNet(CrackModel):
    """VGG16 encoder, the variant's neck, five HED side outputs and their fusion.

    Input RGB ``(N, 3, H, W)``, H and W multiples of :attr:`size_multiple`.

    Returns:
        training mode: :class:`ModelOutput` (fused and five side logits, finest first);
        eval mode: crack probability ``(N, 1, H, W)``.
    """

    paper_loss = "balanced-bce"
    stride = 16
    """The coarsest feature's stride: HED's encoder has no fifth pooling."""

    def __init__(self, config: VGGSideOutputConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = VGGBackbone(norm=config.norm)
        self.head = SideOutputHead(self.build_neck(), fuse_bias=False)
        init_weights(self)
        self.head.reset_fusion()

    def build_neck(self) -> tuple[int, ...]:
        """Adds the modules between encoder and head; returns the channels the head sees at each scale."""
        return self.encoder.out_channels

    def side_features(self, image: Tensor) -> list[Tensor]:
        """The feature map the head reads at each scale, finest first."""
        features: list[Tensor] = self.encoder(image)
        return features

    @property
    def size_multiple(self) -> int:
        return self.stride

    @property
    def side_weights(self) -> tuple[float, ...]:
        return self.config.side_weights

    def forward_logits(self, image: Tensor) -> ModelOutput:
        return ModelOutput(*self.head(self.side_features(image)))
