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

from crackseg.edge.artifact.spec import IMAGENET
from crackseg.train.models._registry import register_model
from crackseg.train.models.vgg_side_output import VGGSideOutputConfig, VGGSideOutputNet

__all__ = ["DeepCrackLiu", "DeepCrackLiuConfig"]


@dataclass(frozen=True)
class DeepCrackLiuConfig(VGGSideOutputConfig):
    """DC-1's options (see :class:`VGGSideOutputConfig`); side weights as in the authors' release."""

    side_weights: tuple[float, ...] = (0.5, 0.75, 1.0, 0.75, 0.5)


class DeepCrackLiu(VGGSideOutputNet):
    """DeepCrack (Liu et al. 2019): the VGG + side-output skeleton with no neck (HED on VGG16)."""


@register_model(config=IMAGENET)
def deepcrack_liu(**kwargs: Any) -> DeepCrackLiu:
    """DeepCrack DC-1 (Liu 2019): HED on VGG16, five side outputs fused; batch norm to train from scratch."""
    return DeepCrackLiu(DeepCrackLiuConfig(**kwargs))
