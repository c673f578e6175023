"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" edge variant: ReLU6, no squeeze-excitation), as a trunk.

Written here rather than taken from a package so that the network is what crackseg exports: plain
convolutions, BatchNorm (folded into the convolutions at export) and ReLU6 (ONNX ``Clip``), the ops
ONNX Runtime and TensorRT run best. The ImageNet weights of
:data:`~crackseg.train.models.pretrained.EFFICIENTNET_LITE0_IMAGENET` load into it by name; the
layout mirrors the file's (``_conv_stem``, ``_blocks.<i>._expand_conv`` ...) so the mapping is a
rename, checked tensor by tensor.

Two details make the ImageNet weights compute what they were trained to: inputs scaled
``(x - 127.5) / 128`` (:data:`LITE_INPUT`), and TensorFlow's "same" padding for stride-2
convolutions, which pads one pixel more after than before (the weights come from TensorFlow).
For the even sizes this trunk accepts that padding is fixed, so it is a constant ``Pad``, not a
shape computation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.edge.artifact.spec import VariantConfig

__all__ = ["LITE0_STAGES", "LITE_INPUT", "EfficientNetLite", "StageConfig"]

LITE_INPUT = VariantConfig(pixel_mean=(127.5, 127.5, 127.5), pixel_std=(128.0, 128.0, 128.0))
"""The input scaling the TensorFlow EfficientNet-Lite weights were trained with."""

_BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, which the ImageNet statistics assume
_BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99, in PyTorch's convention


@dataclass(frozen=True)
class StageConfig:
    """One stage of MBConv blocks: repeats, kernel, stride of its first block, expansion, output channels."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    channels: int


LITE0_STAGES = (
    StageConfig(1, 3, 1, 1, 16),
    StageConfig(2, 3, 2, 6, 24),
    StageConfig(2, 5, 2, 6, 40),
    StageConfig(3, 3, 2, 6, 80),
    StageConfig(3, 5, 1, 6, 112),
    StageConfig(4, 5, 2, 6, 192),
    StageConfig(1, 3, 1, 6, 320),
)
"""EfficientNet-Lite0's seven stages (TensorFlow's ``efficientnet_lite_builder``)."""

_STEM_CHANNELS = 32


class SameConv2d(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's "same" for even inputs (stride 1 or 2, odd kernel)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel, stride, padding=0, groups=groups, bias=False)
        total = kernel - stride  # TensorFlow pads (out - 1) * stride + kernel - in; in = out * stride when even
        self.pad = (total // 2, total - total // 2) * 2  # left, right, top, bottom

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.pad))


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection; identity shortcut when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expands = expand != 1
        if self.expands:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = _norm(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _norm(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = _norm(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expands else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """The stem and the first ``len(stages)`` stages of EfficientNet-Lite; returns every stage's output.

    Args:
        stages: the stage plan (a prefix of :data:`LITE0_STAGES` cuts the trunk early).
        in_channels: input channels; channels past the third start at zero when ImageNet weights load,
            so an extra input (an edge prior) begins with no effect on the pretrained features.

    Input ``(N, in_channels, H, W)`` with even H and W at every stride-2 layer.
    """

    def __init__(self, stages: tuple[StageConfig, ...] = LITE0_STAGES, in_channels: int = 3) -> None:
        super().__init__()
        self.stages = stages
        self._conv_stem = SameConv2d(in_channels, _STEM_CHANNELS, 3, 2)
        self._bn0 = _norm(_STEM_CHANNELS)
        blocks, channels = [], _STEM_CHANNELS
        for stage in stages:
            for repeat in range(stage.repeats):
                stride = stage.stride if repeat == 0 else 1
                blocks.append(MBConv(channels, stage.channels, stage.kernel, stride, stage.expand))
                channels = stage.channels
        self._blocks = nn.ModuleList(blocks)
        self._stage_ends = [sum(s.repeats for s in stages[: i + 1]) for i in range(len(stages))]

    @property
    def out_channels(self) -> tuple[int, ...]:
        return tuple(stage.channels for stage in self.stages)

    @property
    def strides(self) -> tuple[int, ...]:
        """Each stage output's stride relative to the input."""
        strides, total = [], 2
        for stage in self.stages:
            total *= stage.stride
            strides.append(total)
        return tuple(strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        outputs = []
        for index, block in enumerate(self._blocks, start=1):
            x = block(x)
            if index in self._stage_ends:
                outputs.append(x)
        return outputs

    def load_pretrained(self, state: Mapping[str, Tensor]) -> list[str]:
        """Loads the ImageNet file's tensors into every parameter and statistic of this trunk.

        Every tensor of the trunk must be in ``state`` with its shape (the stem may take more input
        channels: the extra ones start at zero). Returns the file's keys this trunk has no place for
        (the later stages and the classifier of a cut trunk).

        Raises:
            ValueError: a tensor of the trunk is missing from ``state`` or has another shape.
        """
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"the weights file lacks {len(missing)} tensors of the trunk, e.g. {missing[:3]}")
        loaded = {}
        for key, target in own.items():
            source = state[key]
            if key == "_conv_stem.weight" and source.shape[1] < target.shape[1]:
                source = F.pad(source, (0, 0, 0, 0, 0, target.shape[1] - source.shape[1]))
            if source.shape != target.shape:
                shapes = f"the weights file has shape {tuple(source.shape)}, the trunk {tuple(target.shape)}"
                raise ValueError(f"{key}: {shapes}")
            loaded[key] = source
        self.load_state_dict(loaded, strict=True)
        return sorted(set(state) - set(own))
