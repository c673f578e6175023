"""Max pooling that remembers where each maximum was, and unpooling, written with plain ops.

PyTorch's ONNX exporter cannot export ``max_unpool2d`` and TensorRT has no MaxUnpool. Here the pooling
indices are kept as a *selector*: for each 2x2 window, a one-hot choice among its four positions
(row-major), marking the first position that holds the window's maximum. Unpooling multiplies the
values by each position's selector and places them with a fixed depthwise transposed convolution
(stride 2, a one-hot 2x2 kernel per position). In ONNX this is Slice, Equal, Cast, Mul, Sub, Add,
Gather and ConvTranspose with constant weights: TensorRT-parseable, with static channel counts
everywhere. (A ``pixel_shuffle`` version exported a shape-computed Reshape + DepthToSpace, whose
channel count TensorRT could not infer once Q/DQ nodes followed it.)

Choosing the *first* maximum reproduces ``max_unpool2d`` exactly, ties included (PyTorch's max pool
also keeps the first maximum in scan order). A simpler equality mask (upsampled maximum == feature)
writes a value to every tied position: after ReLU whole windows are 0, and a value 1e-7 in one
runtime and 0 in another then moves a feature from one position to four, which made ONNX Runtime and
PyTorch disagree by up to 0.07 in probability on an untrained SCNet. With the one-hot selector a near
tie can only move a value by one pixel at that scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MaxUnpool", "max_pool_with_selector"]


def max_pool_with_selector(features: Tensor) -> tuple[Tensor, Tensor]:
    """2x2 max pooling; returns ``(pooled (N,C,h,w), selector (N,C,4,h,w))``.

    ``selector[:, :, k]`` is 1.0 where window position ``k`` (0: top-left, 1: top-right, 2: bottom-left,
    3: bottom-right) is the first position holding the window's maximum, else 0.0.
    """
    pooled = F.max_pool2d(features, 2)
    corners = (
        features[..., 0::2, 0::2],
        features[..., 0::2, 1::2],
        features[..., 1::2, 0::2],
        features[..., 1::2, 1::2],
    )
    taken = torch.zeros_like(pooled)
    choices = []
    for corner in corners:
        chosen = (corner == pooled).to(pooled.dtype) * (1.0 - taken)
        taken = taken + chosen
        choices.append(chosen)
    return pooled, torch.stack(choices, dim=2)


class MaxUnpool(nn.Module):
    """Writes each value of ``values (N,C,h,w)`` to the window position its selector marks: ``(N,C,2h,2w)``.

    Args:
        channels: C; the placement kernels are constants of that width (not parameters, not saved).
    """

    kernels: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        one_hot = torch.eye(4).view(4, 1, 1, 2, 2)  # position k -> a 2x2 kernel with a 1 at k (row-major)
        self.register_buffer("kernels", one_hot.expand(4, channels, 1, 2, 2).contiguous(), persistent=False)

    def forward(self, values: Tensor, selector: Tensor) -> Tensor:
        placed = [
            F.conv_transpose2d(
                values * selector[:, :, k], self.kernels[k].to(values.dtype), stride=2, groups=self.channels
            )
            for k in range(4)
        ]
        return placed[0] + placed[1] + placed[2] + placed[3]
