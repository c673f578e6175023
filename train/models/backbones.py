"""ImageNet-style backbones shared by the baseline architectures, and loading of user-supplied weights.

The papers start from ImageNet weights, which cannot be downloaded here: backbones train from scratch
unless the user supplies a weights file. Parameter layouts follow torchvision, so a state dict saved from
``torchvision.models.vgg16()``, ``vgg16_bn()``, ``resnet18()`` ... ``resnet101()`` loads as it is:

* VGG16: ``features.<i>.weight|bias`` for the 13 convolutions (``vgg16_bn`` adds each convolution's batch
  norm at ``features.<i+1>``); the classifier is ignored. Matched by order, so any index layout works.
* ResNet: ``conv1``, ``bn1``, ``layer1..4.<j>.{conv,bn}<k>``, ``layer<n>.0.downsample.{0,1}``; ``fc`` is
  ignored. Dilated stages keep their weights: dilation changes no parameter shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "RESNETS",
    "VGG16_DEPTHS",
    "VGG16_WIDTHS",
    "BasicBlock",
    "Bottleneck",
    "PretrainedBackbone",
    "ResNetBackbone",
    "VGGBackbone",
    "VGGConv",
    "create_resnet",
    "init_weights",
    "load_backbone_weights",
]

VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_DEPTHS = (2, 2, 3, 3, 3)


@runtime_checkable
class PretrainedBackbone(Protocol):
    """A backbone that accepts a torchvision-layout ImageNet state dict."""

    def load_pretrained(self, state: Mapping[str, Tensor]) -> None: ...


def init_weights(module: nn.Module) -> None:
    """He-normal convolutions (fan-out, ReLU), zero biases, unit batch norms: the from-scratch default."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


class VGGConv(nn.Sequential):
    """3x3 convolution, optional batch norm, ReLU: one VGG layer (``vgg16`` or ``vgg16_bn``)."""

    def __init__(self, in_channels: int, out_channels: int, norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        if norm:
            self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)


class VGGBackbone(nn.Module):
    """VGG16's convolutions in five stages; stage k > 1 sees stage k - 1 max-pooled (HED's encoder).

    Args:
        norm: batch norm after every convolution (``vgg16_bn``); False is the plain ``vgg16``.

    Returns:
        the five stage outputs, finest first (strides 1, 2, 4, 8, 16).
    """

    def __init__(self, norm: bool = True) -> None:
        super().__init__()
        ins = (3, *VGG16_WIDTHS[:-1])
        self.stages = nn.ModuleList(
            [
                nn.Sequential(*[VGGConv(i if n == 0 else o, o, norm) for n in range(d)])
                for i, o, d in zip(ins, VGG16_WIDTHS, VGG16_DEPTHS, strict=True)
            ]
        )
        self.out_channels = VGG16_WIDTHS
        self.norm = norm

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for index, stage in enumerate(self.stages):
            x = stage(x if index == 0 else F.max_pool2d(x, 2))
            features.append(x)
        return features

    def load_pretrained(self, state: Mapping[str, Tensor]) -> None:
        """Loads torchvision ``vgg16`` (``norm=False``) or ``vgg16_bn`` (``norm=True``) ``features`` weights.

        Layers are matched by order; raises ``ValueError`` naming the layout when the file does not fit.
        """
        groups: dict[int, dict[str, Tensor]] = {}
        for key, value in state.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "features" and parts[1].isdigit():
                groups.setdefault(int(parts[1]), {})[parts[2]] = value
        convs = [g for _, g in sorted(groups.items()) if g.get("weight", torch.empty(0)).ndim == 4]
        norms = [g for _, g in sorted(groups.items()) if "running_mean" in g]
        layout = "vgg16_bn" if self.norm else "vgg16"
        my_convs = [name for name, m in self.named_modules() if isinstance(m, nn.Conv2d)]
        my_norms = [name for name, m in self.named_modules() if isinstance(m, nn.BatchNorm2d)]
        if len(convs) != len(my_convs) or len(norms) != len(my_norms):
            raise ValueError(
                f"expected a torchvision {layout} state dict ({len(my_convs)} convolutions, {len(my_norms)} "
                f"batch norms under 'features.'), found {len(convs)} convolutions and {len(norms)} batch norms"
            )
        pairs = zip([*convs, *norms], [*my_convs, *my_norms], strict=True)
        _load_checked(self, {f"{name}.{key}": value for group, name in pairs for key, value in group.items()}, layout)


def _load_checked(module: nn.Module, state: Mapping[str, Tensor], layout: str) -> None:
    """Loads ``state`` only when every key and shape fits, so a wrong file changes nothing.

    Older torchvision files predate batch norm's ``num_batches_tracked``; it may be absent.
    """
    own = module.state_dict()
    required = {key for key in own if not key.endswith("num_batches_tracked")}
    missing, unexpected = sorted(required - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"not a torchvision {layout} state dict: missing {missing[:3]}, unexpected {unexpected[:3]}")
    wrong = [key for key, value in state.items() if value.shape != own[key].shape]
    if wrong:
        raise ValueError(f"{layout} weight shapes do not fit at {wrong[:3]}")
    module.load_state_dict(state)


class BasicBlock(nn.Module):
    """ResNet-18/34 block; with ``dilation`` the first 3x3 convolution is dilated (as in mmseg's d8 models)."""

    expansion = 1

    def __init__(
        self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act2(x + shortcut)


class Bottleneck(nn.Module):
    """ResNet-50/101 block (torchvision's v1.5: stride and dilation on the 3x3 convolution)."""

    expansion = 4

    def __init__(
        self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = downsample
        self.act3 = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act3(x + shortcut)


_Block = type[BasicBlock] | type[Bottleneck]

RESNETS: dict[str, tuple[_Block, tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}
"""torchvision's ResNet depths: block type and blocks per stage."""


class ResNetBackbone(nn.Module):
    """ResNet without its classifier; output stride 8 dilates stages 3 and 4 by 2 and 4 (DeepLab/PSPNet).

    The first block of a dilated stage keeps the previous dilation, as torchvision's
    ``replace_stride_with_dilation`` and mmseg's ``contract_dilation`` do.

    Args:
        block, layers: block type and blocks per stage (see :data:`RESNETS`).
        output_stride: 8 (dilated) or 32 (the classification network).

    Returns:
        the outputs of stages 1-4 (``layer1`` .. ``layer4``).
    """

    def __init__(self, block: _Block, layers: tuple[int, int, int, int], output_stride: int = 8) -> None:
        super().__init__()
        if output_stride not in (8, 32):
            raise ValueError(f"output_stride must be 8 or 32, got {output_stride}")
        strides, dilations = ((1, 2, 1, 1), (1, 1, 2, 4)) if output_stride == 8 else ((1, 2, 2, 2), (1, 1, 1, 1))
        firsts = (1, *dilations[:-1])
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self._inplanes = 64
        stages = zip((64, 128, 256, 512), layers, strides, dilations, firsts, strict=True)
        self.layer1, self.layer2, self.layer3, self.layer4 = [self._make_layer(block, *stage) for stage in stages]
        self.out_channels = tuple(width * block.expansion for width in (64, 128, 256, 512))

    def _make_layer(
        self, block: _Block, planes: int, blocks: int, stride: int, dilation: int, first_dilation: int
    ) -> nn.Sequential:
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or self._inplanes != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        layers = [block(self._inplanes, planes, stride, first_dilation, downsample)]
        layers += [block(out_channels, planes, dilation=dilation) for _ in range(blocks - 1)]
        self._inplanes = out_channels
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features

    def load_pretrained(self, state: Mapping[str, Tensor]) -> None:
        """Loads a torchvision ResNet state dict of the same depth (``fc.*`` is ignored); raises ``ValueError``."""
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        _load_checked(self, state, "ResNet of this depth")


def create_resnet(name: str, output_stride: int = 8) -> ResNetBackbone:
    """The torchvision-layout ResNet ``name`` ('resnet18' ... 'resnet101')."""
    if name not in RESNETS:
        raise ValueError(f"unknown ResNet {name!r}; expected one of {sorted(RESNETS)}")
    block, layers = RESNETS[name]
    return ResNetBackbone(block, layers, output_stride)


def load_backbone_weights(model: nn.Module, path: str | Path) -> None:
    """Loads user-supplied ImageNet weights (a torchvision state dict file) into ``model.encoder``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the model has no ImageNet backbone, or the file does not fit it.
    """
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, PretrainedBackbone):
        raise ValueError(f"{type(model).__name__} has no ImageNet backbone that could take pretrained weights")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
    encoder.load_pretrained(state)
