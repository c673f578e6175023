"""Convolution blocks: 3x3 conv, instance norm, ReLU; standard or depthwise-separable."""

from __future__ import annotations

from typing import Protocol

from torch import nn

__all__ = ["ConvLayer", "ConvNormAct", "SeparableConvNormAct", "create_conv_layer"]


class ConvLayer(Protocol):
    """Builds a block that maps ``in_channels`` to ``out_channels`` at the same resolution."""

    def __call__(self, in_channels: int, out_channels: int) -> nn.Module: ...


class ConvNormAct(nn.Sequential):
    """3x3 convolution, instance norm, ReLU: SCNet's basic unit (VGG-C with instance norm)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True)
        self.act = nn.ReLU(inplace=True)


class SeparableConvNormAct(nn.Sequential):
    """Depthwise 3x3 + pointwise 1x1 convolution, instance norm, ReLU (about 1/8 the MACs of a 3x3)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.conv_pw = nn.Conv2d(in_channels, out_channels, 1)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True)
        self.act = nn.ReLU(inplace=True)


_CONV_LAYERS: dict[str, ConvLayer] = {"standard": ConvNormAct, "separable": SeparableConvNormAct}


def create_conv_layer(kind: str) -> ConvLayer:
    """The conv block class for ``kind`` ('standard' or 'separable')."""
    try:
        return _CONV_LAYERS[kind]
    except KeyError:
        raise ValueError(f"unknown conv kind {kind!r}; expected one of {sorted(_CONV_LAYERS)}") from None
