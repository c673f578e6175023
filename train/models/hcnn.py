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
from crackseg.train.layers import SideOutputHead
from crackseg.train.models._registry import register_model
from crackseg.train.models.backbones import VGGBackbone, VGGConv, init_weights
from crackseg.train.models.base import CrackModel, ModelOutput

__all__ = ["HCNN", "FeaturePreservingBranches", "HCNNConfig"]


@dataclass(frozen=True)
class HCNNConfig:
    """What can vary in HCNN.

    Args:
        branch_width: channels of each feature-preserving branch.
        norm: batch norm after every 3x3 convolution (False: plain VGG16 layers).
        side_weights: loss weight of each side output, finest first.
    """

    branch_width: int = 32
    norm: bool = True
    side_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.side_weights) != 5:
            raise ValueError(f"HCNN has 5 side outputs, got side_weights {self.side_weights}")

    @property
    def levels(self) -> int:
        return 5


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


class HCNN(CrackModel):
    """HCNN with feature preservation (Zhu et al. 2021). Input RGB ``(N, 3, H, W)``, H and W multiples of 16.

    Returns:
        training mode: :class:`ModelOutput` (fused and five side logits, finest first);
        eval mode: crack probability ``(N, 1, H, W)``.
    """

    paper_loss = "balanced-bce"

    def __init__(self, config: HCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = VGGBackbone(norm=config.norm)
        self.branches = FeaturePreservingBranches(self.encoder.out_channels, config.branch_width, config.norm)
        self.head = SideOutputHead(self.branches.out_channels, fuse_bias=False)
        init_weights(self)
        self.head.reset_fusion()

    @property
    def size_multiple(self) -> int:
        return 16

    @property
    def side_weights(self) -> tuple[float, ...]:
        return self.config.side_weights

    def forward_logits(self, image: Tensor) -> ModelOutput:
        return ModelOutput(*self.head(self.branches(self.encoder(image))))


@register_model(config=IMAGENET)
def hcnn(**kwargs: Any) -> HCNN:
    """HCNN (Zhu 2021): VGG16 with feature-preserving side branches fused fine to coarse, five side outputs."""
    return HCNN(HCNNConfig(**kwargs))
