"""Turn camera frames into network input exactly as the model spec says, and back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.artifact.size import Size
from crackseg.edge.artifact.spec import ModelSpec

__all__ = ["crop_to", "normalize", "pad_to_multiple", "to_network_input"]


def normalize(images: NDArray[np.uint8], mean: Sequence[float], std: Sequence[float]) -> NDArray[np.float32]:
    """uint8 RGB ``(..., H, W, 3)`` to float32 ``(..., 3, H, W)`` computed as ``(pixel - mean) / std``.

    The model spec carries ``mean`` and ``std``; the paper's 127.5 for both maps RGB to [-1, 1].
    """
    if images.ndim < 3 or images.shape[-1] != len(mean):
        raise ValueError(f"expected RGB images of shape (..., H, W, {len(mean)}), got {images.shape}")
    out = np.ascontiguousarray(np.moveaxis(images, -1, -3), dtype=np.float32)
    channel_shape = (len(mean), 1, 1)
    out -= np.asarray(mean, dtype=np.float32).reshape(channel_shape)
    out /= np.asarray(std, dtype=np.float32).reshape(channel_shape)
    return out


def pad_to_multiple(array: NDArray[np.generic], multiple: int) -> tuple[NDArray[np.generic], Size]:
    """Pads the last two axes (H, W) at the bottom and right, by reflection, up to a multiple of ``multiple``.

    The network needs sides divisible by its total stride; reflection continues cracks across the
    border instead of inventing an edge. The caller crops the output back to the returned original
    size with :func:`crop_to`. An array that already fits is returned as is, not copied.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be positive, not {multiple}")
    if array.ndim < 2:
        raise ValueError(f"expected at least 2 dimensions (H, W), got shape {array.shape}")
    height, width = array.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == pad_w == 0:
        return array, Size(height, width)
    padding = [(0, 0)] * (array.ndim - 2) + [(0, pad_h), (0, pad_w)]
    return np.pad(array, padding, mode="reflect"), Size(height, width)


def crop_to(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    """The top-left ``height x width`` window of a (padded) ``...xHxW`` output."""
    return prob[..., :height, :width]


def to_network_input(images: NDArray[np.uint8], spec: ModelSpec) -> NDArray[np.float32]:
    """``HxWx3`` or ``NxHxWx3`` uint8 RGB to an ``Nx3xHxW`` float32 batch normalized as the spec says."""
    batch = normalize(images, spec.pixel_mean, spec.pixel_std)
    return batch[None] if batch.ndim == 3 else batch
