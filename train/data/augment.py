"""Training augmentation (SCNet paper: rotation over 0-90 degrees, flips, random crops, plus colour jitter).

Rotation, flips and crop are composed into one affine map from crop pixels to source pixels and
applied with a single ``cv2.warpAffine`` per array: the image is sampled bilinearly, the mask with
nearest neighbour (so it stays binary), and both use ``BORDER_REFLECT_101`` so the area a rotation
or a too-small image leaves uncovered is filled identically in image and mask. Warping straight to
the crop also means a large frame is never rotated in full. Without rotation the map is an integer
shift and reproduces source pixels exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["Augment", "TrainAugment"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""ITU-R BT.601 weights of R, G, B in grey."""


class Augment(Protocol):
    """Anything that turns an (image, mask) pair into a new pair, drawing randomness only from ``rng``."""

    def __call__(
        self, image: NDArray[np.uint8], mask: NDArray[np.bool_], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]: ...


@dataclass(frozen=True)
class TrainAugment:
    """Random rotation, flips and crop on image and mask, then mild colour jitter on the image.

    Args:
        crop_size: output ``size`` or ``(height, width)``; smaller images are padded by reflection.
        max_rotation_deg: rotation angle drawn uniformly from ``[0, max_rotation_deg]``.
        flip: flip horizontally and vertically, each with probability 1/2.
        jitter: strength ``s`` of brightness, contrast, saturation and gamma factors, each drawn
            from ``[1 - s, 1 + s]``; 0 leaves colours untouched.
    """

    crop_size: int | tuple[int, int] = 256
    max_rotation_deg: float = 90.0
    flip: bool = True
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if min(self.crop_hw) < 1:
            raise ValueError(f"crop_size must be positive, not {self.crop_size}")
        if not 0.0 <= self.max_rotation_deg <= 360.0:
            raise ValueError(f"max_rotation_deg must be in [0, 360], not {self.max_rotation_deg}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), not {self.jitter}")

    @property
    def crop_hw(self) -> tuple[int, int]:
        size = self.crop_size
        return (size, size) if isinstance(size, int) else (size[0], size[1])

    def __call__(
        self, image: NDArray[np.uint8], mask: NDArray[np.bool_], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Augment one pair: uint8 RGB ``(H, W, 3)`` and bool ``(H, W)`` in, crop-sized pair out."""
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image {image.shape} and mask {mask.shape} differ in size")
        matrix = self._crop_to_source(image.shape[0], image.shape[1], rng)
        image = self._warp(image, matrix, cv2.INTER_LINEAR)
        mask = self._warp(mask.astype(np.uint8), matrix, cv2.INTER_NEAREST).astype(bool)
        if self.jitter > 0.0:
            image = _jitter_colour(image, rng, self.jitter)
        return image, mask

    def _warp(
        self, array: NDArray[np.uint8], crop_to_source: NDArray[np.float64], interpolation: int
    ) -> NDArray[np.uint8]:
        crop_h, crop_w = self.crop_hw
        flags = interpolation | cv2.WARP_INVERSE_MAP
        warped = cv2.warpAffine(array, crop_to_source, (crop_w, crop_h), flags=flags, borderMode=cv2.BORDER_REFLECT_101)
        return np.asarray(warped, dtype=np.uint8)

    def _crop_to_source(self, height: int, width: int, rng: np.random.Generator) -> NDArray[np.float64]:
        """Draw crop position, angle and flips; return the 2x3 map from crop to source pixel coordinates.

        The crop window is placed at a random integer offset (inside the image, or around it when
        the image is smaller), then rotated and flipped about its own centre.
        """
        crop_h, crop_w = self.crop_hw
        top = rng.integers(min(0, height - crop_h), max(0, height - crop_h), endpoint=True)
        left = rng.integers(min(0, width - crop_w), max(0, width - crop_w), endpoint=True)
        angle = math.radians(rng.uniform(0.0, self.max_rotation_deg))
        flip_x, flip_y = np.where(rng.random(2) < 0.5, -1.0, 1.0) if self.flip else (1.0, 1.0)
        cos, sin = math.cos(angle), math.sin(angle)
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag([flip_x, flip_y])
        crop_centre = np.array([(crop_w - 1) / 2, (crop_h - 1) / 2])
        source_centre = crop_centre + np.array([left, top])
        return np.hstack([linear, (source_centre - linear @ crop_centre)[:, None]])


def _jitter_colour(image: NDArray[np.uint8], rng: np.random.Generator, strength: float) -> NDArray[np.uint8]:
    """Scale brightness, contrast (about the mean grey), saturation (about each pixel's grey), then gamma."""
    brightness, contrast, saturation, gamma = rng.uniform(1.0 - strength, 1.0 + strength, size=4)
    x = image.astype(np.float32) * np.float32(brightness / 255.0)
    mean_grey = float((x @ _LUMA).mean())
    x = (x - mean_grey) * np.float32(contrast) + np.float32(mean_grey)
    grey = (x @ _LUMA)[..., None]
    x = grey + (x - grey) * np.float32(saturation)
    x = np.clip(x, 0.0, 1.0) ** np.float32(gamma)
    return np.rint(x * 255.0).astype(np.uint8)
