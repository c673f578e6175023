"""Training augmentation (SCNet paper: rotation over 0-90 degrees, flips, random crops, plus colour jitter).

Rescaling, rotation, flips and crop are composed into one affine map from crop pixels to source
pixels and applied with a single ``cv2.warpAffine`` per array, with ``BORDER_REFLECT_101`` so the
area a rotation or a too-small image leaves uncovered is filled identically in image and mask.
Warping straight to the crop also means a large frame is never rotated in full. Without rotation
or rescaling the map is an integer shift and reproduces source pixels exactly.

The image is sampled bilinearly. The mask is sampled with nearest neighbour at scale 1, and
bilinearly then thresholded at ``0.5 * scale`` when shrinking: nearest neighbour would drop most of a
1-px line shrunk by half, whereas a line that covers a quarter of an output pixel at scale 0.5 is
kept, so hairlines survive the zoom-out that makes them look like a drone's view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from crackseg.edge.artifact.size import Size

__all__ = ["Augment", "Compose", "TrainAugment"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
"""ITU-R BT.601 weights of R, G, B in grey."""


class Augment(Protocol):
    """Anything that turns an (image, mask) pair into a new pair, drawing randomness only from ``rng``.

    The mask is bool ``(H, W)``, True on crack, or ``(H, W, K)`` label planes whose first plane is
    the cracks and whose others are regions that must follow the same geometry (hard negatives).
    """

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
        scale_range: ``(low, high)`` zoom factor drawn log-uniformly (2 magnifies); ``(1, 1)`` keeps
            the native scale, so 1-px hairlines and 30-px spalls both appear at crop scale only when
            the range spans both ways.
    """

    crop_size: int | Size = 256
    max_rotation_deg: float = 90.0
    flip: bool = True
    jitter: float = 0.1
    scale_range: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if min(self.crop_hw) < 1:
            raise ValueError(f"crop_size must be positive, not {self.crop_size}")
        if not 0.0 <= self.max_rotation_deg <= 360.0:
            raise ValueError(f"max_rotation_deg must be in [0, 360], not {self.max_rotation_deg}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), not {self.jitter}")
        low, high = self.scale_range
        if not 0.0 < low <= high:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, not {self.scale_range}")

    @property
    def crop_hw(self) -> Size:
        size = self.crop_size
        return Size(size, size) if isinstance(size, int) else Size(*size)

    def __call__(
        self, image: NDArray[np.uint8], mask: NDArray[np.bool_], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Augment one pair: uint8 RGB ``(H, W, 3)`` and bool ``(H, W[, K])`` in, crop-sized pair out."""
        if image.shape[:2] != mask.shape[:2]:
            raise ValueError(f"image {image.shape} and mask {mask.shape} differ in size")
        scale = self._draw_scale(rng)
        matrix = self._crop_to_source(image.shape[0], image.shape[1], scale, rng)
        image = self._warp(image, matrix, cv2.INTER_LINEAR)
        if scale >= 1.0:
            mask = self._warp(mask.astype(np.uint8), matrix, cv2.INTER_NEAREST).astype(bool)
        else:
            mask = self._warp(mask.astype(np.uint8) * 255, matrix, cv2.INTER_LINEAR) > 127.5 * scale
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

    def _draw_scale(self, rng: np.random.Generator) -> float:
        low, high = self.scale_range
        return 1.0 if low == high == 1.0 else math.exp(rng.uniform(math.log(low), math.log(high)))

    def _crop_to_source(self, height: int, width: int, scale: float, rng: np.random.Generator) -> NDArray[np.float64]:
        """Draw crop position, angle and flips; return the 2x3 map from crop to source pixel coordinates.

        The crop window covers ``crop / scale`` source pixels, placed at a random integer offset
        (inside the image, or around it when the image is smaller), then rotated and flipped about
        its own centre.
        """
        crop_h, crop_w = self.crop_hw
        window_h, window_w = round(crop_h / scale), round(crop_w / scale)
        top = rng.integers(min(0, height - window_h), max(0, height - window_h), endpoint=True)
        left = rng.integers(min(0, width - window_w), max(0, width - window_w), endpoint=True)
        angle = math.radians(rng.uniform(0.0, self.max_rotation_deg))
        flip_x, flip_y = np.where(rng.random(2) < 0.5, -1.0, 1.0) if self.flip else (1.0, 1.0)
        cos, sin = math.cos(angle), math.sin(angle)
        linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag([flip_x, flip_y]) / scale
        crop_centre = np.array([(crop_w - 1) / 2, (crop_h - 1) / 2])
        source_centre = np.array([(window_w - 1) / 2 + left, (window_h - 1) / 2 + top])
        return np.hstack([linear, (source_centre - linear @ crop_centre)[:, None]])


@dataclass(frozen=True)
class Compose:
    """Applies augmentations in order, all drawing from the same ``rng``."""

    steps: tuple[Augment, ...]

    def __call__(
        self, image: NDArray[np.uint8], mask: NDArray[np.bool_], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        for step in self.steps:
            image, mask = step(image, mask, rng)
        return image, mask


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
