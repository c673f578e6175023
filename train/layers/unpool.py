"""Max pooling that remembers where each maximum was, and unpooling, written with plain ops.

PyTorch's ONNX exporter cannot export ``max_unpool2d`` and TensorRT has no MaxUnpool. Here the pooling
indices are kept as a *selector*: for each 2x2 window, a one-hot choice among its four positions
(row-major), marking the first position that holds the window's maximum. Unpooling multiplies the
values by the selector and interleaves the four positions back with ``pixel_shuffle``. In ONNX this
is Slice, Equal, Cast, Mul, Sub, Add, Reshape and Transpose/DepthToSpace: all TensorRT-parseable.

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
from torch import Tensor

__all__ = ["max_pool_with_selector", "unpool_with_selector"]


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


def unpool_with_selector(values: Tensor, selector: Tensor) -> Tensor:
    """Writes each value of ``values (N,C,h,w)`` to the window position its selector marks: ``(N,C,2h,2w)``."""
    placed = values.unsqueeze(2) * selector
    return F.pixel_shuffle(placed.flatten(1, 2), 2)
