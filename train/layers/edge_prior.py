"""Edge priors computed inside the graph: the 4th input channel of SCNet.

The paper feeds SCNet RGB plus an HED edge map. HED needs pretrained weights that cannot be
downloaded here, so the default prior is a fixed Sobel gradient magnitude: no weights, a handful of
ONNX ops, and the deployed artifact still takes plain RGB. ``HEDPrior`` is the paper's option and
loads a user-supplied weights file (the layout of the widely used PyTorch port of HED, keys
``netVggOne.0.weight`` ... ``netCombine.0.weight``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HEDPrior", "SobelPrior", "create_prior"]

# Caffe's BGR pixel means that HED was trained with.
_HED_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)


def _to_gray(image: Tensor) -> Tensor:
    return image.mean(dim=1, keepdim=True)


class SobelPrior(nn.Module):
    """Sobel gradient magnitude of the grey image, scaled to about [0, 2] for strong edges.

    Input is RGB in [-1, 1]; output is one channel at the same resolution. Not trainable.
    """

    kernel: Tensor

    def __init__(self) -> None:
        super().__init__()
        gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        kernel = torch.stack([gx, gx.t()]).unsqueeze(1)  # (2, 1, 3, 3): d/dx and d/dy
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        gray = F.pad(_to_gray(image), (1, 1, 1, 1), mode="replicate")
        grad = F.conv2d(gray, self.kernel.to(gray.dtype))
        return torch.sqrt(grad.pow(2).sum(dim=1, keepdim=True) + 1e-6) / 4.0


def _vgg_stage(in_channels: int, out_channels: int, convs: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.MaxPool2d(2, 2)] if pool else []
    for index in range(convs):
        layers += [nn.Conv2d(in_channels if index == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


class HEDPrior(nn.Module):
    """Holistically-nested edge detection (Xie & Tu 2015), frozen, from a user-supplied weights file.

    Args:
        weights: path to a PyTorch state dict in the layout described in the module docstring.

    Output is the fused HED edge probability mapped to [-1, 1], one channel, input resolution.
    """

    bgr_mean: Tensor

    def __init__(self, weights: str | Path) -> None:
        super().__init__()
        self.netVggOne = _vgg_stage(3, 64, 2, pool=False)
        self.netVggTwo = _vgg_stage(64, 128, 2, pool=True)
        self.netVggThr = _vgg_stage(128, 256, 3, pool=True)
        self.netVggFou = _vgg_stage(256, 512, 3, pool=True)
        self.netVggFiv = _vgg_stage(512, 512, 3, pool=True)
        self.netScoreOne = nn.Conv2d(64, 1, 1)
        self.netScoreTwo = nn.Conv2d(128, 1, 1)
        self.netScoreThr = nn.Conv2d(256, 1, 1)
        self.netScoreFou = nn.Conv2d(512, 1, 1)
        self.netScoreFiv = nn.Conv2d(512, 1, 1)
        self.netCombine = nn.Sequential(nn.Conv2d(5, 1, 1), nn.Sigmoid())
        self.load_weights(weights)
        self.requires_grad_(False)
        self.register_buffer("bgr_mean", torch.tensor(_HED_BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    def load_weights(self, path: str | Path) -> None:
        """Loads a HED state dict, accepting the older ``module*`` key prefix; raises on mismatch."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"HED weights file not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {key.replace("module", "net", 1) if key.startswith("module") else key: v for key, v in state.items()}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} is not a HED state dict: missing {missing[:3]}, unexpected {unexpected[:3]}")

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2:]
        bgr = (image.flip(1) + 1.0) * 127.5 - self.bgr_mean
        stages = [self.netVggOne, self.netVggTwo, self.netVggThr, self.netVggFou, self.netVggFiv]
        scores = [self.netScoreOne, self.netScoreTwo, self.netScoreThr, self.netScoreFou, self.netScoreFiv]
        sides, features = [], bgr
        for stage, score in zip(stages, scores, strict=True):
            features = stage(features)
            sides.append(F.interpolate(score(features), size=(height, width), mode="bilinear", align_corners=False))
        return self.netCombine(torch.cat(sides, dim=1)) * 2.0 - 1.0


def create_prior(kind: str, hed_weights: str | None = None) -> nn.Module:
    """The edge prior for ``kind``: 'sobel' (default, weight-free) or 'hed' (needs ``hed_weights``)."""
    if kind == "sobel":
        return SobelPrior()
    if kind == "hed":
        if not hed_weights:
            raise ValueError("the 'hed' prior needs a weights file: pass hed_weights=PATH")
        return HEDPrior(hed_weights)
    raise ValueError(f"unknown edge prior {kind!r}; expected 'sobel' or 'hed'")
