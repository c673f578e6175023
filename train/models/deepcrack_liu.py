"""DeepCrack-Liu, "DC-1" (Liu, Yao, Lu, Xie, Li 2019, "DeepCrack: A deep hierarchical feature learning
architecture for crack segmentation", Neurocomputing 338): HED for cracks.

Architecture, as built here::

    VGG16 convolutions in 5 stages (strides 1, 2, 4, 8, 16; no fully connected layers, no fifth pool)
    side_k = Conv1x1(stage_k) upsampled bilinearly to the input      (deep supervision at every stage)
    fused  = Conv1x1([side_1 .. side_5])                              (initialised to their mean, as HED)

Loss (paper): class-balanced sigmoid cross-entropy (HED's beta weighting) on each side output and on the
fused output; side weights 0.5, 0.75, 1.0, 0.75, 0.5 as in the authors' PyTorch release (DeepSegmentor),
whose fixed 0.03 : 1 background : crack class weights are the same balancing with beta fixed near 0.97.

Deviations, and why:
    * No ImageNet VGG16 can be downloaded here. By default every convolution is followed by batch norm so
      the network trains from scratch; ``norm=False`` gives the paper's plain VGG16, which takes
      user-supplied torchvision ``vgg16`` weights (``vgg16_bn`` weights for the default), see
      :func:`crackseg.train.models.backbones.load_backbone_weights`.
    * The guided-filter refinement of the fused map (guided by side output 1) and the CRF are omitted:
      both are post-processing after the network's own fused output, which is what is trained and scored.
    * Side outputs are upsampled bilinearly rather than by (fixed bilinear) deconvolution: same result,
      and Resize is a TensorRT-friendly op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from crackseg.edge.artifact.spec import IMAGENET
from crackseg.train.layers import SideOutputHead
from crackseg.train.models._registry import register_model
from crackseg.train.models.backbones import VGGBackbone, init_weights
from crackseg.train.models.base import CrackModel, ModelOutput

__all__ = ["DeepCrackLiu", "DeepCrackLiuConfig"]


@dataclass(frozen=True)
class DeepCrackLiuConfig:
    """What can vary in DeepCrack-Liu.

    Args:
        norm: batch norm after each VGG convolution (False: the paper's plain VGG16).
        side_weights: loss weight of each side output, finest first.
    """

    norm: bool = True
    side_weights: tuple[float, ...] = (0.5, 0.75, 1.0, 0.75, 0.5)

    def __post_init__(self) -> None:
        if len(self.side_weights) != 5:
            raise ValueError(f"DeepCrack-Liu has 5 side outputs, got side_weights {self.side_weights}")

    @property
    def levels(self) -> int:
        return 5


class DeepCrackLiu(CrackModel):
    """DeepCrack (Liu et al. 2019). Input RGB ``(N, 3, H, W)``, H and W multiples of 16.

    Returns:
        training mode: :class:`ModelOutput` (fused and five side logits, finest first);
        eval mode: crack probability ``(N, 1, H, W)``.
    """

    paper_loss = "balanced-bce"

    def __init__(self, config: DeepCrackLiuConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = VGGBackbone(norm=config.norm)
        self.head = SideOutputHead(self.encoder.out_channels, fuse_bias=False)
        init_weights(self)
        self.head.reset_fusion()

    @property
    def size_multiple(self) -> int:
        return 16

    @property
    def side_weights(self) -> tuple[float, ...]:
        return self.config.side_weights

    def forward_logits(self, image: Tensor) -> ModelOutput:
        return ModelOutput(*self.head(self.encoder(image)))


@register_model(config=IMAGENET)
def deepcrack_liu(**kwargs: Any) -> DeepCrackLiu:
    """DeepCrack DC-1 (Liu 2019): HED on VGG16, five side outputs fused; batch norm to train from scratch."""
    return DeepCrackLiu(DeepCrackLiuConfig(**kwargs))
