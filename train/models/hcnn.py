"""HCNN, the hierarchical CNN with feature preservation (Zhu, Dinh, Phung, Ha 2021, "Hierarchical
Convolutional Neural Network with Feature Preservation and Autotuned Thresholding for Crack Detection",
IEEE Access 9), the baseline SCNet compares against and borrows its enhancement encoder from.

The paper describes "a set of branch networks ... wherein the output of previous convolutional blocks is
half-sizedly concatenated to the current ones to reduce the obscuration in the down-sampling stage".
Only that description (the abstract) was available when this was written; it is built as::

    encoder: VGG16 convolutions in 5 stages (HED layout, strides 1 .. 16)
    branch k (feature preservation): r_k = Conv1x1(stage_k) to ``branch_width`` channels
        b_1 = r_1;  b_k = Conv3x3-BN-ReLU([r_k, MaxPool2x2(b_{k-1})])     (iterative, fine to coarse)
    side_k = Conv1x1(b_k) upsampled to the input; fused = Conv1x1([side_1 .. side_5])

Choices where the paper is unclear, and why:
    * The preserved features travel in the side branches, not in the VGG path: "branch networks" in the
      paper, and the VGG16 layers keep their shapes, so user-supplied ImageNet weights still load.
    * Each branch carries ``branch_width`` (32) channels: enough to keep thin-crack evidence from every
      finer scale at about 0.1 M parameters on top of VGG16.
    * Loss: class-balanced sigmoid cross-entropy (HED's beta weighting) on every side output and the
      fused output with equal weights, as in the HED/DeepCrack family the network extends.
    * The paper's contrast-based autotuned thresholding (CBAT) post-processing is omitted: crackseg picks
      the operating threshold on validation data (ODS) for every model alike.
    * Batch norm after every convolution so the network trains from scratch (no ImageNet download here);
      ``norm=False`` gives plain VGG16 layers for user-supplied torchvision ``vgg16`` weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.edge.artifact.spec import IMAGENET
from crackseg.train.models._registry import register_model
from crackseg.train.models.backbones import VGGConv
from crackseg.train.models.vgg_side_output import VGGSideOutputConfig, VGGSideOutputNet

__all__ = ["HCNN", "FeaturePreservingBranches", "HCNNConfig"]


@dataclass(frozen=True)
class HCNNConfig(VGGSideOutputConfig):
    """HCNN's options (see :class:`VGGSideOutputConfig`).

    Args:
        branch_width: channels of each feature-preserving branch.
    """

    branch_width: int = 32


class FeaturePreservingBranches(nn.Module):
    """Branch k joins stage k's features with branch k - 1 max-pooled to half size, so fine-scale crack
    evidence survives the down-sampling of the main path.

    Args:
        in_channels: channels of each encoder stage, finest first.
        width: channels of every branch.
        norm: batch norm in the 3x3 fusion convolutions.

    Returns:
        one ``width``-channel map per stage, finest first.
    """

    def __init__(self, in_channels: tuple[int, ...], width: int, norm: bool) -> None:
        super().__init__()
        self.reduce = nn.ModuleList([nn.Conv2d(channels, width, 1) for channels in in_channels])
        self.fuse = nn.ModuleList([VGGConv(2 * width, width, norm) for _ in in_channels[1:]])
        self.out_channels = (width,) * len(in_channels)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        branches = [self.reduce[0](features[0])]
        for x, reduce, fuse in zip(features[1:], self.reduce[1:], self.fuse, strict=True):
            branches.append(fuse(torch.cat([reduce(x), F.max_pool2d(branches[-1], 2)], dim=1)))
        return branches


class HCNN(VGGSideOutputNet):
    """HCNN with feature preservation (Zhu et al. 2021): the VGG + side-output skeleton whose neck is
    :class:`FeaturePreservingBranches`."""

    config: HCNNConfig

    def build_neck(self) -> tuple[int, ...]:
        self.branches = FeaturePreservingBranches(self.encoder.out_channels, self.config.branch_width, self.config.norm)
        return self.branches.out_channels

    def side_features(self, image: Tensor) -> list[Tensor]:
        branches: list[Tensor] = self.branches(self.encoder(image))
        return branches


@register_model(config=IMAGENET)
def hcnn(**kwargs: Any) -> HCNN:
    """HCNN (Zhu 2021): VGG16 with feature-preserving side branches fused fine to coarse, five side outputs."""
    return HCNN(HCNNConfig(**kwargs))
