"""What drone and robot cameras do to an image: blur, sensor noise, JPEG artefacts, exposure and shadow.

Public crack datasets are mostly sharp, well-lit, losslessly stored close-ups. A drone's camera adds
motion blur from the airframe, defocus at the edge of its depth of field, noise in dim light,
aggressive video compression, over- and under-exposure and hard cast shadows. :class:`CameraEffects`
applies each effect with its own probability, after the geometric augmentation, and never touches the
mask: a blurred crack is still a crack where it was annotated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["CameraEffects"]


@dataclass(frozen=True)
class CameraEffects:
    """Random camera degradations of the image; the mask passes through unchanged.

    Args:
        p_motion_blur: probability of a straight motion blur of 3-9 px at a random angle.
        p_defocus: probability of a Gaussian defocus blur, sigma 0.5-1.5 px.
        p_noise: probability of additive Gaussian sensor noise, sigma 2-10 grey levels per channel.
        p_jpeg: probability of a JPEG round trip at quality 30-90.
        p_exposure: probability of an exposure change: gain 0.5-1.6 then gamma 0.7-1.4.
        p_shadow: probability of a cast shadow: a half-plane at a random angle darkened to 40-80 %,
            with a soft edge.
    """

    p_motion_blur: float = 0.2
    p_defocus: float = 0.2
    p_noise: float = 0.3
    p_jpeg: float = 0.3
    p_exposure: float = 0.4
    p_shadow: float = 0.2

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], not {value}")

    def __call__(
        self, image: NDArray[np.uint8], mask: NDArray[np.bool_], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Degrade ``image`` (uint8 RGB); each effect draws from ``rng`` whether or not it applies."""
        coins = rng.random(6)
        effects = (
            (self.p_exposure, _exposure),
            (self.p_shadow, _shadow),
            (self.p_motion_blur, _motion_blur),
            (self.p_defocus, _defocus),
            (self.p_noise, _noise),
            (self.p_jpeg, _jpeg),
        )
        for coin, (probability, effect) in zip(coins, effects, strict=True):
            if coin < probability:
                image = effect(image, rng)
        return image, mask


def _exposure(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    gain, gamma = rng.uniform(0.5, 1.6), rng.uniform(0.7, 1.4)
    x = np.clip(image.astype(np.float32) * np.float32(gain / 255.0), 0.0, 1.0) ** np.float32(gamma)
    return np.rint(x * 255.0).astype(np.uint8)


def _shadow(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Darkens one side of a random line through the image, with an edge a few percent of the frame wide."""
    height, width = image.shape[:2]
    angle = rng.uniform(0.0, 2.0 * math.pi)
    offset = rng.uniform(-0.5, 0.5) * math.hypot(height, width)
    softness = max(1.0, rng.uniform(0.01, 0.08) * max(height, width))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = (xs - width / 2) * math.cos(angle) + (ys - height / 2) * math.sin(angle) - offset
    inside = 1.0 / (1.0 + np.exp(np.clip(distance / softness, -30.0, 30.0)))
    darkness = rng.uniform(0.4, 0.8)
    factor = 1.0 - (1.0 - darkness) * inside
    return np.rint(image.astype(np.float32) * factor[..., None]).astype(np.uint8)


def _motion_blur(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    length = int(rng.integers(3, 10))
    line = np.zeros((length, length), dtype=np.float32)
    line[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0.0, 180.0), 1.0)
    kernel = np.asarray(cv2.warpAffine(line, rotation, (length, length)), dtype=np.float32)
    kernel /= max(float(kernel.sum()), 1e-6)
    return np.asarray(cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101), dtype=np.uint8)


def _defocus(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    sigma = rng.uniform(0.5, 1.5)
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigmaX=sigma), dtype=np.uint8)


def _noise(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    sigma = rng.uniform(2.0, 10.0)
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, size=image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _jpeg(image: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    quality = int(rng.integers(30, 91))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode an augmented image")
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED), dtype=np.uint8)
